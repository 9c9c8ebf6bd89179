"""Validation of `homeapp.prescription/1` (contract.md): from JSON to an immutable model.

Every problem is reported, not only the first, each as one line that starts with the
field path (`blocks[1].hz: 400 is above the device limit of 150 (allowed 1 to 150 Hz)`).
The numbers come from `schedules.limits` only. `json_schema()` builds the shipped JSON
Schema from the same table; the schema cannot express what depends on today's date or
on sums of fields, so those rules live here only (see `VALIDATOR_ONLY_RULES`).
"""
from __future__ import annotations

import copy
import datetime as dt
import difflib
import json
import math
import os
import re
from types import MappingProxyType
from typing import Any, Mapping

from .limits import (
    BLOCK_NUMERIC_FIELDS,
    CHANNELS_MAX,
    CHANNELS_MIN,
    DEVICE_LIMITS,
    FORMAT,
    PATTERNS,
    SCHEDULE_LIMITS,
    SESSION_MAX_MINUTES,
    SUPERVISION,
    Limit,
)
from .model import Block, Channel, Prescription, Range

__all__ = [
    "PrescriptionError", "parse_prescription", "load_prescription", "check_prescription",
    "json_schema", "schema_path", "VALIDATOR_ONLY_RULES", "block_max_duration_s",
]

#: Rules the JSON Schema cannot express; only `parse_prescription` checks them.
VALIDATOR_ONLY_RULES = (
    "issued <= today <= expires, and issued <= expires",
    "issued <= valid_from <= expires (valid_from may be in the future)",
    "patient_id and clinician_id name someone (not a placeholder such as UNASSIGNED)",
    "dates are real calendar dates (the schema checks only the YYYY-MM-DD shape)",
    "ramp_up_s + ramp_down_s <= on_s (at the extremes a patient can reach)",
    "alternating blocks need 2 channels and off_s >= on_s (at the extremes)",
    "session total <= 90 min (with the longest adjustable settings)",
    "adjustable values: min <= value <= max",
    "numbers are finite (no NaN or Infinity)",
    "sessions_per_week <= 7 * max_sessions_per_day",
    "no duplicate keys in a JSON object (load_prescription only)",
)

# Sums of decimals (0.1 + 0.2) must not fail a rule they meet on paper.
_EPS = 1e-9
_MAX_FILE_BYTES = 1_000_000  # a prescription is a few kB; anything bigger is not one
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

#: Top-level fields: name -> required.
_TOP_FIELDS: dict[str, bool] = {
    "format": True, "id": True, "patient_id": True, "clinician_id": True,
    "issued": True, "expires": True, "valid_from": False, "sessions_per_week": True,
    "max_sessions_per_day": True, "min_hours_between": True, "supervision": True,
    "channels": True, "blocks": True, "signature": False,
}
_CHANNEL_FIELDS: dict[str, bool] = {"label": False, "max_ma": True}
_BLOCK_FIELDS: dict[str, bool] = {"label": False, **{f: True for f in BLOCK_NUMERIC_FIELDS},
                                  "pattern": False}
_ADJUSTABLE_KEYS = ("value", "min", "max")
_SIGNATURE_FIELDS: dict[str, bool] = {"alg": True, "key_id": True, "value": True}
_INTEGER_FIELDS = ("sessions_per_week", "max_sessions_per_day")

#: Ids that stand for "nobody yet": a prescription names a real patient and clinician.
_PLACEHOLDER_IDS = frozenset({"unassigned", "unknown", "tbd", "todo", "none", "null", "n/a", "na",
                              "?", "-", "x", "xxx", "patient", "clinician", "test"})

#: Words people write for a field, by meaning (spelling alone cannot link "frequency" to
#: "hz"). Normalised: lower case, runs of other characters as "_".
_MEANINGS: dict[str, str] = {
    "frequency": "hz", "freq": "hz", "rate": "hz", "pulse_rate": "hz", "hertz": "hz",
    "frequency_hz": "hz", "pulse_frequency": "hz",
    "pulse_width": "pulse_us", "pulsewidth": "pulse_us", "width": "pulse_us", "pulse_duration": "pulse_us",
    "phase_duration": "pulse_us", "pulse": "pulse_us", "width_us": "pulse_us",
    "duration": "minutes", "length": "minutes", "time": "minutes", "mins": "minutes", "min": "minutes",
    "duration_min": "minutes", "block_minutes": "minutes",
    "on": "on_s", "on_time": "on_s", "contraction": "on_s", "contraction_s": "on_s", "work": "on_s",
    "off": "off_s", "off_time": "off_s", "rest": "off_s", "rest_s": "off_s", "pause": "off_s",
    "ramp_up": "ramp_up_s", "ramp": "ramp_up_s", "rise": "ramp_up_s", "ramp_down": "ramp_down_s", "fall": "ramp_down_s",
    "amplitude": "max_ma", "intensity": "max_ma", "current": "max_ma", "cap": "max_ma", "max_current": "max_ma",
    "ma": "max_ma", "max_intensity": "max_ma",
    "start": "valid_from", "start_date": "valid_from", "starts": "valid_from", "begin": "valid_from",
    "from": "valid_from", "valid_after": "valid_from", "starts_on": "valid_from",
    "end": "expires", "end_date": "expires", "expiry": "expires", "valid_until": "expires", "until": "expires",
    "date": "issued", "issue_date": "issued", "issued_on": "issued",
    "patient": "patient_id", "clinician": "clinician_id", "doctor": "clinician_id", "therapist": "clinician_id",
    "per_week": "sessions_per_week", "sessions": "sessions_per_week", "per_day": "max_sessions_per_day",
    "hours_between": "min_hours_between", "interval": "min_hours_between",
    "caregiver": "supervision", "mode": "pattern", "electrodes": "channels", "steps": "blocks",
    "phases": "blocks",
}


class PrescriptionError(ValueError):
    """A prescription that cannot be accepted. `problems` holds every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# ----------------------------------------------------------------------------- helpers

def _fmt(x: Any) -> str:
    """A value as a person would write it: 400, 2.5, "fifty", true."""
    if isinstance(x, bool) or x is None:
        return json.dumps(x)
    if isinstance(x, int) and x.bit_length() > 64:
        return "a huge number"  # str() of a 5000-digit int raises; nobody needs its digits
    if isinstance(x, (int, float)):
        if isinstance(x, float) and not math.isfinite(x):
            return str(x)
        # Ten digits: 150.0000001 must not print as "150" beside "above the limit of 150".
        return str(int(x)) if float(x).is_integer() else f"{x:.10g}"
    if isinstance(x, (dt.date,)):
        return x.isoformat()
    try:
        text = json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return f"<{_kind(x)}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false",
            type(None): "null"}.get(type(x), "a number" if isinstance(x, (int, float)) else type(x).__name__)


class _Problems(list):
    def add(self, path: str, text: str) -> None:
        self.append(f"{path}: {text}")


def _meaning_of(key: str, known: Mapping[str, bool]) -> str | None:
    """The known field `key` most likely means, judged by meaning rather than spelling:
    the synonyms above, then the person's name of each limited field ("frequency")."""
    norm = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
    hint = _MEANINGS.get(norm)
    if hint in known:
        return hint
    words = norm.replace("_", " ")
    for name in known:
        limit = DEVICE_LIMITS.get(name) or SCHEDULE_LIMITS.get(name)
        if limit is not None and words and (words == limit.what or words in limit.what.split()):
            return name
    return None


def _unknown_fields(p: _Problems, path: str, obj: Mapping[str, Any], known: Mapping[str, bool]) -> None:
    for key in obj:
        if key in known:
            continue
        hint = _meaning_of(str(key), known)
        if hint is None:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.5)
            hint = close[0] if close else None
        where = f"{path}.{key}" if path else str(key)
        p.add(where, "unknown field" + (f" (did you mean {hint}?)" if hint else
                                         f" (known fields: {', '.join(known)})"))


def _missing_fields(p: _Problems, path: str, obj: Mapping[str, Any], known: Mapping[str, bool],
                    what: Mapping[str, str]) -> None:
    for key, required in known.items():
        if required and key not in obj:
            where = f"{path}.{key}" if path else key
            p.add(where, "missing" + (f" ({what[key]})" if key in what else ""))


def _number(p: _Problems, path: str, v: Any) -> float | None:
    # JSON true/false are not numbers, even though Python's bool is an int.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        p.add(path, f"{_fmt(v)} is not a number")
        return None
    if isinstance(v, float) and not math.isfinite(v):
        p.add(path, f"{_fmt(v)} is not a finite number")
        return None
    return v


def _limited(p: _Problems, path: str, v: Any, limit: Limit, *, device: bool = True) -> float | None:
    n = _number(p, path, v)
    if n is None:
        return None
    which = "device limit" if device else "limit"
    if n > limit.high:
        p.add(path, f"{_fmt(n)} is above the {which} of {_fmt(limit.high)} (allowed {limit.describe()})")
        return None
    if n < limit.low:
        p.add(path, f"{_fmt(n)} is below the {which} of {_fmt(limit.low)} (allowed {limit.describe()})")
        return None
    return n


def _text(p: _Problems, path: str, v: Any) -> str | None:
    if not isinstance(v, str):
        p.add(path, f"{_fmt(v)} is not text")
        return None
    if not v.strip():
        p.add(path, "is empty")
        return None
    return v


def _choice(p: _Problems, path: str, v: Any, allowed: tuple[str, ...]) -> str | None:
    if v in allowed and isinstance(v, str):
        return v
    p.add(path, f"{_fmt(v)} is not one of {', '.join(json.dumps(a) for a in allowed)}")
    return None


def _date(p: _Problems, path: str, v: Any) -> dt.date | None:
    if isinstance(v, str) and _DATE_RE.match(v):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    p.add(path, f"{_fmt(v)} is not a date (expected YYYY-MM-DD)")
    return None


# ------------------------------------------------------------------------- durations

def block_max_duration_s(*, minutes_max: float, cycle_min_s: float, cycle_max_s: float,
                         can_be_continuous: bool) -> float:
    """The longest a block can run when the patient may move minutes, on_s and off_s
    within their ranges (an upper bound, exact for fixed values).

    An intermittent block runs `c * max(1, round(60 m / c))` seconds (contract.md): this
    never falls as m grows, so take m at its largest; in c it is a sawtooth whose teeth
    peak just below c = 60 m / (k - 0.5), highest for the smallest such k in range.
    """
    m_s = 60 * minutes_max
    best = m_s if can_be_continuous else 0.0
    if cycle_max_s <= 0:
        return best
    best = max(best, cycle_max_s * max(1, round(m_s / cycle_max_s)))
    if cycle_min_s < cycle_max_s:
        k = max(2, math.ceil(m_s / cycle_max_s + 0.5))
        tooth = m_s / (k - 0.5)
        if tooth >= cycle_min_s:
            best = max(best, k * tooth)
    return best


# --------------------------------------------------------------------------- parsing

class _Num:
    """A parsed numeric block field: the value and, when adjustable, its range."""

    __slots__ = ("value", "range")

    def __init__(self, value: float, rng: Range | None) -> None:
        self.value, self.range = value, rng

    @property
    def lo(self) -> float:
        return self.range.min if self.range else self.value

    @property
    def hi(self) -> float:
        return self.range.max if self.range else self.value


def _block_number(p: _Problems, path: str, v: Any, limit: Limit) -> _Num | None:
    if not isinstance(v, dict):
        n = _limited(p, path, v, limit)
        return None if n is None else _Num(n, None)
    # Patient-adjustable: {value, min, max}, every one inside the device limits.
    bad = len(p)
    for key in v:
        if key not in _ADJUSTABLE_KEYS:
            p.add(f"{path}.{key}", "unknown field (an adjustable value has value, min and max)")
    got: dict[str, float | None] = {}
    for key in _ADJUSTABLE_KEYS:
        if key not in v:
            p.add(f"{path}.{key}", f"missing (an adjustable value needs value, min and max, "
                                   f"each {limit.describe()})")
            got[key] = None
        else:
            got[key] = _limited(p, f"{path}.{key}", v[key], limit)
    if len(p) > bad:
        return None
    value, lo, hi = got["value"], got["min"], got["max"]
    assert value is not None and lo is not None and hi is not None
    if lo > hi:
        p.add(path, f"min {_fmt(lo)} is above max {_fmt(hi)}")
        return None
    if not lo <= value <= hi:
        p.add(path, f"value {_fmt(value)} is outside its own range {_fmt(lo)} to {_fmt(hi)}")
        return None
    return _Num(value, Range(lo, hi))


def _extreme(name: str, num: _Num, which: str) -> str:
    """`on_s = 4` or `on_s = 4 (at its smallest)` when the patient can move it."""
    return f"{name} = {_fmt(num.lo if which == 'lo' else num.hi)}" + (
        f" (at its {'smallest' if which == 'lo' else 'largest'})" if num.range else "")


def _parse_block(p: _Problems, index: int, raw: Any, *, n_channels: int | None) -> tuple[Block | None, float | None]:
    """One block; returns it (None if invalid) and its longest duration in seconds (None
    when that cannot be known)."""
    path = f"blocks[{index}]"
    if not isinstance(raw, dict):
        p.add(path, f"expected an object, got {_kind(raw)}")
        return None, None
    bad = len(p)
    _unknown_fields(p, path, raw, _BLOCK_FIELDS)
    _missing_fields(p, path, raw, _BLOCK_FIELDS,
                    {f: f"a number, {DEVICE_LIMITS[f].describe()}" for f in BLOCK_NUMERIC_FIELDS})
    label = _text(p, f"{path}.label", raw["label"]) if "label" in raw else f"block {index + 1}"
    pattern = _choice(p, f"{path}.pattern", raw["pattern"], PATTERNS) if "pattern" in raw else "synchronous"
    nums: dict[str, _Num] = {}
    for name in BLOCK_NUMERIC_FIELDS:
        if name in raw:
            got = _block_number(p, f"{path}.{name}", raw[name], DEVICE_LIMITS[name])
            if got is not None:
                nums[name] = got

    # Cross-field rules must hold at every value the patient could reach.
    up, down, on, off = (nums.get(k) for k in ("ramp_up_s", "ramp_down_s", "on_s", "off_s"))
    if up and down and on and up.hi + down.hi > on.lo + _EPS:
        adj = up.range or down.range
        p.add(path, f"ramp_up_s + ramp_down_s = {_fmt(up.hi + down.hi)}"
                    f"{' (at their largest)' if adj else ''} is longer than {_extreme('on_s', on, 'lo')}")
    if pattern == "alternating":
        if n_channels is not None and n_channels != 2:
            p.add(f"{path}.pattern", f'"alternating" needs 2 channels ({n_channels} given)')
        if on and off and off.lo + _EPS < on.hi:
            p.add(path, f'"alternating" needs off_s >= on_s, but {_extreme("off_s", off, "lo")} '
                        f'and {_extreme("on_s", on, "hi")}')

    longest = None
    if all(k in nums for k in ("minutes", "on_s", "off_s")):
        m, on, off = nums["minutes"], nums["on_s"], nums["off_s"]
        longest = block_max_duration_s(minutes_max=m.hi, cycle_min_s=on.lo + off.lo,
                                       cycle_max_s=on.hi + off.hi, can_be_continuous=off.lo == 0)
    if len(p) > bad or label is None or pattern is None:
        return None, longest
    block = Block(label=label, pattern=pattern,
                  ranges=MappingProxyType({k: v.range for k, v in nums.items() if v.range}),
                  **{k: v.value for k, v in nums.items()})
    return block, longest


def _parse_channel(p: _Problems, index: int, raw: Any) -> Channel | None:
    path = f"channels[{index}]"
    if not isinstance(raw, dict):
        p.add(path, f"expected an object, got {_kind(raw)}")
        return None
    bad = len(p)
    _unknown_fields(p, path, raw, _CHANNEL_FIELDS)
    _missing_fields(p, path, raw, _CHANNEL_FIELDS,
                    {"max_ma": f"a number, {DEVICE_LIMITS['max_ma'].describe()}"})
    label = _text(p, f"{path}.label", raw["label"]) if "label" in raw else f"channel {index + 1}"
    cap = _limited(p, f"{path}.max_ma", raw["max_ma"], DEVICE_LIMITS["max_ma"]) if "max_ma" in raw else None
    if len(p) > bad or label is None or cap is None:
        return None
    return Channel(label=label, max_ma=cap)


def _today(today: dt.date | None) -> dt.date:
    # A datetime is a date too, but comparing one with a date raises: keep the day.
    if today is None:
        return dt.date.today()
    return today.date() if isinstance(today, dt.datetime) else today


def _problems_of(data: object, today: dt.date) -> tuple[_Problems, Prescription | None]:
    p = _Problems()
    if not isinstance(data, dict):
        p.add("prescription", f"expected a JSON object, got {_kind(data)}")
        return p, None
    fmt = data.get("format")
    if "format" not in data:
        p.add("format", f'missing (expected "{FORMAT}")')
    elif fmt != FORMAT:
        # Another format's fields may mean other things: judging them as /1 would mislead.
        p.add("format", f'{_fmt(fmt)} is not supported (expected "{FORMAT}")')
        return p, None

    _unknown_fields(p, "", data, _TOP_FIELDS)
    _missing_fields(p, "", data, _TOP_FIELDS, {
        "id": "text", "patient_id": "text", "clinician_id": "text",
        "issued": "a date YYYY-MM-DD", "expires": "a date YYYY-MM-DD",
        "supervision": " or ".join(json.dumps(s) for s in SUPERVISION),
        **{k: f"a number, {v.describe()}".rstrip() for k, v in SCHEDULE_LIMITS.items()},
        "channels": f"a list of {CHANNELS_MIN} to {CHANNELS_MAX} channels",
        "blocks": "a list of at least one block"})

    texts = {k: _text(p, k, data[k]) for k in ("id", "patient_id", "clinician_id") if k in data}
    for k in ("patient_id", "clinician_id"):
        if texts.get(k) is not None and texts[k].strip().lower() in _PLACEHOLDER_IDS:
            who = "patient" if k == "patient_id" else "clinician"
            p.add(k, f"{_fmt(texts[k])} is a placeholder, not a {who}: give the {who}'s id")
            texts[k] = None

    issued = _date(p, "issued", data["issued"]) if "issued" in data else None
    expires = _date(p, "expires", data["expires"]) if "expires" in data else None
    valid_from = _date(p, "valid_from", data["valid_from"]) if "valid_from" in data else None
    if issued and expires and expires < issued:
        p.add("expires", f"{_fmt(expires)} is before issued {_fmt(issued)}")
    if issued and issued > today:
        p.add("issued", f"{_fmt(issued)} is in the future (today is {_fmt(today)}); issued is the day "
                        f"the prescription was written: to start sessions later, set valid_from")
    if valid_from and issued and valid_from < issued:
        p.add("valid_from", f"{_fmt(valid_from)} is before issued {_fmt(issued)} "
                            f"(sessions cannot start before the prescription was written)")
    if valid_from and expires and valid_from > expires:
        p.add("valid_from", f"{_fmt(valid_from)} is after expires {_fmt(expires)} (no day would be left)")
    if expires and expires < today:
        p.add("expires", f"{_fmt(expires)} has passed (today is {_fmt(today)})")

    sched: dict[str, float | None] = {}
    for name, limit in SCHEDULE_LIMITS.items():
        if name not in data:
            continue
        n = _limited(p, name, data[name], limit, device=False)
        if n is not None and name in _INTEGER_FIELDS:
            if not float(n).is_integer():
                p.add(name, f"{_fmt(n)} is not a whole number")
                n = None
            else:
                n = int(n)
        sched[name] = n
    per_week, per_day = sched.get("sessions_per_week"), sched.get("max_sessions_per_day")
    if per_week is not None and per_day is not None and per_week > 7 * per_day:
        # A target no week can meet would make every adherence figure a failure.
        p.add("sessions_per_week", f"{per_week} cannot fit in a week of at most {per_day} per day "
                                   f"(max_sessions_per_day); at most {7 * per_day}")

    supervision = _choice(p, "supervision", data["supervision"], SUPERVISION) if "supervision" in data else None

    channels: list[Channel | None] = []
    n_channels: int | None = None
    if "channels" in data:
        raw = data["channels"]
        if not isinstance(raw, list):
            p.add("channels", f"expected a list of {CHANNELS_MIN} to {CHANNELS_MAX} channels, got {_kind(raw)}")
        else:
            if not CHANNELS_MIN <= len(raw) <= CHANNELS_MAX:
                p.add("channels", f"{len(raw)} channels given (allowed {CHANNELS_MIN} to {CHANNELS_MAX})")
            else:
                n_channels = len(raw)
            channels = [_parse_channel(p, i, c) for i, c in enumerate(raw)]

    blocks: list[Block | None] = []
    if "blocks" in data:
        raw = data["blocks"]
        if not isinstance(raw, list):
            p.add("blocks", f"expected a list of blocks, got {_kind(raw)}")
        elif not raw:
            p.add("blocks", "no blocks (at least one is needed)")
        else:
            longest: list[float | None] = []
            for i, b in enumerate(raw):
                block, most = _parse_block(p, i, b, n_channels=n_channels)
                blocks.append(block)
                longest.append(most)
            if all(x is not None for x in longest):
                total = sum(longest)  # type: ignore[arg-type]
                # Only minutes, on_s and off_s move the session's length.
                adjustable = any(isinstance(b.get(k), dict) for b in raw
                                 for k in ("minutes", "on_s", "off_s"))
                if total > SESSION_MAX_MINUTES * 60 + _EPS:
                    p.add("blocks", f"session total {_fmt(round(total / 60, 2))} min"
                                    f"{' (with the longest adjustable settings)' if adjustable else ''}"
                                    f" is longer than the limit of {_fmt(SESSION_MAX_MINUTES)} min")

    signature = None
    if "signature" in data:
        raw = data["signature"]
        if not isinstance(raw, dict):
            p.add("signature", f"expected an object, got {_kind(raw)}")
        else:
            _unknown_fields(p, "signature", raw, _SIGNATURE_FIELDS)
            _missing_fields(p, "signature", raw, _SIGNATURE_FIELDS, {})
            ok = all(_text(p, f"signature.{k}", raw[k]) is not None for k in _SIGNATURE_FIELDS if k in raw)
            if ok:
                signature = MappingProxyType(dict(raw))

    if p:
        return p, None
    rx = Prescription(
        id=texts["id"], patient_id=texts["patient_id"], clinician_id=texts["clinician_id"],
        issued=issued, expires=expires,
        sessions_per_week=sched["sessions_per_week"],
        max_sessions_per_day=sched["max_sessions_per_day"],
        min_hours_between=sched["min_hours_between"],
        supervision=supervision, channels=tuple(channels), blocks=tuple(blocks),
        signature=signature, format=FORMAT, valid_from=valid_from,
        # A private deep copy: later changes to the caller's dict cannot alter what was checked.
        source=MappingProxyType(copy.deepcopy(data)))
    return p, rx


# ---------------------------------------------------------------------------- public

def parse_prescription(data: object, *, today: dt.date | None = None) -> Prescription:
    """The validated, immutable prescription, or `PrescriptionError` with every problem.
    `today` (default: the local date) decides whether the prescription is in force."""
    problems, rx = _problems_of(data, _today(today))
    if rx is None:
        raise PrescriptionError(list(problems))
    return rx


def check_prescription(data: object, *, today: dt.date | None = None) -> list[str]:
    """Every problem with `data`, one line each; empty when it is a valid prescription."""
    return list(_problems_of(data, _today(today))[0])


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in a file, or `PrescriptionError` with one clear line (prefixed by
    the file name) when it is missing, unreadable, not JSON or not an object."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PrescriptionError([f"{name}: no such file"]) from None
    except IsADirectoryError:
        raise PrescriptionError([f"{name}: is a directory, not a file"]) from None
    except OSError as e:
        raise PrescriptionError([f"{name}: cannot read ({e.strerror or e})"]) from None
    return json_object_from_bytes(raw, name=name)


def json_object_from_bytes(raw: bytes, *, name: str) -> dict[str, Any]:
    """The JSON object in `raw` (a prescription's bytes, from a file or the network), or
    `PrescriptionError` with one clear line prefixed by `name`: too large, not UTF-8, not
    JSON, duplicate keys, NaN or Infinity, or not an object."""
    if len(raw) > _MAX_FILE_BYTES:
        raise PrescriptionError([f"{name}: too large for a prescription (over {_MAX_FILE_BYTES} bytes)"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PrescriptionError([f"{name}: not JSON (not UTF-8 text)"]) from None

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # With duplicates, which value counts is a parser's whim: refuse instead.
        seen: dict[str, Any] = {}
        for k, v in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {json.dumps(k)}")
            seen[k] = v
        return seen

    def no_constant(token: str) -> Any:
        raise ValueError(f"{token} is not valid JSON")

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise PrescriptionError([f"{name}: not JSON ({e.msg} at line {e.lineno}, column {e.colno})"]) from None
    except (ValueError, RecursionError) as e:
        raise PrescriptionError([f"{name}: not acceptable JSON ({e})"]) from None
    if not isinstance(data, dict):
        raise PrescriptionError([f"{name}: expected a JSON object at the top level, got {_kind(data)}"])
    return data


def load_prescription(path: str | os.PathLike[str], *, today: dt.date | None = None) -> Prescription:
    """Read and validate a prescription file; `PrescriptionError` on any problem."""
    return parse_prescription(read_json_object(path), today=today)


# ---------------------------------------------------------------------------- schema

def schema_path() -> "os.PathLike[str]":
    """The shipped JSON Schema (draft 2020-12) of `homeapp.prescription/1`."""
    from importlib.resources import files
    return files("schedules.schema").joinpath("prescription-1.schema.json")  # type: ignore[return-value]


def _schema_number(limit: Limit) -> dict[str, Any]:
    return {"type": "number", "minimum": limit.low, "maximum": limit.high,
            "description": f"{limit.what}, {limit.describe()}"}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format, built from `schedules.limits` (the shipped file is
    this, written out; a test keeps the two equal)."""
    text = {"type": "string", "minLength": 1, "pattern": "\\S"}
    date = {"type": "string", "pattern": _DATE_RE.pattern, "format": "date"}

    def adjustable(limit: Limit) -> dict[str, Any]:
        n = _schema_number(limit)
        return {"oneOf": [n, {"type": "object", "required": list(_ADJUSTABLE_KEYS),
                              "additionalProperties": False,
                              "properties": {k: n for k in _ADJUSTABLE_KEYS},
                              "description": "patient-adjustable: min <= value <= max"}]}

    sched = {}
    for name, limit in SCHEDULE_LIMITS.items():
        sched[name] = _schema_number(limit)
        if name in _INTEGER_FIELDS:
            sched[name]["type"] = "integer"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://homeapp.invalid/schema/prescription-1.schema.json",
        "title": FORMAT,
        "description": "A home NMES prescription. Generated from schedules/limits.py by "
                       "schedules.validate.json_schema(). Checked only by the validator: "
                       + "; ".join(VALIDATOR_ONLY_RULES) + ".",
        "type": "object",
        "required": [k for k, req in _TOP_FIELDS.items() if req],
        "additionalProperties": False,
        "properties": {
            "format": {"const": FORMAT},
            "id": text, "patient_id": text, "clinician_id": text,
            "issued": date, "expires": date,
            "valid_from": {**date, "description": "the first day sessions may run, when later than issued "
                                                  "(optional; default: issued)"},
            **sched,
            "supervision": {"enum": list(SUPERVISION)},
            "channels": {
                "type": "array", "minItems": CHANNELS_MIN, "maxItems": CHANNELS_MAX,
                "items": {"type": "object", "required": ["max_ma"], "additionalProperties": False,
                          "properties": {"label": text, "max_ma": _schema_number(DEVICE_LIMITS["max_ma"])}}},
            "blocks": {
                "type": "array", "minItems": 1,
                "items": {"type": "object",
                          "required": list(BLOCK_NUMERIC_FIELDS), "additionalProperties": False,
                          "properties": {"label": text,
                                         **{f: adjustable(DEVICE_LIMITS[f]) for f in BLOCK_NUMERIC_FIELDS},
                                         "pattern": {"enum": list(PATTERNS)}}}},
            "signature": {"type": "object", "required": list(_SIGNATURE_FIELDS),
                          "additionalProperties": False,
                          "properties": {k: text for k in _SIGNATURE_FIELDS}},
        },
    }


def _write_schema() -> None:
    """`python -m schedules.validate`: rewrite the shipped schema from limits.py."""
    path = os.path.join(os.path.dirname(__file__), "schema", "prescription-1.schema.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(json_schema(), f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(path)


if __name__ == "__main__":
    _write_schema()
