"""Log bundles: the device's log, exported for the clinician, tamper-evident and signed.

Format `homeapp.log-bundle/1`: UTF-8 JSON lines.

    line 1      header  {"data": {"format": "homeapp.log-bundle/1", "device_key_id",
                                  "created_at", "since"},
                         "kind": "header", "prev_hash": "000…0", "seq": 0, "hash": …}
    lines 2…n+1 records {"seq": 1…n, "kind": "prescription" | "session" | "contraction" |
                         "event" | "report" | "device_event", "data": {…},
                         "prev_hash": <hash of seq-1>,
                         "hash": …}
    last line   end     {"kind": "end", "count": n, "head": <hash of record n>,
                         "device_key_id": …, "signature": base64 Ed25519 over
                         canonical({"format", "device_key_id", "count", "head"})}

    hash = SHA-256 hex of canonical_json({"seq", "kind", "data", "prev_hash"})

Each record line is exactly that canonical JSON (keys sorted, no spaces, UTF-8) with
`"hash"` appended as its last key, so a verifier can hash the bytes it reads; a line that
was merely reformatted is re-serialised and still verifies.

A session record holds the session's own fields (contract.md's log export minus its lists);
its events, contractions and patient reports follow as their own records, each carrying
`session_id`, so a change can be named down to the one event. The device's events
outside sessions (a refused start, a PIN lockout) come last, as `device_event` records.

Why this detects each kind of tampering, and says which:

- Changed record: its `hash` no longer matches its content. If the editor recomputed that
  hash too, the next record's `prev_hash` no longer matches it; if they recomputed the
  whole chain from there, the chain head no longer equals the `head` in the end record,
  and the end record cannot be re-signed without the device's private key.
- Removed record: seq numbers are consecutive from 0, so a gap names the missing seq; the
  record after the gap also no longer links to its predecessor. Records cut off the end
  show as the signed `count` exceeding the last seq present.
- Inserted record: it either reuses a seq (and then it is the copy that nothing in the
  chain links to), uses a seq beyond the signed `count`, or forces renumbering every later
  record, which changes their hashes and the chain head under the signature.
- Reordered records: the hash chain follows seq order, not file order, so moved records
  still verify individually; the seq numbers out of file order name them.
- The whole file swapped for one from another device, or re-signed with another key: the
  signature over the end record does not verify with the clinician's copy of this
  device's public key.

`verify_bundle` returns every problem it finds (an empty list means intact); files that
are not bundles at all raise `BundleError` with one clear message.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schedules.signing import key_id

FORMAT = "homeapp.log-bundle/1"
GENESIS = "0" * 64

#: Lists inside an exported session that become records of their own (key -> record
#: kind). The store exports `contraction_list`, `events` and the latest `report`;
#: `reports` (every report, corrections included) replaces `report` when present.
SESSION_CHILDREN = {"contraction_list": "contraction", "events": "event", "reports": "report",
                    "report": "report"}


class BundleError(Exception):
    """The file is not a readable log bundle at all (one line for a person)."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(seq: int, kind: str, data: Any, prev_hash: str) -> str:
    return hashlib.sha256(_canonical({"seq": seq, "kind": kind, "data": data, "prev_hash": prev_hash})).hexdigest()


def _end_payload(device_key_id: str, count: int, head: str) -> bytes:
    return _canonical({"format": FORMAT, "device_key_id": device_key_id, "count": count, "head": head})


# --- writing ---------------------------------------------------------------------------

def records_from_export(export: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, data) pairs in bundle order: prescriptions first, then each session followed
    by its contractions, events and reports, then the device's events outside sessions
    (refused starts, PIN lockouts)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for rx in export.get("prescriptions") or ():
        out.append(("prescription", dict(rx)))
    for s in export.get("sessions") or ():
        out.append(("session", {k: v for k, v in s.items() if k not in SESSION_CHILDREN}))
        sid = s.get("id")
        for key in ("contraction_list", "events", "reports", "report"):
            children = s.get(key)
            if key == "report":
                if "reports" in s or not isinstance(children, Mapping):
                    continue  # every report already listed, or none
                children = [children]
            for child in children if isinstance(children, list) else ():
                out.append((SESSION_CHILDREN[key], {"session_id": sid, **child}))
    for event in export.get("device_events") or ():
        out.append(("device_event", dict(event)))
    return out


def _export_of(store: Any, since: str | None) -> dict[str, Any]:
    """The store's export plus its prescriptions and every patient report (or an export
    dict given directly), limited to sessions started at or after `since`."""
    since_at = parse_when(since) if since else None
    if isinstance(store, Mapping):
        export = dict(store)
        if since_at:
            export["sessions"] = [s for s in export.get("sessions") or ()
                                  if not s.get("started_at") or parse_when(s["started_at"]) >= since_at]
        return export
    export = dict(store.export(since=since_at))    # the store applies `since` itself
    if hasattr(store, "prescriptions") and "prescriptions" not in export:
        export["prescriptions"] = store.prescriptions()
    if hasattr(store, "reports"):
        # The export carries each session's latest report; a corrected report keeps the
        # first too (append-only), and the clinician gets both, oldest first.
        by_session: dict[Any, list[dict[str, Any]]] = {}
        for r in store.reports():
            sid = r.pop("session_id")
            by_session.setdefault(sid, []).append(r)
        for s in export.get("sessions") or ():
            s["reports"] = by_session.get(s.get("id"), [])
    return export


def parse_when(text: str) -> dt.datetime:
    """ISO date or date-time; naive values are taken as UTC."""
    when = dt.datetime.fromisoformat(str(text))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def write_bundle(store: Any, out_path: str | os.PathLike[str], *, device_key: Ed25519PrivateKey,
                 since: str | None = None, created_at: str | None = None) -> int:
    """Write the store's log (everything, or sessions started on/after `since`) as a signed
    bundle; returns the number of records. `store` has `.export(since=)` or is an export dict."""
    export = _export_of(store, since)
    device_key_id = key_id(device_key.public_key())
    created_at = created_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    header = {"format": FORMAT, "device_key_id": device_key_id, "created_at": created_at, "since": since}
    tmp = Path(str(out_path) + ".part")
    prev = GENESIS
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        prev = _write_record(f, 0, "header", header, prev)
        for seq, (kind, data) in enumerate(records_from_export(export), start=1):
            prev = _write_record(f, seq, kind, data, prev)
            count = seq
        signature = device_key.sign(_end_payload(device_key_id, count, prev))
        f.write(json.dumps({"kind": "end", "count": count, "head": prev, "device_key_id": device_key_id,
                            "signature": base64.b64encode(signature).decode("ascii")}) + "\n")
        f.flush()
        os.fsync(f.fileno())  # a USB stick pulled early must not leave a half bundle under the real name
    os.replace(tmp, out_path)
    return count


def _write_record(f: Any, seq: int, kind: str, data: Any, prev_hash: str) -> str:
    """One line: the canonical JSON of the hashed fields with `hash` appended last, so a
    reader can hash the very bytes it parses (fast) instead of re-serialising each record."""
    body = _canonical({"seq": seq, "kind": kind, "data": data, "prev_hash": prev_hash})
    h = hashlib.sha256(body).hexdigest()
    f.write(body[:-1].decode("utf-8") + f',"hash":"{h}"}}\n')
    return h


_HASH_SUFFIX_LEN = len(',"hash":"') + 64 + len('"}')


# --- reading ---------------------------------------------------------------------------

class Record:
    """One chained record. `data` is parsed from the line only when first asked for: the
    verifier needs seq, kind and the hashes, and a report skips the bulk (contractions)."""

    __slots__ = ("line", "seq", "kind", "_data", "_text", "prev_hash", "hash", "well_formed", "intact")

    def __init__(self, line: int, seq: Any, kind: Any, data: Any, prev_hash: Any, hash: Any,
                 well_formed: bool = True, intact: bool = False, text: str | bytes | None = None) -> None:
        self.line = line             # 1-based line in the file
        self.seq, self.kind, self._data, self._text = seq, kind, data, text
        self.prev_hash, self.hash = prev_hash, hash
        self.well_formed = well_formed
        self.intact = intact         # its hash matches its content

    @property
    def data(self) -> Any:
        if self._text is not None:
            try:
                self._data = json.loads(self._text).get("data")  # bytes or str
            except (ValueError, RecursionError, AttributeError):  # hostile JSON too
                self._data = None
            self._text = None
        return self._data

    def describe(self) -> str:
        """"event of session s-12", "session s-12", "prescription rx-0001"."""
        data = self.data if isinstance(self.data, Mapping) else {}
        kind = self.kind if isinstance(self.kind, str) else "record"
        if kind == "session":
            return f"session {data.get('id', '?')}"
        if kind == "prescription":
            return f"prescription {data.get('id', '?')}"
        if kind == "device_event":
            return f"device event {data.get('kind', '?')} at {data.get('at', '?')}"
        if "session_id" in data:
            return f"{kind} of session {data['session_id']}"
        return kind


_CHILD_KEYS = {"event": "events", "contraction": "contraction_list", "report": "reports"}


@dataclass
class Bundle:
    header: dict[str, Any]
    records: list[Record]
    end: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)   # lines that could not be read

    @property
    def device_key_id(self) -> str | None:
        return self.header.get("device_key_id")

    def of_kind(self, kind: str) -> Iterator[dict[str, Any]]:
        return (r.data for r in self.records if r.kind == kind and isinstance(r.data, dict))

    def export(self, *, skip_kinds: Iterable[str] = ()) -> dict[str, Any]:
        """The records put back together in the store's export shape (contract.md's sessions
        with `events`, plus `contraction_list`, `reports` (all, oldest first) and `report`
        (the latest)), `prescriptions` and `device_events`. Records out of file order go back in seq order.
        `skip_kinds=("contraction",)` leaves out what a caller does not need (and never parses it)."""
        sessions: dict[Any, dict[str, Any]] = {}
        prescriptions: list[dict[str, Any]] = []
        loose: dict[str, list[dict[str, Any]]] = {}
        device_events: list[dict[str, Any]] = []
        skip = set(skip_kinds)
        ordered = sorted((r for r in self.records
                          if r.well_formed and r.kind not in skip and isinstance(r.data, dict)),
                         key=lambda r: r.seq)
        for r in ordered:
            if r.kind == "session":
                sessions[r.data.get("id")] = {**r.data, "events": [], "contraction_list": [], "reports": []}
        for r in ordered:
            if r.kind == "prescription":
                prescriptions.append(r.data)
            elif r.kind == "device_event":
                device_events.append(r.data)
            elif r.kind in _CHILD_KEYS:
                parent = sessions.get(r.data.get("session_id"))
                key = _CHILD_KEYS[r.kind]
                bucket = parent[key] if parent is not None else loose.setdefault(key, [])
                bucket.append(r.data)
        for s in sessions.values():
            s["report"] = s["reports"][-1] if s["reports"] else None
        return {"sessions": list(sessions.values()), "prescriptions": prescriptions,
                "device_events": device_events, **loose}


_MAX_HEADER_BYTES = 64 * 1024


def _parse_header(path: Any, head: bytes) -> dict[str, Any]:
    if not head.strip():
        raise BundleError(f"{path}: not a log bundle (the file is empty)")
    try:
        first = json.loads(head.decode("utf-8"))
    except (ValueError, RecursionError):  # not JSON, too deep, a 5000-digit number
        if b"\0" in head[:4096] or not _is_utf8(head[:4096]):
            raise BundleError(f"{path}: not a log bundle (binary data, not UTF-8 JSON lines)") from None
        first = None
    first_data = first.get("data") if isinstance(first, dict) else None
    fmt = first_data.get("format") if isinstance(first_data, dict) else (
        first.get("format") if isinstance(first, dict) else None)
    if fmt != FORMAT or first.get("kind") != "header":
        hint = f" (its format is {fmt!r})" if isinstance(fmt, str) else ""
        raise BundleError(f"{path}: not a log bundle: it does not start with a {FORMAT} header{hint}")
    return first


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Parse a bundle without judging it (see verify_bundle). Raises BundleError when the
    file is missing or is not a log bundle at all."""
    # Sniff the first line before reading the rest: a large file that is not a bundle is
    # refused without loading it.
    try:
        with open(path, "rb") as f:
            head = f.readline(_MAX_HEADER_BYTES)
            first = _parse_header(path, head)
            raw = head + f.read()
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BundleError(f"{path}: is a directory, not a log bundle") from None
    except OSError as e:
        raise BundleError(f"{path}: cannot read ({e.strerror})") from None
    return _parse_bundle(raw, first)


def parse_bundle(data: bytes, *, name: str = "bundle") -> Bundle:
    """Parse a bundle held in memory (e.g. put together from a database) exactly as
    read_bundle parses a file of these bytes; `name` stands for the file in messages.
    Raises BundleError when it is not a log bundle at all."""
    cut = data.find(b"\n", 0, _MAX_HEADER_BYTES)
    head = data[:cut + 1] if cut >= 0 else data[:_MAX_HEADER_BYTES]   # what readline would give
    return _parse_bundle(data, _parse_header(name, head))


def _parse_bundle(raw: bytes, first: dict[str, Any]) -> Bundle:
    """The records of `raw`, whose first line is the header `first` (already judged)."""
    # Work on bytes: the fast path hashes each line as read and never decodes the bulk.
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()

    problems: list[str] = []
    records = [_record(first, 1, lines[0].decode("utf-8"))]
    end: dict[str, Any] | None = None
    fast_record = _fast_record
    for number, raw_line in enumerate(lines[1:], start=2):
        fast = fast_record(raw_line, number)
        if fast is not None:
            if end is not None:
                problems.append(f"line {number}: a record after the signed end record (inserted)")
            records.append(fast)
            continue
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"line {number}: not a JSON record (not UTF-8 text)")
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, too deep, a 5000-digit number
            problems.append(f"line {number}: not a JSON record (corrupt or cut)")
            continue
        if isinstance(obj, dict) and obj.get("kind") == "end" and "seq" not in obj:
            if end is not None:
                problems.append(f"line {number}: a second end record")
            end = obj
            continue
        if end is not None:
            problems.append(f"line {number}: a record after the signed end record (inserted)")
        records.append(_record(obj, number, line))
    header_rec = records.pop(0)
    return Bundle(header={**first["data"], "_record": header_rec}, records=records, end=end, problems=problems)


def _fast_record(raw: bytes, line: int) -> Record | None:
    """A record line exactly as the writer makes it, ending
    `,"kind":"K","prev_hash":"P","seq":N,"hash":"H"}`, whose bytes hash to H; None for
    anything else (then parsed and judged in full). Sound because the hash covers the very
    bytes that `data` is later parsed from, and the chain ties every hash to the signed
    head. Slices from the end, no regex, no JSON: this runs once per contraction of five
    years of sessions."""
    if raw[-75:-66] != b',"hash":"' or raw[-2:] != b'"}':
        return None
    p = raw.rfind(b',"seq":', -110, -75)
    if p < 0 or raw[p - 80:p - 65] != b'","prev_hash":"' or raw[p - 1:p] != b'"':
        return None
    k = raw.rfind(b',"kind":"', -200, p - 80)
    seq, kind = raw[p + 7:-75], raw[k + 9:p - 80]
    if k < 0 or not seq.isdigit() or len(seq) > 15 or not kind.isalnum() and not kind.replace(b"_", b"a").isalnum():
        return None
    h = raw[-66:-2].decode("ascii", "replace")
    if hashlib.sha256(raw[:-_HASH_SUFFIX_LEN] + b"}").hexdigest() != h:
        return None
    return Record(line, int(seq), kind.decode("ascii"), None, raw[p - 65:p - 1].decode("ascii", "replace"),
                  h, True, True, raw)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(data) - 3  # a character cut by the 4 kB sample is fine
    return True


def _record(obj: Any, line: int, text: str) -> Record:
    if not isinstance(obj, dict):
        return Record(line, None, None, None, None, None, well_formed=False)
    rec = Record(line, obj.get("seq"), obj.get("kind"), obj.get("data"), obj.get("prev_hash"), obj.get("hash"))
    rec.well_formed = (type(rec.seq) is int and isinstance(rec.kind, str) and isinstance(rec.data, dict)
                       and isinstance(rec.prev_hash, str) and isinstance(rec.hash, str))
    if not rec.well_formed:
        return rec
    # Fast path: the line as written is the canonical body plus the hash; hashing the bytes
    # that were parsed is as strong as re-serialising them, and several times faster.
    if text.endswith('"}') and text[-_HASH_SUFFIX_LEN:-66] == ',"hash":"':
        body = (text[:-_HASH_SUFFIX_LEN] + "}").encode("utf-8")
        if hashlib.sha256(body).hexdigest() == rec.hash:
            rec.intact = True
            return rec
    # A line reformatted (e.g. pretty-printed) but with the same content still verifies.
    rec.intact = record_hash(rec.seq, rec.kind, rec.data, rec.prev_hash) == rec.hash
    return rec


# --- verifying -------------------------------------------------------------------------

def verify_bundle(path: str | os.PathLike[str] | Bundle, device_public_key: Ed25519PublicKey | None) -> list[str]:
    """Every problem found, each naming the record(s) concerned; [] when the bundle is
    complete, unaltered and signed by this device key. Raises BundleError for files that
    are not bundles.

    With `device_public_key` None only what needs no key is checked: the hash chain, the
    seq numbers against the end record's count and head. That finds any record changed,
    removed or inserted by someone who did not rewrite the chain and its end; it cannot
    tell a whole rewritten chain, nor the file's origin (that takes the signature)."""
    bundle = path if isinstance(path, Bundle) else read_bundle(path)
    problems = list(bundle.problems)
    header_rec: Record = bundle.header["_record"]
    end = bundle.end

    # the signature first: it is what makes everything else trustworthy
    given_id = key_id(device_public_key) if device_public_key is not None else bundle.device_key_id
    count: int | None = None
    head: str | None = None
    if end is None:
        problems.append("no signed end record: the bundle was cut short or its end removed")
    else:
        count, head = end.get("count"), end.get("head")
        if type(count) is not int or count < 0 or not isinstance(head, str):
            problems.append("the end record is corrupt (count or head unreadable)")
            count, head = None, None
        elif device_public_key is not None and not _signature_ok(end, device_public_key, given_id, count, head):
            named = end.get("device_key_id") or bundle.device_key_id
            why = f" (the bundle names device key {named}; the key given is {given_id})" if named != given_id else ""
            problems.append("signature does not match the device key" + why)
    if device_public_key is not None and bundle.device_key_id != given_id and end is not None \
            and not any("signature" in p for p in problems):
        problems.append(f"the header names device key {bundle.device_key_id}, not {given_id}")
    if not header_rec.intact:
        problems.append("the header (record 0) was changed")

    # sort the records into the chain's seq slots; anything without a slot was inserted
    last_seq = count if count is not None else max(
        (r.seq for r in bundle.records if r.well_formed and r.seq > 0), default=0)
    by_seq: dict[int, list[Record]] = {}
    for r in bundle.records:
        if not r.well_formed:
            problems.append(f"inserted record at line {r.line}: not a bundle record")
        elif not 1 <= r.seq <= last_seq:
            problems.append(f"inserted record at line {r.line} ({r.describe()}, seq {r.seq}): "
                            f"beyond the {last_seq} signed records")
        else:
            by_seq.setdefault(r.seq, []).append(r)

    # who links to whom: a genuine record's hash is the next record's prev_hash
    linked_to = {r.prev_hash for rs in by_seq.values() for r in rs}
    if head is not None:
        linked_to.add(head)
    chosen: dict[int, Record] = {}
    for seq, cands in by_seq.items():
        if len(cands) == 1:
            chosen[seq] = cands[0]
            continue
        genuine = [c for c in cands if c.intact and c.hash in linked_to] or [c for c in cands if c.intact] or cands
        keep = genuine[0]
        chosen[seq] = keep
        for c in cands:
            if c is not keep:
                problems.append(f"inserted record at line {c.line} ({c.describe()}): a second record {seq}, "
                                f"not part of the signed chain")

    # removed: gaps in the seq numbers
    # (from the gaps between the seqs present: never a loop over an unverified count)
    seqs = sorted(chosen)
    present = set(seqs)
    previous = 0
    for seq in seqs + [last_seq + 1]:
        if seq > previous + 1:
            lo, hi = previous + 1, seq - 1
            what = f"record {lo}" if lo == hi else f"records {lo}-{hi}"
            if hi == last_seq:
                problems.append(f"{what} missing at the end (after {lo - 1}): the bundle was cut short")
            else:
                problems.append(f"{what} missing between {lo - 1} and {hi + 1}")
        previous = seq

    # changed: content no longer matches the hash, or the hash was recomputed and the link broke
    gaps_before = {s for s in present if s - 1 not in present and s > 1}
    for seq in seqs:
        r = chosen[seq]
        if not r.intact:
            problems.append(f"record {seq} ({r.describe()}): content changed")
            continue
        prev = header_rec if seq == 1 else chosen.get(seq - 1)
        if prev is None or seq in gaps_before:
            continue  # already named as missing
        if prev.well_formed and prev.intact and r.prev_hash != prev.hash:
            prev_name = "the header" if seq == 1 else f"record {seq - 1} ({prev.describe()})"
            problems.append(f"{prev_name}: content changed (its hash was recomputed; "
                            f"record {seq} no longer links to it)")
    if count is not None and last_seq in chosen and chosen[last_seq].intact and chosen[last_seq].hash != head:
        problems.append(f"the chain head after record {last_seq} does not match the signed end record "
                        f"(records were rewritten after signing)")
    if count == 0 and head is not None and header_rec.hash != head:
        problems.append("the chain head does not match the signed end record")

    # reordered: the file order of seq numbers, compared with the longest in-order run
    problems.extend(_order_problems([r.seq for r in sorted(chosen.values(), key=lambda r: r.line)]))
    return problems


def _signature_ok(end: Mapping[str, Any], public_key: Ed25519PublicKey, given_id: str, count: int, head: str) -> bool:
    try:
        sig = base64.b64decode(end.get("signature") or "", validate=True)
        public_key.verify(sig, _end_payload(end.get("device_key_id") or given_id, count, head))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return end.get("device_key_id") == given_id


def _order_problems(file_order: list[int]) -> list[str]:
    """Name the records that are out of place: those outside a longest increasing
    subsequence of the seq numbers as they appear in the file."""
    if all(a < b for a, b in zip(file_order, file_order[1:])):
        return []
    keep = _lis_positions(file_order)
    problems: list[str] = []
    named: set[int] = set()
    for pos, seq in enumerate(file_order):
        if pos in keep or seq in named:
            continue
        # an adjacent swap reads best as a pair
        for other_pos in (pos - 1, pos + 1):
            if 0 <= other_pos < len(file_order) and abs(file_order[other_pos] - seq) == 1 \
                    and (file_order[other_pos] - seq) * (other_pos - pos) < 0:
                a, b = sorted((seq, file_order[other_pos]))
                problems.append(f"records {a} and {b} out of order")
                named.update((a, b))
                break
        else:
            after = f"found after record {file_order[pos - 1]}" if pos > 0 else "found first"
            problems.append(f"record {seq} out of order ({after})")
            named.add(seq)
    return problems


def _lis_positions(values: list[int]) -> set[int]:
    """Positions of one longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []
    tail_pos: list[int] = []
    back = [-1] * len(values)
    for i, v in enumerate(values):
        j = bisect_left(tails, v)
        if j == len(tails):
            tails.append(v)
            tail_pos.append(i)
        else:
            tails[j] = v
            tail_pos[j] = i
        back[i] = tail_pos[j - 1] if j > 0 else -1
    keep: set[int] = set()
    i = tail_pos[-1] if tail_pos else -1
    while i >= 0:
        keep.add(i)
        i = back[i]
    return keep
