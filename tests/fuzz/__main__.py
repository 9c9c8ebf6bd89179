"""`make fuzz`: coverage-guided fuzzing (atheris/libFuzzer) of every target, bounded in time.

FUZZ_SECONDS (default 60) is the time per target; FUZZ_TARGETS (comma-separated) picks
targets. Each target starts from a seed corpus of well-formed inputs and keeps the corpus
it grows in `var/fuzz/<target>/` so later runs start where earlier ones stopped; a crashing
input is written to `var/fuzz/crashes/` and the run exits 1.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.fuzz import TARGETS, seed_inputs

ROOT = Path(__file__).resolve().parents[2]


def run_target(target: str, seconds: int, workdir: Path) -> tuple[int, int, str]:
    """(exit code, executions, last lines of the output) of one bounded run."""
    corpus = workdir / target
    crashes = workdir / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seed_inputs(target)):
        (corpus / f"seed-{i}").write_bytes(seed)
    cmd = [sys.executable, "-m", "tests.fuzz.run_one", target,
           f"-max_total_time={seconds}", "-print_final_stats=1", "-rss_limit_mb=2048",
           "-timeout=10", "-max_len=16384", "-len_control=20", f"-artifact_prefix={crashes}/{target}-", str(corpus)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=seconds + 120)
    out = proc.stdout + proc.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out) or re.search(r"Done (\d+) runs", out)
    runs = int(m.group(1)) if m else 0
    return proc.returncode, runs, "\n".join(out.strip().splitlines()[-40:])


def main() -> int:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: `make fuzz` installs it (pip install -e '.[fuzz]')",
              file=sys.stderr)
        return 2
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    chosen = [t for t in os.environ.get("FUZZ_TARGETS", ",".join(TARGETS)).split(",") if t]
    workdir = ROOT / "var" / "fuzz"  # /var/ is git-ignored
    failed = False
    for target in chosen:
        print(f"fuzzing {target} for {seconds} s ...", flush=True)
        code, runs, tail = run_target(target, seconds, workdir)
        if code == 0:
            print(f"  {target}: {runs} executions, no crash")
        else:
            failed = True
            print(f"  {target}: CRASH after {runs} executions (exit {code}); inputs in {workdir / 'crashes'}")
            print(tail)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
