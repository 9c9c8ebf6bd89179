"""The Kivy touchscreen UI: renders the engine's state and forwards touches to it."""
