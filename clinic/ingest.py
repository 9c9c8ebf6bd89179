"""Reading and judging a device's upload of chained log records, and putting stored
records back together as the device's `homeapp log export`.

An upload is JSON lines: records exactly as homeapp/bundle.py writes them (`seq`, `kind`,
`data`, `prev_hash`, `hash`), then one end line signed by the device over the chain's
count and head (the payload of a bundle's end record). The clinic stores an upload only
when every record's hash matches its content, the records continue the chain the clinic
already holds without a gap or a change of order, records it already holds are identical,
and the end line's signature verifies with the key paired to the device. Otherwise it
refuses the whole upload and names every problem.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from homeapp import syncproto
from homeapp.bundle import GENESIS

#: Record kinds a device's chain holds (homeapp/bundle.py).
KINDS = ("header", "prescription", "session", "contraction", "event", "report", "device_event")
_HASH_SUFFIX = len(',"hash":"') + 64 + len('"}')


@dataclass(slots=True)
class UploadRecord:
    """One record line of an upload, parsed and hashed."""

    number: int            # 1-based line in the upload
    seq: int | None
    kind: str | None
    data: Any
    prev_hash: str | None
    hash: str | None
    line: str              # what is stored: the line as the device sent it
    intact: bool           # its hash matches its content
    well_formed: bool

    @property
    def session_id(self) -> str | None:
        if not isinstance(self.data, dict):
            return None
        sid = self.data.get("id") if self.kind == "session" else self.data.get("session_id")
        return str(sid)[:128] if sid is not None else None

    def describe(self) -> str:
        data = self.data if isinstance(self.data, Mapping) else {}
        if self.kind == "session":
            return f"session {data.get('id', '?')}"
        if self.kind == "prescription":
            return f"prescription {data.get('id', '?')}"
        if self.kind == "device_event":
            return f"device event {data.get('kind', '?')} at {data.get('at', '?')}"
        if "session_id" in data:
            return f"{self.kind} of session {data['session_id']}"
        return str(self.kind or "record")


@dataclass
class Upload:
    records: list[UploadRecord]
    end: dict[str, Any]
    problems: list[str]    # lines that are not records at all


def _bad_request(message: str):
    from .service import ClinicError
    return ClinicError(message)


def _is_hex64(x: Any) -> bool:
    return isinstance(x, str) and len(x) == 64 and not x.strip("0123456789abcdef")


#: One decoder and one canonical encoder for every line (json.loads and json.dumps with
#: options build a new one per call); the encoder is bundle.py's canonical form exactly.
_DECODER = json.JSONDecoder()
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_BLANK = " \t\n\r\x0b\x0c"
_RECORD_KEYS = frozenset(("seq", "kind", "data", "prev_hash", "hash"))
_HEX = "0123456789abcdef"

try:    # the clinic extra installs it; without it every line takes the standard library's path
    import orjson as _orjson
except ImportError:       # pragma: no cover - the clinic extra has it
    _orjson = None


def _orjson_differs(canonical: bytes, data: Any) -> bool:
    """Whether orjson's canonical form may differ from the standard library's (bundle.py's).
    orjson writes a float below 1e-4 otherwise (0.00001 for 1e-05) and reads an integer
    beyond 64 bits as a float; everything else it reads and writes exactly as the standard
    library does (keys sorted by code point, the same escapes, the same shortest float
    digits, the same exponent form from 1e16): the clinic's tests compare the two paths.
    Such a float is written with "0.0000" or an exponent, so only a line holding one of
    those bytes needs its numbers looked at."""
    if b"e+" not in canonical and b"e-" not in canonical and b"0.0000" not in canonical:
        return False
    return _holds_odd_float(data)


def _holds_odd_float(value: Any) -> bool:
    t = type(value)
    if t is float:
        size = abs(value)
        return size != 0.0 and (size < 1e-4 or size >= 2.0 ** 63)
    if t is dict:
        return any(_holds_odd_float(v) for v in value.values())
    if t is list:
        return any(_holds_odd_float(v) for v in value)
    return False


def _not_a_record(number: int) -> UploadRecord:
    return UploadRecord(number, None, None, None, None, None, "", False, False)


def parse_record_line(raw: bytes | str, number: int) -> UploadRecord:
    """One line (bytes, or text already decoded); never raises. A well-formed line is
    hashed in bundle.py's canonical form, made by orjson where it is byte for byte the
    standard library's, by the standard library otherwise. The line is stored as
    received: parsing it again gives the very data that was hashed."""
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError:
        return _not_a_record(number)
    if _orjson is not None:
        try:
            obj = _orjson.loads(text)
        except (ValueError, RecursionError):    # NaN, a lone surrogate, ...: the standard library judges it
            obj = None
        if type(obj) is dict:
            seq, kind, data, prev, h = (obj.get("seq"), obj.get("kind"), obj.get("data"), obj.get("prev_hash"),
                                        obj.pop("hash", None))
            if (type(seq) is int and seq >= 0 and kind in KINDS and type(data) is dict and type(prev) is str
                    and len(prev) == 64 and not prev.strip(_HEX) and type(h) is str):
                # the four hashed fields, canonical (bundle.py's record_hash)
                try:
                    canonical = _orjson.dumps(obj if len(obj) == 4 else
                                              {"data": data, "kind": kind, "prev_hash": prev, "seq": seq},
                                              option=_orjson.OPT_SORT_KEYS)
                    differs = _orjson_differs(canonical, data)
                except (TypeError, ValueError, RecursionError):    # nested deeper than orjson writes
                    differs = True
                if not differs and hashlib.sha256(canonical).hexdigest() == h:
                    return UploadRecord(number, seq, kind, data, prev, h, text, True, True)
        # not a well-formed record as orjson reads it, a number it writes otherwise, or a
        # hash not over the canonical form (it may be over the very text, as bundle.py
        # also accepts): the standard library's reading decides, exactly as without orjson
    return _parse_record_text(text, number)


def _parse_record_text(text: str, number: int) -> UploadRecord:
    """parse_record_line with the standard library alone. The fast path hashes the very
    text received (a line whose keys are already in sorted order); any other line is
    hashed in canonical form."""
    try:
        obj = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return _not_a_record(number)
    if type(obj) is not dict:
        return _not_a_record(number)
    seq, kind, data, prev, h = obj.get("seq"), obj.get("kind"), obj.get("data"), obj.get("prev_hash"), obj.get("hash")
    well = (type(seq) is int and seq >= 0 and kind in KINDS and type(data) is dict and _is_hex64(prev)
            and _is_hex64(h))
    rec = UploadRecord(number, seq if type(seq) is int else None, kind if isinstance(kind, str) else None,
                       data, prev if isinstance(prev, str) else None, h if isinstance(h, str) else None,
                       text, False, well)
    if not well:
        return rec
    if text.endswith('"}') and text[-66:-2] == h and text[-_HASH_SUFFIX:-66] == ',"hash":"':
        if hashlib.sha256(text[:-_HASH_SUFFIX].encode("utf-8") + b"}").hexdigest() == h:
            rec.intact = True
            return rec
    # keys in another order than sorted (the log's own order, kept for the export), or
    # another layout: the hash is over the canonical form of what the line holds
    try:
        if len(obj) == 5 and obj.keys() == _RECORD_KEYS:
            del obj["hash"]                 # the four hashed fields, canonical: bundle.py's record_hash
            canonical = _CANONICAL.encode(obj).encode("utf-8")
        else:
            canonical = _CANONICAL.encode({"seq": seq, "kind": kind, "data": data, "prev_hash": prev}).encode("utf-8")
    except RecursionError:              # read, but nested too deep to write again: not what a device hashed
        return rec
    if hashlib.sha256(canonical).hexdigest() == h:
        rec.intact = True
    return rec


def parse_upload(body: bytes) -> Upload:
    """The records and the end line of an upload body; ClinicError (400) when the body is
    not an upload at all (empty, no end line, too many records)."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise _bad_request("empty upload: expected JSON lines of log records and a signed end line")
    if len(lines) - 1 > syncproto.MAX_RECORDS_PER_UPLOAD:
        raise _bad_request(f"too many records in one upload ({len(lines) - 1}; at most "
                           f"{syncproto.MAX_RECORDS_PER_UPLOAD}): send them in several")
    try:
        end = json.loads(lines[-1])
    except (ValueError, RecursionError, UnicodeDecodeError):
        end = None
    if not isinstance(end, dict) or end.get("kind") != "end" or "seq" in end:
        raise _bad_request("the upload's last line must be the signed end line "
                           '{"kind": "end", "count", "head", "device_key_id", "signature"}')
    if type(end.get("count")) is not int or not isinstance(end.get("head"), str) \
            or not isinstance(end.get("device_key_id"), str) or not isinstance(end.get("signature"), str):
        raise _bad_request("the end line needs count (a whole number), head, device_key_id and signature")
    if len(lines) == 1:
        raise _bad_request("an upload holds at least one record before its end line")
    try:        # the whole body at once; a line that is not UTF-8 is named by itself
        texts: list[bytes] | list[str] = body.decode("utf-8").split("\n")
        texts = [t for t in texts if t.strip(_BLANK)][:-1]     # the blank lines bytes.strip() drops
    except UnicodeDecodeError:
        texts = lines[:-1]
    records = [parse_record_line(raw, n) for n, raw in enumerate(texts, start=1)]
    return Upload(records=records, end=end, problems=[])


def _signature_ok(end: Mapping[str, Any], public_key: Ed25519PublicKey, device_key_id: str) -> bool:
    count, head = end.get("count"), end.get("head")
    if type(count) is not int or not isinstance(head, str):
        return False
    try:
        signature = base64.b64decode(end.get("signature") or "", validate=True)
        public_key.verify(signature, syncproto.end_payload(device_key_id, count, head))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def check_upload(upload: Upload, *, device_key_id: str, public_key: Ed25519PublicKey, last_seq: int,
                 last_hash: str, held: Mapping[int, str]) -> list[str]:
    """Every problem with an upload, given the chain the clinic holds (`last_seq`/`last_hash`,
    -1/GENESIS for none, and `held`: seq -> hash of the held records the upload repeats).
    An empty list means it may be stored."""
    problems = list(upload.problems)
    records = upload.records
    for r in records:
        if not r.well_formed:
            problems.append(f"line {r.number}: not a log record (it needs seq, kind, data, prev_hash, hash)")
        elif not r.intact:
            problems.append(f"record {r.seq} ({r.describe()}): content changed (it no longer matches its hash)")
    good = [r for r in records if r.well_formed]

    # the signature first: it is what makes the rest trustworthy
    end = upload.end
    if end.get("device_key_id") != device_key_id:
        problems.append(f"the upload is signed for device key {end.get('device_key_id')}, not this device's "
                        f"paired key {device_key_id} (a foreign key)")
    elif not _signature_ok(end, public_key, device_key_id):
        problems.append(f"the end line's signature does not verify with this device's paired key {device_key_id} "
                        f"(signed by another key, or the count or head was changed)")
    for r in good:
        if r.kind == "header" and r.data.get("device_key_id") != device_key_id:
            problems.append(f"record {r.seq} (header) names device key {r.data.get('device_key_id')}, not this "
                            f"device's paired key {device_key_id} (a foreign log)")
    if type(end.get("count")) is int and good:
        last = max(good, key=lambda r: r.seq)
        if end["count"] != last.seq or end.get("head") != last.hash:
            problems.append(f"the end line covers the chain up to record {end['count']}, but the upload ends "
                            f"with record {last.seq} (records cut off or added after signing)")

    # records the clinic already holds must be the very same
    for r in good:
        if r.seq <= last_seq and held.get(r.seq) != r.hash:
            problems.append(f"record {r.seq} ({r.describe()}) differs from the record {r.seq} the clinic already "
                            f"holds (altered after it was uploaded)")

    # order, duplicates, gaps and links of the new records
    seqs = [r.seq for r in good]
    for a, b in zip(seqs, seqs[1:]):
        if b < a:
            if a == b + 1:
                problems.append(f"records {b} and {a} out of order (swapped)")
            else:
                problems.append(f"record {b} out of order (found after record {a})")
    seen: set[int] = set()
    for s in seqs:
        if s in seen:
            problems.append(f"record {s} appears twice")
        seen.add(s)
    new = sorted({r.seq: r for r in good if r.seq > last_seq}.values(), key=lambda r: r.seq)
    if new:
        expected = last_seq + 1
        for r in new:
            if r.seq > expected:
                lo, hi = expected, r.seq - 1
                what = f"record {lo}" if lo == hi else f"records {lo}-{hi}"
                before = "the start of the log" if lo == 0 else f"record {lo - 1}"
                problems.append(f"{what} missing (a gap between {before} and record {hi + 1})")
            expected = r.seq + 1
        by_seq = {r.seq: r for r in new}
        for r in new:
            if r.seq == 0:
                if r.prev_hash != GENESIS or r.kind != "header":
                    problems.append("record 0 is not the header that starts a log chain")
                continue
            prev_hash = last_hash if r.seq - 1 == last_seq else (
                by_seq[r.seq - 1].hash if r.seq - 1 in by_seq else None)
            if prev_hash is not None and r.intact and r.prev_hash != prev_hash:
                problems.append(f"record {r.seq} ({r.describe()}) does not continue the chain: record {r.seq - 1} "
                                f"was altered, or this record belongs to another log")
    return problems


def export_from_records(records: Iterable[tuple[str, dict[str, Any], int]]) -> dict[str, Any]:
    """contract.md's log export, in the device's own shape and key order (homeapp/store.py's
    `export`), rebuilt from (kind, data, chain order) of stored records."""
    sessions: dict[Any, dict[str, Any]] = {}
    order: dict[Any, int] = {}
    children: dict[Any, dict[str, list[dict[str, Any]]]] = {}
    device_events: list[tuple[int, dict[str, Any]]] = []
    for kind, data, position in records:
        if kind == "session":
            sessions[data.get("id")] = data
            order[data.get("id")] = position
        elif kind in ("event", "contraction", "report"):
            child = {k: v for k, v in data.items() if k != "session_id"}
            children.setdefault(data.get("session_id"), {}).setdefault(kind, []).append(child)
        elif kind == "device_event":
            device_events.append((position, data))
    out_sessions = []
    for sid in sorted(sessions, key=lambda s: (str(sessions[s].get("started_at") or ""), order[s])):
        data = sessions[sid]
        mine = children.get(sid, {})
        session = {k: v for k, v in data.items() if k != "recovered_at"}
        session["events"] = mine.get("event", [])
        session["contraction_list"] = mine.get("contraction", [])
        reports = mine.get("report", [])
        session["report"] = reports[-1] if reports else None
        session["recovered_at"] = data.get("recovered_at")
        out_sessions.append(session)
    return {"sessions": out_sessions,
            "device_events": [d for _, d in sorted(device_events, key=lambda p: (str(p[1].get("at") or ""), p[0]))]}


def parse_prescription_json(raw: bytes | str, max_bytes: int) -> dict[str, Any]:
    """A prescription as a JSON object, read exactly as the device reads a file (duplicate
    keys, NaN and Infinity refused too); ClinicError naming what is wrong otherwise."""
    from schedules.validate import PrescriptionError, json_object_from_bytes
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > max_bytes:
        raise _bad_request(f"too large for a prescription ({len(raw)} bytes; at most {max_bytes})")
    try:
        return json_object_from_bytes(raw, name="the prescription")
    except PrescriptionError as e:
        raise _bad_request("; ".join(e.problems)) from None
