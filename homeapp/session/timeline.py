"""The timeline: the plan's steps in order, the cursor through them, and where each
channel is in the current step's contraction window.

Integer µs throughout (clock µs for the step's start, µs within the step for its
windows): no comparison of times can be off by a rounding, so every edge is passed.
The timeline decides; the engine plays the steps on the board and logs what it reports.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

from homeapp.plan import Step, block_steps
from homeapp.state import WindowState
from schedules.model import Block

#: `on_edge(channel, begins, t_us, step)`: a window edge passed (`begins` True: its start),
#: at clock µs `t_us`.
EdgeHandler = Callable[[int, bool, int, Step], None]


class Timeline:
    """The steps still to play, the one playing, and the stimulation time already done."""

    def __init__(self, blocks: Sequence[Block], channels: int) -> None:
        self.blocks = list(blocks)     # as the patient has adjusted them
        self.channels = channels
        self.pending: deque[Step] = deque()
        self.pending_us = 0            # their total duration (the UI asks 20 times a second)
        self.block_index = -1
        self.step: Step | None = None
        self.step_t0_us = 0            # clock µs of the current step's nominal start (no drift)
        self.step_started = False      # the current step is playing on the board
        self.last_begun: Step | None = None  # the step most recently begun (kept after it ends)
        self.elapsed_done_us = 0       # stimulation time of the steps already finished
        self.windows = [WindowState.PENDING] * channels
        self.contracting = [False] * channels

    # ------------------------------------------------------------- planning
    def plan_from(self, block_index: int, *, first_cycle: int = 0) -> list[Step]:
        """The steps from `block_index` on, with the block values as they are now."""
        steps: list[Step] = []
        for index in range(block_index, len(self.blocks)):
            for step in block_steps(self.blocks[index], index, self.channels):
                if index > block_index or step.cycle_index >= first_cycle:
                    steps.append(step)
        return steps

    def set_pending(self, steps: list[Step]) -> None:
        """These steps are what remains to play."""
        self.pending = deque(steps)
        self.pending_us = sum(step.duration_us for step in steps)

    def planned_total_us(self) -> int:
        """The session's planned stimulation time: done, playing and to come."""
        current = self.step.duration_us if self.step is not None else 0
        return self.elapsed_done_us + current + self.pending_us

    def replan_after_set(self, block_index: int, old_block: Block, *, under_way: bool,
                         ended: bool) -> bool:
        """Block `block_index` has new values (it was `old_block`): plan again what follows.

        Under way (running or paused), the change takes effect from the next cycle of the
        current block, or when its block begins; a running continuous block keeps its
        segments (they were cut as it began). The last step begun is the reference: a
        step cut by a pause is replayed as it is, one finished before a pause is not
        played again. Before the start, the whole plan is made again: returns True then
        (the new plan must be checked again before the start)."""
        begun = self.last_begun
        if under_way and begun is not None:
            current = begun.block_index
            if block_index == current and not old_block.continuous:
                self.set_pending(self.plan_from(current, first_cycle=begun.cycle_index + 1))
            elif block_index > current:
                keep = [st for st in self.pending if st.block_index <= current]
                self.set_pending(keep + self.plan_from(current + 1))
        elif not ended:
            self.set_pending(self.plan_from(max(self.block_index, 0)))
            return True
        return False

    # ------------------------------------------------------------- the cursor
    def begin_next(self, t_start_us: int) -> tuple[Step | None, bool]:
        """The next step becomes current, starting at clock µs `t_start_us`. Returns it
        (None: the plan is done) and whether it begins a new block."""
        if not self.pending:
            self.step = None
            return None, False
        step = self.pending.popleft()
        self.pending_us -= step.duration_us
        new_block = step.block_index != self.block_index
        self.block_index = step.block_index
        self.step = self.last_begun = step
        self.step_t0_us = t_start_us
        return step, new_block

    def replay_from(self, t_start_us: int) -> None:
        """The current step plays again from its start, at clock µs `t_start_us` (resume)."""
        self.step_t0_us = t_start_us

    def rewind_windows(self) -> None:
        """Every (re)played step plays every channel's window."""
        self.windows = [WindowState.PENDING] * self.channels

    def in_step_us(self, now_us: int) -> int:
        """µs since the current step's start, at clock µs `now_us`."""
        return now_us - self.step_t0_us

    def due_us(self, now_us: int) -> list[int]:
        """Clock µs at which the current step next needs the loop: its window edges still
        ahead, and its end."""
        step = self.step
        if step is None:
            return []
        due = [self.step_t0_us + step.duration_us]
        in_step = now_us - self.step_t0_us
        for w in step.windows_us:
            if w is not None:
                due.extend(self.step_t0_us + edge for edge in w if edge > in_step)
        return due

    def advance(self, now_us: int, on_edge: EdgeHandler) -> int | None:
        """Pass every window edge reached by clock µs `now_us` (calling `on_edge` for each,
        in order); returns the clock µs at which the next step must begin when the current
        one has ended, else None."""
        step = self.step
        if step is None:
            return None
        in_step = now_us - self.step_t0_us
        for ch, w in enumerate(step.windows_us):
            if w is None:
                continue
            a, b = w
            if self.windows[ch] == WindowState.PENDING and in_step >= a:
                self.windows[ch] = WindowState.ACTIVE
                self.contracting[ch] = True
                on_edge(ch, True, self.step_t0_us + a, step)
            if self.windows[ch] == WindowState.ACTIVE and in_step >= b:
                self.windows[ch] = WindowState.DONE
                self.contracting[ch] = False
                on_edge(ch, False, self.step_t0_us + b, step)
        end = self.step_t0_us + step.duration_us
        if now_us >= end:
            self.elapsed_done_us += step.duration_us
            self.step_started = False
            return end  # nominal: cycles follow each other with no drift
        return None

    def cut(self, now_us: int) -> list[int]:
        """A pause, stop or abort at clock µs `now_us`: the channels whose window was not
        over (their contraction, if begun, is cut short). The interrupted step is played
        again from its start on resume, unless only its rest was left after a whole
        contraction: then it counts as done and the next one follows."""
        cut = [ch for ch in range(self.channels) if self.windows[ch] != WindowState.DONE]
        for ch in range(self.channels):
            self.contracting[ch] = False
            if self.windows[ch] == WindowState.ACTIVE:
                self.windows[ch] = WindowState.PENDING
        step = self.step
        if step is not None and self.step_started:
            in_step = now_us - self.step_t0_us
            all_done = step.ends_contraction and all(w is None or in_step >= w[1] for w in step.windows_us)
            if all_done:
                self.elapsed_done_us += step.duration_us
                self.step = None
        self.step_started = False
        return cut

    def end(self) -> None:
        """The session has ended: nothing plays any more."""
        self.contracting = [False] * self.channels
        self.step = None

    def countdown(self, now_us: int, *, running: bool) -> tuple[bool, int, int]:
        """(contracting, µs left of the current contraction or rest, stimulation µs done)
        for the screen. Paused, the step counts from its start (it is replayed)."""
        step = self.step
        if step is None:
            return False, 0, self.elapsed_done_us
        in_step = max(0, now_us - self.step_t0_us) if running else 0
        contracting = any(self.contracting)
        windows = [w for w in step.windows_us if w is not None]
        if contracting:
            end = max(b for a, b in windows if a <= in_step) if windows else 0
            left_us = max(0, end - in_step)
        else:
            later = [a for a, b in windows if a > in_step]
            left_us = (min(later) if later else step.duration_us) - in_step
        return contracting, max(0, left_us), self.elapsed_done_us + min(in_step, step.duration_us)
