"""Subcommands of the `homeapp` console script, one module per command group.

Each module defines `register(subparsers)`, adding its parser(s) with
`set_defaults(func=handler)`; a handler takes the parsed args and returns the exit code.
"""
