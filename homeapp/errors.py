"""Errors that reach a person: one clear line, never a traceback."""


class UserError(Exception):
    """Bad input from a person (a file, an argument, a request). The message names what is
    wrong and what is allowed; the command line prints it and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
