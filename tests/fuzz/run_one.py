"""One atheris target in this process: `python -m tests.fuzz.run_one TARGET [libFuzzer args]`.

atheris.Fuzz() never returns (libFuzzer exits the process), so `python -m tests.fuzz` runs
each target through this module in a subprocess of its own.
"""
from __future__ import annotations

import sys


def main() -> None:
    import atheris

    target = sys.argv[1]
    # Coverage feedback from the code under test, not from the standard library.
    with atheris.instrument_imports(include=["schedules", "homeapp", "tests.fuzz"]):
        import homeapp.bundle  # noqa: F401
        import schedules.model  # noqa: F401
        import schedules.validate  # noqa: F401
        import tests.fuzz as harness
    fn = harness.TARGETS[target]
    atheris.Setup([sys.argv[0]] + sys.argv[2:], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
