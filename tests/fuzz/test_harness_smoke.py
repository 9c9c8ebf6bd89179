"""The fuzz targets on a few fixed inputs, in the normal suite, so the harness cannot rot
and every input a fuzzer once found stays fixed. A target raising anything but its
parser's documented refusal is a bug in the parser (see tests/fuzz/__init__.py)."""
from __future__ import annotations

import json

import pytest

from tests.fuzz import HOSTILE_JSON, TARGETS, fuzz_bundle, fuzz_prescription, seed_inputs


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_seed_input_is_handled(target):
    for data in seed_inputs(target):
        TARGETS[target](data)


def test_the_valid_seed_prescription_is_accepted_and_within_the_limits():
    from schedules.validate import parse_prescription
    from tests.fuzz import TODAY, _check_accepted

    rx = parse_prescription(json.loads(seed_inputs("prescription")[0]), today=TODAY)
    _check_accepted(rx)  # the oracle itself accepts a good prescription


def test_the_oracle_catches_a_value_through_the_fence():
    # The accepted-prescription oracle must fail on a value beyond the device limit,
    # or the fuzzer could not see a validator that lets one through.
    from dataclasses import replace

    from schedules.validate import parse_prescription
    from tests.fuzz import TODAY, _check_accepted

    rx = parse_prescription(json.loads(seed_inputs("prescription")[0]), today=TODAY)
    too_fast = replace(rx, blocks=(replace(rx.blocks[0], hz=400),))
    with pytest.raises(AssertionError):
        _check_accepted(too_fast)


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", b"null", b'{"format": 1}', b'{"a":1,"a":2}',
                                  b"NaN", b'{"blocks": [[]]}', *HOSTILE_JSON])
def test_odd_prescription_files_are_refused_with_prescription_error(data):
    fuzz_prescription(data)


@pytest.mark.parametrize("tail", [b"", b"not json", b"[]", b'{"kind": "end"}', *HOSTILE_JSON],
                         ids=["nothing", "not-json", "list", "bare-end", "deep-nesting",
                              "long-integer", "long-integer-in-object"])
def test_odd_bundle_lines_are_a_problem_or_bundle_error(tail):
    # A bundle whose second line is hostile must be reported (BundleError or a problem
    # naming the line), never crash the clinician's verify command.
    fuzz_bundle(b'{"kind":"header","data":{"format":"homeapp.log-bundle/1"}}\n' + tail + b"\n")
    fuzz_bundle(tail)
