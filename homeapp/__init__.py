"""The home NMES trainer: session engine, log store, command line and touchscreen UI."""

__version__ = "0.1.0"
