"""The upload reader's two ways of hashing a record line: orjson where its canonical JSON
is byte for byte the standard library's (bundle.py's record_hash), the standard library
itself otherwise. Both must judge every line alike: the same record, the same verdict."""
from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic import ingest
from homeapp.bundle import record_hash

from .test_clinic_hostile import EXAMPLES, json_value, record_lines

orjson = pytest.importorskip("orjson")

PREV = "ab" * 32
#: Number literals as a device (or anyone) may write them: where orjson reads or writes
#: a number otherwise than the standard library (a float below 1e-4, an integer beyond
#: 64 bits, an exponent), and plain ones.
LITERALS = ["0.00001", "1e-05", "1E-5", "1.5e-7", "-0.00009", "0.0001", "0.00010", "1e16", "1e+16", "1.5E16",
            "123456789012345678901234567890", "-18446744073709551617", "18446744073709551615",
            "9223372036854775808", "-9223372036854775809", "1e400", "-1e400", "2.5", "-0", "-0.0", "1E2",
            "100000000000000000000.0", "5e-324", "1.7976931348623157e308", "0.1", "35.0"]


def _with_stdlib_only(raw):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ingest, "_orjson", None)
        return ingest.parse_record_line(raw, 1)


def _same(a: ingest.UploadRecord, b: ingest.UploadRecord) -> None:
    assert (a.seq, a.kind, a.prev_hash, a.hash, a.line, a.intact, a.well_formed) == \
           (b.seq, b.kind, b.prev_hash, b.hash, b.line, b.intact, b.well_formed)
    assert json.dumps(a.data, sort_keys=True) == json.dumps(b.data, sort_keys=True)


@settings(max_examples=EXAMPLES * 4, deadline=None)
@given(record_lines())
def test_orjson_and_the_standard_library_judge_every_line_alike(raw):
    _same(ingest.parse_record_line(raw, 1), _with_stdlib_only(raw))


def _line_with_literal(literal: str, *, hashed_as: str = "stdlib", key_order: str = "log") -> str:
    """A record whose data holds `literal` as written; its hash over the canonical form
    that the standard library (bundle.py) or orjson makes of what the line holds."""
    data_text = '{"session_id":"s-1","value":' + literal + ',"channel":0}'
    if key_order == "sorted":
        data_text = '{"channel":0,"session_id":"s-1","value":' + literal + '}'
    data = json.loads(data_text)
    if hashed_as == "stdlib":
        h = record_hash(7, "contraction", data, PREV)
    else:
        h = hashlib.sha256(orjson.dumps({"seq": 7, "kind": "contraction", "data": orjson.loads(data_text),
                                         "prev_hash": PREV}, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'{{"data":{data_text},"kind":"contraction","prev_hash":"{PREV}","seq":7,"hash":"{h}"}}'


@pytest.mark.parametrize("literal", LITERALS)
@pytest.mark.parametrize("key_order", ["log", "sorted"])
def test_a_genuine_record_is_intact_however_its_numbers_are_written(literal, key_order):
    line = _line_with_literal(literal, key_order=key_order)
    rec = ingest.parse_record_line(line.encode(), 1)
    assert rec.well_formed and rec.intact, line
    _same(rec, _with_stdlib_only(line.encode()))


@pytest.mark.parametrize("literal", [lit for lit in LITERALS if lit not in ("1e400", "-1e400")])
def test_a_hash_over_orjsons_form_is_intact_only_where_that_form_is_bundle_pys(literal):
    """A record hashed over orjson's writing of its numbers: intact exactly when that
    writing is the standard library's (where it is not, `homeapp log verify-bundle` would
    call the record changed, so the clinic must too)."""
    data = json.loads('{"value":' + literal + "}")
    forms_agree = (orjson.dumps(orjson.loads('{"value":' + literal + "}"), option=orjson.OPT_SORT_KEYS)
                   == json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    line = _line_with_literal(literal, hashed_as="orjson")
    rec = ingest.parse_record_line(line.encode(), 1)
    assert rec.well_formed
    assert rec.intact == forms_agree, line
    _same(rec, _with_stdlib_only(line.encode()))


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.one_of(json_value, st.floats(min_value=-1e-3, max_value=1e-3),
                                                       st.integers(min_value=-2 ** 80, max_value=2 ** 80)),
                       max_size=6),
       st.sampled_from(["log", "sorted"]))
def test_numbers_of_every_size_hash_as_bundle_py_hashes_them(data, layout):
    h = record_hash(3, "event", data, PREV)
    obj = {"data": data, "kind": "event", "prev_hash": PREV, "seq": 3}
    if layout == "sorted":
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)[:-1] + f',"hash":"{h}"}}'
    else:
        text = json.dumps({**obj, "hash": h}, ensure_ascii=False)
    rec = ingest.parse_record_line(text.encode(), 1)
    assert rec.well_formed and rec.intact
    _same(rec, _with_stdlib_only(text.encode()))


@pytest.mark.parametrize("depth", [100, 254, 255, 256, 300, 600, 5000])
def test_data_nested_deeper_than_orjson_writes_is_judged_as_before(depth):
    """orjson writes at most 254 levels; deeper data takes the standard library's path
    (which reads up to Python's recursion limit), never an exception."""
    inner = "[" * depth + '"re-do 1e-05"' + "]" * depth
    for h in ("cd" * 32, None):
        data_text = '{"x":' + inner + "}"
        if h is None:
            try:
                h = record_hash(1, "event", json.loads(data_text), PREV)
            except RecursionError:
                continue
        line = f'{{"data":{data_text},"kind":"event","prev_hash":"{PREV}","seq":1,"hash":"{h}"}}'.encode()
        _same(ingest.parse_record_line(line, 1), _with_stdlib_only(line))


@pytest.mark.parametrize("literal", ["1E5", "1.50", "2e0", "100000.000", '"a\\/b"', '"\\u00e9"', "[ 1, 2 ]"])
def test_a_hash_over_the_very_text_is_judged_as_the_standard_library_and_bundle_py_judge_it(literal):
    """A line in sorted order whose hash is over its own text (a number or an escape as
    written, not as the canonical form writes it): intact, as bundle.py reads such a line,
    whichever path reads it."""
    head = f'{{"data":{{"value":{literal}}},"kind":"event","prev_hash":"{PREV}","seq":1'
    line = f'{head},"hash":"{hashlib.sha256((head + "}").encode()).hexdigest()}"}}'.encode()
    rec = ingest.parse_record_line(line, 1)
    assert rec.well_formed and rec.intact, line
    _same(rec, _with_stdlib_only(line))
