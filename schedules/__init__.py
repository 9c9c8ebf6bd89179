"""Prescriptions: the data model, the device limits, validation, presets, signing and
adherence arithmetic. Pure: no I/O beyond reading a file, no Kivy, no pigpio."""
