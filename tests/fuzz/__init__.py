"""Fuzz targets: the parsers that read files a device receives from outside.

Each target takes raw bytes. Inside it, only the parser's documented refusal may escape
(`PrescriptionError` for a prescription, `BundleError` for a log bundle); anything else
(a KeyError, a TypeError, a RecursionError, a crash) is a bug and propagates, so the fuzzer
reports it with the input that caused it. An accepted prescription is also checked against
the device limits, so a parser that lets a value through the fence is a finding too.

`python -m tests.fuzz` runs each target under atheris (coverage-guided libFuzzer) for a
bounded time; `tests/fuzz/test_harness_smoke.py` runs each target on a few fixed inputs in
the normal suite so the harness cannot rot.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from pathlib import Path

#: The day every prescription is judged on, so a run is reproducible from its input alone.
TODAY = dt.date(2026, 11, 21)

_scratch_dir: tempfile.TemporaryDirectory | None = None


def _scratch() -> Path:
    """One scratch folder per process, made on first use and removed at exit."""
    global _scratch_dir
    if _scratch_dir is None:
        _scratch_dir = tempfile.TemporaryDirectory(prefix="homeapp-fuzz-")
    return Path(_scratch_dir.name)


def _check_accepted(rx) -> None:
    """An accepted prescription lies inside every device limit (fence 2's source of truth)."""
    from schedules.limits import CHANNELS_MAX, CHANNELS_MIN, DEVICE_LIMITS, SESSION_MAX_MINUTES

    assert CHANNELS_MIN <= len(rx.channels) <= CHANNELS_MAX, rx.channels
    for ch in rx.channels:
        assert DEVICE_LIMITS["max_ma"].contains(ch.max_ma), ch
    assert rx.blocks, "a prescription with no block was accepted"
    for b in rx.blocks:
        for name in ("minutes", "hz", "pulse_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s"):
            value = getattr(b, name)
            assert math.isfinite(value) and DEVICE_LIMITS[name].contains(value), (name, value)
            rng = b.ranges.get(name)
            if rng is not None:
                # the patient may move it within [min, max]: both ends inside the device limit
                assert DEVICE_LIMITS[name].contains(rng.min) and DEVICE_LIMITS[name].contains(rng.max), (name, rng)
                assert rng.min <= value <= rng.max, (name, rng, value)
        assert b.ramp_up_s + b.ramp_down_s <= b.on_s, b
    assert rx.duration_s <= SESSION_MAX_MINUTES * 60 + 1e-6, rx.duration_s
    assert rx.issued <= rx.expires


def fuzz_prescription(data: bytes) -> None:
    """bytes -> file -> `load_prescription`, and bytes -> JSON -> `parse_prescription`."""
    from schedules.validate import PrescriptionError, load_prescription, parse_prescription

    path = _scratch() / "rx.json"
    path.write_bytes(data)
    try:
        _check_accepted(load_prescription(path, today=TODAY))
    except PrescriptionError:
        pass
    # The in-memory path: whatever a plain JSON reader gives (duplicate keys, NaN, huge
    # nesting are the file reader's business and may legitimately fail here first).
    try:
        obj = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return
    try:
        _check_accepted(parse_prescription(obj, today=TODAY))
    except PrescriptionError:
        pass


_device_key = None


def _public_key():
    global _device_key
    if _device_key is None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        _device_key = Ed25519PrivateKey.generate()
    return _device_key.public_key()


def fuzz_bundle(data: bytes) -> None:
    """bytes -> file -> `read_bundle` then `verify_bundle`: a list of problems or BundleError."""
    from homeapp.bundle import BundleError, read_bundle, verify_bundle

    path = _scratch() / "log.bundle"
    path.write_bytes(data)
    try:
        bundle = read_bundle(path)
        problems = verify_bundle(bundle, _public_key())
    except BundleError:
        return
    # Signed by a key made up here: no fuzzed file can verify as intact.
    assert isinstance(problems, list) and problems, "a forged bundle verified as intact"
    bundle.export()


TARGETS = {"prescription": fuzz_prescription, "bundle": fuzz_bundle}


#: Classic JSON-reader hazards, in every target's seed corpus: nesting past Python's
#: recursion limit (RecursionError) and an integer past its 4300-digit conversion limit
#: (ValueError, not JSONDecodeError). libFuzzer rarely builds inputs this long by itself.
HOSTILE_JSON = [b"[" * 100_000, b"1" * 5000, b'{"a": ' + b"9" * 5000 + b"}"]
_BUNDLE_HEADER = b'{"kind":"header","data":{"format":"homeapp.log-bundle/1"}}\n'


def seed_inputs(target: str) -> list[bytes]:
    """Inputs for the fuzzer to start from (and for the smoke test): well-formed files and
    the hostile JSON above, alone and (for bundles) after a valid header line."""
    if target == "prescription":
        from tests.sessionkit import rx_dict
        rx = rx_dict()
        rx.update(issued="2026-11-01", expires="2027-01-31")
        adjustable = json.loads(json.dumps(rx))
        adjustable["blocks"][0]["hz"] = {"value": 50, "min": 40, "max": 60}
        adjustable["blocks"].append({"label": "endurance", "minutes": 2, "hz": 20, "pulse_us": 200,
                                     "on_s": 6, "off_s": 0, "ramp_up_s": 1, "ramp_down_s": 1,
                                     "pattern": "alternating"})
        return [json.dumps(rx).encode(), json.dumps(adjustable, indent=1).encode(), b"{}", b"[]",
                *HOSTILE_JSON]
    if target == "bundle":
        return [_valid_bundle_bytes(), _BUNDLE_HEADER, b"", *HOSTILE_JSON,
                *(_BUNDLE_HEADER + bad + b"\n" for bad in HOSTILE_JSON)]
    raise KeyError(target)


def _valid_bundle_bytes() -> bytes:
    """A real bundle written from a real store with one session in it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from homeapp.bundle import write_bundle
    from homeapp.store import Store

    folder = Path(tempfile.mkdtemp(prefix="seed-", dir=_scratch()))
    store = Store.open(folder / "log.db")
    try:
        when = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.timezone.utc)
        store.start_session(session_id="s-1", prescription_id="rx-1", started_at=when,
                            planned_contractions=2, channels=1)
        store.add_event("s-1", t=0.0, kind="start", detail={})
        store.add_event("s-1", t=1.5, kind="intensity", detail={"channel": 0, "ma": 12})
        store.add_contraction("s-1", channel=0, index=0, start_t=1.0, end_t=5.0, peak_ma=12.0,
                              completed=True)
        store.end_session("s-1", status="completed", ended_at=when + dt.timedelta(minutes=2))
        out = folder / "log.bundle"
        write_bundle(store, out, device_key=Ed25519PrivateKey.generate())
    finally:
        store.close()
    return out.read_bytes()

