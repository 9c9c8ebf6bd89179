"""The actions file of `session run`: every bad line refused with its line number."""
from __future__ import annotations

import pytest

from homeapp.actions import load_actions
from homeapp.errors import UserError


def _write(tmp_path, text):
    p = tmp_path / "actions.jsonl"
    p.write_text(text)
    return p


def test_actions_are_sorted_by_time_keeping_file_order_for_ties(tmp_path):
    p = _write(tmp_path, '{"t": 5, "do": "pause"}\n\n{"t": 1, "do": "intensity", "channel": 0, "ma": 10}\n'
                         '{"t": 5, "do": "resume"}\n')
    acts = load_actions(p, channels=1, blocks=1)
    assert [(a.t, a.do) for a in acts] == [(1, "intensity"), (5, "pause"), (5, "resume")]
    assert acts[0].args == {"channel": 0, "ma": 10}


@pytest.mark.parametrize("line, fragment", [
    ('{"t": 1, "do": "dance"}', "unknown action 'dance'"),
    ('{"t": -1, "do": "pause"}', '"t" must be'),
    ('{"do": "pause"}', '"t" must be'),
    ('{"t": 1, "do": "intensity", "channel": 0}', 'intensity needs "ma"'),
    ('{"t": 1, "do": "intensity", "channel": 2, "ma": 5}', "channel 2 does not exist"),
    ('{"t": 1, "do": "intensity", "channel": 0, "ma": "lots"}', "ma must be a current"),
    ('{"t": 1, "do": "pause", "channel": 0}', "pause does not take channel"),
    ('{"t": 1, "do": "set", "block": 0, "param": "voltage", "value": 3}', "param 'voltage' is not adjustable"),
    ('{"t": 1, "do": "set", "block": 4, "param": "hz", "value": 3}', "block 4 does not exist"),
    ('[1, 2]', "an action must be a JSON object"),
    ('{"t": 1, "do": "pause"', "not a JSON object"),
])
def test_a_bad_line_is_named_with_what_is_allowed(tmp_path, line, fragment):
    p = _write(tmp_path, '{"t": 0, "do": "pause"}\n' + line + "\n")
    with pytest.raises(UserError) as e:
        load_actions(p, channels=2, blocks=1)
    assert f"{p}:2:" in str(e.value)
    assert fragment in str(e.value)


def test_a_missing_actions_file_is_one_clear_line(tmp_path):
    with pytest.raises(UserError, match="no such actions file"):
        load_actions(tmp_path / "nope.jsonl", channels=1, blocks=1)
