"""Presets (issue 2, part 5): clinician templates, each a valid prescription with a short
rationale, at the frequencies and timings the issue names."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from schedules.presets import PRESETS, get_preset, make_prescription, preset_names
from schedules.validate import load_prescription, parse_prescription

TODAY = dt.date.today()


def make(name: str, **kw) -> dict:
    return make_prescription(name, patient_id="P-0042", clinician_id="C-0007", issued=TODAY,
                             expires=TODAY + dt.timedelta(days=90), **kw)


def main_block(name: str):
    """The preset's working block (the last one; a warm-up may come first)."""
    return load(name).blocks[-1]


def load(name: str):
    return parse_prescription(make(name), today=TODAY)


def extremes(block, field):
    r = block.ranges.get(field)
    return (r.min, r.max) if r else (getattr(block, field),) * 2


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_file_and_validator(name, tmp_path):
    d = make(name)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(d, indent=2, ensure_ascii=False), encoding="utf-8")
    rx = load_prescription(path, today=TODAY)
    assert dict(rx.source) == d
    assert rx.id == f"rx-{name}-{TODAY:%Y%m%d}" and rx.patient_id == "P-0042"
    assert rx.issued == TODAY and rx.duration_s > 0


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_has_a_name_title_and_short_rationale(name):
    p = get_preset(name)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", p.name) and p.name == name
    assert 5 <= len(p.title) <= 60
    assert 30 <= len(p.rationale) <= 200 and p.rationale.endswith(".")


def test_preset_names_cover_the_issue():
    assert preset_names() == [
        "fibre-type-1", "fibre-type-2a", "fibre-type-2b", "fibre-all-types", "circulation",
        "restrict-circulation", "reduce-tone-twitch", "reduce-tone-static", "pain-relief-al-tens",
        "atrophied-muscle",
        "quadriceps-after-knee-surgery"]


@pytest.mark.parametrize("name,lo,hi", [
    ("fibre-type-1", 30, 36), ("fibre-type-2a", 60, 72), ("fibre-type-2b", 100, 120),
    ("fibre-all-types", 50, 50), ("circulation", 8, 9), ("reduced-circulation", 13, 13),
    ("muscle-tone-twitch", 1, 2), ("muscle-tone-static", 100, 100), ("quadriceps-after-knee-surgery", 50, 50),
])
def test_frequencies_follow_the_issue(name, lo, hi):
    b = main_block(name)
    f_lo, f_hi = extremes(b, "hz")
    assert lo <= f_lo <= f_hi <= hi


def test_atrophied_muscle_short_contractions_long_rests_short_sessions():
    rx = load("atrophied-muscle")
    (b,) = rx.blocks
    assert 4 <= extremes(b, "on_s")[0] and extremes(b, "on_s")[1] <= 10
    assert 6 <= extremes(b, "off_s")[0] and extremes(b, "off_s")[1] <= 20
    assert b.off_s > b.on_s  # rest longer than the contraction
    assert 10 <= extremes(b, "minutes")[0] and extremes(b, "minutes")[1] <= 20
    assert 10 * 60 <= rx.duration_s <= 20 * 60


def test_quadriceps_after_knee_surgery():
    b = main_block("quadriceps-after-knee-surgery")
    assert b.hz == 50 and b.on_s == 10 and b.ramp_up_s == 2 and b.ramp_down_s == 2
    assert 250 <= extremes(b, "pulse_us")[0] and extremes(b, "pulse_us")[1] <= 400
    assert 20 <= extremes(b, "off_s")[0] and extremes(b, "off_s")[1] <= 50


def test_make_prescription_options_and_independent_copies():
    a = make("circulation", rx_id="rx-9", supervision="caregiver")
    assert a["id"] == "rx-9" and a["supervision"] == "caregiver"
    a["blocks"][0]["hz"]["max"] = 150
    assert make("circulation")["blocks"][0]["hz"]["max"] == 9


def test_unknown_preset_lists_the_known_names():
    with pytest.raises(KeyError, match="unknown preset 'quads'.*quadriceps-after-knee-surgery"):
        make("quads")


@pytest.mark.parametrize("old,new", [("reduced-circulation", "restrict-circulation"),
                                     ("muscle-tone-twitch", "reduce-tone-twitch"),
                                     ("muscle-tone-static", "reduce-tone-static")])
def test_old_names_are_aliases_for_the_renamed_presets(old, new):
    from schedules.presets import alias_note
    assert old not in PRESETS and get_preset(old) is PRESETS[new]
    assert make(old)["blocks"] == make(new)["blocks"]
    assert make(old)["id"] == f"rx-{new}-{TODAY:%Y%m%d}"
    assert new in alias_note(old) and alias_note(new) is None


def test_renamed_presets_say_what_the_source_says():
    assert "restricts circulation" in get_preset("restrict-circulation").rationale
    assert get_preset("restrict-circulation").blocks[-1]["hz"] == 13
    for name in ("reduce-tone-twitch", "reduce-tone-static"):
        p = get_preset(name)
        assert p.title.startswith("Reduce muscle tone") and "reduce muscle tone" in p.rationale
        assert "manual therapies" in p.rationale


def test_pain_relief_is_al_tens_low_frequency_twitches_on_motor_points():
    p = get_preset("pain-relief-al-tens")
    assert "acupuncture-like TENS" in p.rationale and "motor points" in p.rationale
    assert p.channels[0]["label"] == "motor point"
    block = main_block("pain-relief-al-tens")
    assert block.hz == 2 and extremes(block, "hz") == (1, 4)  # low frequency: twitches
    assert block.ramp_up_s == 0 and block.ramp_down_s == 0     # a twitch has no ramp


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_keeps_the_guidance_or_its_rationale_says_why_not(name):
    """Computed from the blocks: 4-10 s contractions, 6-20 s rests, 10-20 min sessions; a
    departure's rationale names what departs, says longer/shorter than usual and why."""
    from schedules.presets import guidance_departures
    p = get_preset(name)
    for what in guidance_departures(p):
        word = {"contraction": "contraction", "rest": "rest", "session": "session"}[what]
        assert word in p.rationale, f"{name}: {what} outside the guidance, rationale silent"
        assert re.search(r"(longer|shorter) than the usual", p.rationale), name
        assert "because" in p.rationale, f"{name}: departure without a reason"


def test_guidance_check_finds_departures():
    from schedules.presets import Preset, guidance_departures
    long_rest = Preset("x", "x", "x", ({"label": "m", "max_ma": 10},),
                       ({"minutes": 25, "on_s": {"value": 5, "min": 2, "max": 5}, "off_s": 21},))
    assert guidance_departures(long_rest) == {"contraction", "rest", "session"}
    assert guidance_departures(get_preset("fibre-type-2b")) == {"rest"}
    assert guidance_departures(get_preset("quadriceps-after-knee-surgery")) == {"rest"}
    assert guidance_departures(get_preset("circulation")) == set()
