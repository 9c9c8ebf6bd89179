"""Everything that touches a pin: the pigpio board driver, the waveform compiler and the
simulated board. Importing this package imports neither pigpio nor gpiozero; only
`hw.driver` and `hw.sim` do, so the pure core stays testable alone."""
