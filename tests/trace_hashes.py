"""A pytest plugin that records the SHA-256 of every trace the end-to-end session runs
write (`tests.sessionkit.run_session`, i.e. `homeapp session run --virtual-time`), so a
refactoring can show the board did byte for byte the same before and after.

    TRACE_HASHES_OUT=before.json python -m pytest -p tests.trace_hashes tests/test_session_run.py ...

Property tests (hypothesis: random examples) are left out. Writes
`{test node id #n: sha256}` (n counts the runs within one test) to
TRACE_HASHES_OUT at the end; compare two such files with `diff`.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter

import pytest

import tests.sessionkit as sessionkit

_hashes: dict[str, str] = {}
_runs: Counter = Counter()
_current = {"node": "?"}
_original = sessionkit.run_session


def _recording_run_session(*args, **kwargs):
    run = _original(*args, **kwargs)
    node = _current["node"]
    if node is None:  # a property test's random examples: nothing to compare
        return run
    _runs[node] += 1
    key = f"{node} #{_runs[node]}"
    _hashes[key] = (hashlib.sha256(run.trace.read_bytes()).hexdigest()
                    if run.trace.exists() else "no trace")
    return run


sessionkit.run_session = _recording_run_session


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    random = getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
    _current["node"] = None if random else item.nodeid
    yield


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("TRACE_HASHES_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(dict(sorted(_hashes.items())), f, indent=1)
            f.write("\n")
