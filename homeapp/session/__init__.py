"""The parts the session engine (`homeapp.engine.Engine`) is composed of, one job each.

- `eventlog`: the session's log and its clock: session time in µs, events, contractions.
- `start_policy`: whether a session may start now, and every reason it may not.
- `timeline`: the plan's steps, the cursor through them, the contraction windows, replanning.
- `intensity`: each channel's target and set-point, and the rate-limited ramp between them.
- `heartbeat`: the loop's tick, the heartbeat and the watchdog's lapse.
- `contacts`: each electrode's contact as the board last reported it, and its changes.
- `alerts`: the whole-screen alert and the notice beside the controls.

Pure Python like the engine: none of them imports `hw/`, Kivy or pigpio. The engine holds
the one lock, talks to the board and calls these in order; they hold state and decide.
"""
