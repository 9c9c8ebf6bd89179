"""The clinician's review report (issue 7): verification status first, the numbers right,
self-contained (no network), escaped, one PDF page, and one-line errors."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest

from homeapp.bundle import BundleError, write_bundle
from homeapp.cli import main
from homeapp.report import build_report
from schedules.signing import generate_keypair, save_public_key
from tests.bench.bench_report import RX, synthetic_export

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def keys():
    return generate_keypair()


def small_export(day0: dt.date) -> dict:
    """Known numbers: 10 completed sessions and 1 stopped over 14 prescribed days (7/week),
    one e-stop, two electrode problems, a fault; pain reported on 3 sessions."""
    rx = {**RX, "issued": day0.isoformat(), "expires": (day0 + dt.timedelta(days=60)).isoformat(),
          "sessions_per_week": 7, "max_sessions_per_day": 1,
          "channels": [{"label": "left <b>quad</b>", "max_ma": 60}]}
    sessions = []
    for i in range(11):
        start = dt.datetime.combine(day0 + dt.timedelta(days=i), dt.time(12), tzinfo=UTC)
        events = [{"t": 5.0, "kind": "intensity", "detail": {"channel": 0, "ma": 20 + i}}]
        if i == 3:
            events.append({"t": 30.0, "kind": "estop", "detail": {}})
        if i in (4, 6):
            events.append({"t": 40.0, "kind": "lead_off", "detail": {"channel": 0}})
        if i == 7:
            events.append({"t": 50.0, "kind": "fault", "detail": {"what": "<script>alert(1)</script>"}})
        sessions.append({
            "id": f"s-{i}", "prescription_id": rx["id"], "started_at": start.isoformat(),
            "ended_at": (start + dt.timedelta(minutes=18 if i != 10 else 5)).isoformat(),
            "status": "completed" if i != 10 else "stopped", "planned_contractions": 33,
            "channels": [{"contractions": 33 if i != 10 else 8, "peak_ma": 21.0 + i, "mean_ma": 20.0 + i}],
            "events": events, "contraction_list": [],
            "report": {"pain": 3, "effort": 5.5, "comment": None, "reported_at": start.isoformat()} if i < 3 else None})
    return {"sessions": sessions, "prescriptions": [{"id": rx["id"], "source": rx}]}


@pytest.fixture
def small(tmp_path, keys):
    day0 = dt.date(2026, 3, 2)  # a Monday
    path = tmp_path / "small.bundle"
    write_bundle(small_export(day0), path, device_key=keys[0],
                 created_at=dt.datetime.combine(day0 + dt.timedelta(days=13), dt.time(18), tzinfo=UTC).isoformat())
    return path


def png_of(page: str) -> bytes:
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m, "no embedded PNG"
    return base64.b64decode(m.group(1))


def test_verified_report_shows_status_numbers_and_is_self_contained(small, tmp_path, keys):
    out = tmp_path / "r.html"
    result = build_report(small, out_html=out, device_public_key=keys[1], tz=UTC)
    assert result.verified is True and result.problems == [] and result.sessions == 11
    page = out.read_text(encoding="utf-8")
    assert 'class="banner ok">Verified: complete, unaltered and signed by device key' in page
    assert png_of(page).startswith(b"\x89PNG\r\n\x1a\n")
    # offline: nothing fetched from anywhere
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page.lower()
    kpi = dict((label, value) for value, label in re.findall(r"<b>([^<]*)</b><span>([^<]*)</span>", page))
    assert kpi["sessions (10 completed)"] == "11"
    # the period the figure covers is stated beside it
    assert kpi["adherence 2026-03-02 to 2026-03-15"] == "71% (10 of 14 due)"
    assert kpi["e-stops"] == "1" and kpi["faults"] == "1" and kpi["electrode problems"] == "2"
    assert kpi["stopped early"] == "1"
    # three reports are too few to compare two windows: their mean, and how many
    assert kpi["pain 0-10, mean"] == "3.0 (3 reports)"
    assert "rx-0001 for P-0042 by C-0007" in page  # the prescription in force


def test_bundle_content_is_escaped_not_markup(small, tmp_path, keys):
    out = tmp_path / "r.html"
    build_report(small, out_html=out, device_public_key=keys[1], tz=UTC)
    page = out.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "left &lt;b&gt;quad&lt;/b&gt;" in page


def test_tampered_bundle_still_reports_with_the_problems_on_top(small, tmp_path, keys):
    lines = small.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if '"status":"stopped"' in line)
    rec = json.loads(lines[i])
    rec["data"]["status"] = "completed"  # the session stopped early now claims it completed
    lines[i] = json.dumps(rec)
    small.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "r.html"
    result = build_report(small, out_html=out, device_public_key=keys[1], tz=UTC)
    assert result.verified is False
    page = out.read_text(encoding="utf-8")
    banner = page.index('class="banner bad">VERIFICATION FAILED (1 problem)')
    assert page.index(f"record {rec['seq']} (") > banner
    assert banner < page.index("<img")


def test_unverified_without_a_key_says_so(small, tmp_path):
    out = tmp_path / "r.html"
    assert build_report(small, out_html=out, tz=UTC).verified is None
    assert 'class="banner warn">NOT VERIFIED' in out.read_text(encoding="utf-8")


def test_pdf_is_one_page(small, tmp_path, keys):
    result = build_report(small, out_html=tmp_path / "r.html", device_public_key=keys[1],
                          out_pdf=tmp_path / "r.pdf", tz=UTC)
    pdf = result.pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1


def test_a_bundle_without_sessions_still_reports(tmp_path, keys):
    write_bundle({"sessions": []}, tmp_path / "empty.bundle", device_key=keys[0])
    result = build_report(tmp_path / "empty.bundle", out_html=tmp_path / "r.html", device_public_key=keys[1])
    assert result.verified and result.sessions == 0
    assert "no prescription in this bundle" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_a_file_that_is_not_a_bundle_raises_bundle_error(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps(RX))
    with pytest.raises(BundleError, match="not a log bundle"):
        build_report(tmp_path / "x.json", out_html=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# --- the command -----------------------------------------------------------------------

def test_cli_report_exit_codes(tmp_path, keys, capsys):
    save_public_key(tmp_path / "device.pub", keys[1])
    write_bundle(synthetic_export(30, contractions_per_session=3), tmp_path / "b", device_key=keys[0])
    args = ["report", str(tmp_path / "b"), "--out", str(tmp_path / "r.html")]
    assert main(args + ["--device-key", str(tmp_path / "device.pub"), "--pdf", str(tmp_path / "r.pdf")]) == 0
    assert "30 sessions; bundle verified" in capsys.readouterr().out
    assert (tmp_path / "r.pdf").exists()
    assert main(args) == 0
    assert "NOT verified" in capsys.readouterr().err
    other = generate_keypair()[1]
    save_public_key(tmp_path / "other.pub", other)
    assert main(args + ["--device-key", str(tmp_path / "other.pub")]) == 2
    out = capsys.readouterr()
    assert "signature does not match the device key" in out.err and "FAILED verification" in out.out


@pytest.mark.parametrize("setup, expect", [
    (lambda t: (t / "f").write_bytes(b"\x00\x01\x02binary"), "not a log bundle"),
    (lambda t: (t / "f").write_text("{}"), "not a log bundle"),
    (lambda t: None, "no such file"),
])
def test_cli_report_errors_are_one_line(tmp_path, capsys, setup, expect):
    setup(tmp_path)
    assert main(["report", str(tmp_path / "f"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("homeapp: ") and err.count("\n") == 1 and expect in err


def test_cli_report_wrong_key_file_is_one_line(small, tmp_path, capsys):
    (tmp_path / "k.pub").write_text("not a key")
    assert main(["report", str(small), "--out", str(tmp_path / "r.html"), "--device-key", str(tmp_path / "k.pub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("homeapp: device key:") and err.count("\n") == 1
