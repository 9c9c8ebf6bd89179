"""The clinician's review tells the truth at a glance: a month made headless with
`session run --start-at` and the actions file's `report`, bundled and reviewed; a one-day
bundle; the review's data functions the clinic's pages reuse."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest

from homeapp.bundle import read_bundle, write_bundle
from homeapp.cli import main
from homeapp.report import (Review, SessionRow, build_report, compare_reports, review_figure,
                            review_of_bundle)
from homeapp.store import Store
from schedules.signing import generate_keypair, save_public_key
from tests.review_demo import short_rx as demo_rx

UTC = dt.timezone.utc
MONTH_FIRST = dt.date(2026, 11, 6)
MONTH_DAYS = 30                    # 2026-11-06 .. 2026-12-05
SKIPPED = {9, 10}                  # two days without a session
COMMENT = "sharp pain, pressed stop"
COMMENT_DAY, ESTOP_DAY = 20, 25


def short_rx(*, issued: dt.date, per_week: int = 7, **kw) -> dict:
    """The demo's one-minute program, due every day."""
    return demo_rx(issued=issued, per_week=per_week, rx_id="rx-review", **kw)


def run_day(tmp: Path, rx_path: Path, db: Path, start: dt.datetime, actions: list[dict], capsys) -> dict:
    acts = tmp / "actions.jsonl"
    acts.write_text("".join(json.dumps(a) + "\n" for a in actions), encoding="utf-8")
    code = main(["session", "run", "--prescription", str(rx_path), "--db", str(db), "--trace",
                 str(tmp / "trace.csv"), "--actions", str(acts), "--virtual-time", "--allow-unsigned",
                 "--start-at", start.isoformat()])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def keys():
    return generate_keypair()


@pytest.fixture(scope="module")
def month(tmp_path_factory, keys):
    """Where the month's prescription and log live."""
    tmp = tmp_path_factory.mktemp("month")
    rx_path = tmp / "rx.json"
    rx_path.write_text(json.dumps(short_rx(issued=MONTH_FIRST)), encoding="utf-8")
    return tmp, rx_path, tmp / "log.db"


@pytest.fixture(scope="module")
def month_bundle(month, keys):
    """Daily sessions over 30 days (two skipped), pain rising from 2 to 7, a comment after a
    session the patient stopped, an e-stop; bundled as the device would on the last day."""
    tmp, rx_path, db = month

    class _Cap:
        """capsys for a module-scoped fixture: stdout/stderr of main() captured here."""

        def __init__(self) -> None:
            self.out, self.err = io.StringIO(), io.StringIO()

        def readouterr(self):
            r = type("R", (), {"out": self.out.getvalue(), "err": self.err.getvalue()})
            self.out.seek(0), self.out.truncate(), self.err.seek(0), self.err.truncate()
            return r

    cap = _Cap()
    with contextlib.redirect_stdout(cap.out), contextlib.redirect_stderr(cap.err):
        for i in range(MONTH_DAYS):
            if i in SKIPPED:
                continue
            start = dt.datetime.combine(MONTH_FIRST + dt.timedelta(days=i), dt.time(9, 30), tzinfo=UTC)
            pain = round(2 + 5 * i / (MONTH_DAYS - 1))
            actions = [{"t": 1, "do": "intensity", "channel": 0, "ma": 20 + i / 2}]
            report = {"t": 0, "do": "report", "pain": pain, "effort": 4 + (i % 3) / 2}
            if i == COMMENT_DAY:
                actions.append({"t": 25, "do": "stop"})
                report["comment"] = COMMENT
            if i == ESTOP_DAY:
                actions += [{"t": 15, "do": "estop"}, {"t": 20, "do": "estop_release"}]
            run_day(tmp, rx_path, db, start, actions + [report], cap)
    bundle = tmp / "month.bundle"
    with Store.open(db) as store:
        write_bundle(store, bundle, device_key=keys[0],
                     created_at=dt.datetime(2026, 12, 5, 18, 0, tzinfo=UTC).isoformat())
    save_public_key(tmp / "device.pub", keys[1])
    return bundle


def test_session_run_start_at_and_report_store_what_the_after_screen_stores(month_bundle, month):
    _tmp, _rx, db = month
    with Store.open(db) as store:
        sessions = store.export()["sessions"]
        assert len(sessions) == MONTH_DAYS - len(SKIPPED)
        # one a day at the wall-clock start given, never refused as "already today"
        assert sessions[0]["started_at"] == "2026-11-06T09:30:00+00:00"
        assert sessions[-1]["started_at"] == "2026-12-05T09:30:00+00:00"
        stopped = next(s for s in sessions if s["started_at"].startswith("2026-11-26"))
        assert stopped["status"] == "stopped"
        # the same row the After screen's save makes (engine.save_report -> Store.save_report)
        (row,) = store.reports(stopped["id"])
        assert (row["pain"], row["effort"], row["comment"]) == (5, 5.0, COMMENT)
        aborted = next(s for s in sessions if s["started_at"].startswith("2026-12-01"))
        assert aborted["status"] == "aborted"


def test_month_review_names_rising_pain_the_comment_and_the_estop(month_bundle, month, tmp_path, capsys):
    tmp, _rx, _db = month
    out = tmp_path / "review.html"
    assert main(["report", str(month_bundle), "--out", str(out), "--pdf", str(tmp_path / "review.pdf"),
                 "--device-key", str(tmp / "device.pub")]) == 0
    page = out.read_text(encoding="utf-8")
    flags = page[page.index('<div class="flags">'):page.index("</div>", page.index('<div class="flags">'))]
    # rising pain, compared in windows that share no session, with the reason
    assert "Pain rising:" in flags and "the last 14 days against the 14 days before" in flags
    assert "Pain 6/10 or more after" in flags
    assert "E-stop pressed 1 time in 1 session, on 2026-12-01" in flags
    # the patient's own words, in the session table with how that session ended
    row = re.search(r"<tr[^>]*><td>Thu 2026-11-26 09:30</td>.*?</tr>", page).group(0)
    assert COMMENT in row and "stopped: stopped by the patient" in row
    estop_row = re.search(r"<tr[^>]*><td>Tue 2026-12-01 09:30</td>.*?</tr>", page).group(0)
    assert "aborted: e-stop pressed" in estop_row and 'class="worry"' in estop_row
    assert all(int(p) <= 100 for p in re.findall(r"(\d+)%", page))


def test_month_pain_windows_never_overlap(month_bundle):
    review = review_of_bundle(read_bundle(month_bundle), tz=UTC)
    c = review.pain
    assert c.earlier.last_day < c.later.first_day
    assert c.earlier.n + c.later.n <= len([r for r in review.rows if r.pain is not None])
    assert c.earlier.mean < 3.5 and c.later.mean > 5.5 and c.change > 2
    a = review.adherence
    assert (a.first_day, a.last_day) == (MONTH_FIRST, dt.date(2026, 12, 5))
    assert (a.done, a.due) == (MONTH_DAYS - len(SKIPPED) - 2, MONTH_DAYS)  # stopped and aborted do not count
    assert a.describe() == "87% (26 of 30 due)"


def test_one_day_bundle_has_no_percentage_above_100_and_the_right_month(tmp_path, keys, capsys):
    """Three sessions on Saturday 5 December (the week's Monday is in November) under a
    prescription allowing three a day, bundled that evening."""
    day = dt.date(2026, 12, 5)
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(short_rx(issued=day, per_week=5, per_day=3, hours_between=1)))
    db = tmp_path / "log.db"
    for hour in (9, 11, 13):
        run_day(tmp_path, rx_path, db, dt.datetime.combine(day, dt.time(hour), tzinfo=UTC),
                [{"t": 1, "do": "intensity", "channel": 0, "ma": 25},
                 {"t": 0, "do": "report", "pain": 2, "effort": 3}], capsys)
    bundle = tmp_path / "day.bundle"
    with Store.open(db) as store:
        write_bundle(store, bundle, device_key=keys[0],
                     created_at=dt.datetime(2026, 12, 5, 18, 0, tzinfo=UTC).isoformat())
    out = tmp_path / "day.html"
    review = review_of_bundle(read_bundle(bundle), tz=UTC)
    build_report(bundle, out_html=out, device_public_key=keys[1], out_pdf=tmp_path / "day.pdf", tz=UTC)
    page = out.read_text(encoding="utf-8")
    assert all(int(p) <= 100 for p in re.findall(r"(\d+)%", page))
    assert review.adherence.period == "2026-12-05" and review.adherence.ratio <= 1
    assert review.adherence.extra == 2   # three done, at most... one due that day: the rest are not adherence
    assert "adherence 2026-12-05" in page
    labels = [t.get_text() for ax in review_figure(review).axes
              for t in ax.get_xticklabels() if t.get_text()]
    assert "Dec 2026" in labels and "Sat 5 Dec" in labels
    assert not any("Nov" in t or "6 Dec" in t for t in labels), labels


def test_report_without_key_refuses_a_broken_chain(month_bundle, tmp_path, capsys):
    lines = month_bundle.read_text(encoding="utf-8").splitlines()
    i = next(i for i, line in enumerate(lines) if '"kind":"report"' in line and '"pain":7' in line)
    rec = json.loads(lines[i])
    rec["data"]["pain"] = 1   # a worrying pain made harmless, with no device key at hand
    lines[i] = json.dumps(rec)
    altered = tmp_path / "altered.bundle"
    altered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "r.html"
    assert main(["report", str(altered), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"record {rec['seq']} (" in err and "content changed" in err and "no report written" in err
    assert not out.exists()
    # the unaltered bundle still reports without a key, marked unverified
    assert main(["report", str(month_bundle), "--out", str(out)]) == 0
    assert "NOT verified" in capsys.readouterr().err


# --- the data functions, as a web page calls them --------------------------------------------

def _row(day: int, pain: int | None) -> SessionRow:
    return SessionRow(session_id=f"s-{day}", started=dt.datetime(2026, 11, day, 9, tzinfo=UTC),
                      duration_min=1.0, peak_ma=(20.0,), done=6, planned=6, pain=pain, effort=None,
                      comment=None, status="completed", ended="completed", problems=())


def test_compare_reports_falls_back_to_quarters_that_share_no_session():
    # twelve reports over twelve days: too short for two 14-day windows
    rows = [_row(d, p) for d, p in zip(range(1, 13), [2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 7, 7])]
    c = compare_reports(rows, "pain")
    assert c.how == "the last quarter of the reports against the first quarter"
    assert (c.earlier.n, c.later.n) == (3, 3) and c.earlier.last_day < c.later.first_day
    assert c.earlier.mean == pytest.approx(7 / 3) and c.later.mean == pytest.approx(20 / 3)
    assert compare_reports(rows[:3], "pain") is None  # too few to compare


def test_review_is_plain_data(month_bundle):
    review = review_of_bundle(read_bundle(month_bundle), tz=UTC)
    assert isinstance(review, Review) and review.patient_id == "P-0042"
    kinds = [f.kind for f in review.flags]
    assert kinds[:2] == ["pain_high", "pain_rising"] and "estop" in kinds and "adherence_low" not in kinds
    assert all(f.reason for f in review.flags)
    commented = [r for r in review.rows if r.comment]
    assert [r.comment for r in commented] == [COMMENT]


def test_every_line_of_the_pdf_page_fits_on_it(month_bundle, tmp_path):
    """The verification line (long when unverified), the flags and the footer all end inside
    the page."""
    from homeapp.report import _pdf_figure

    bundle = read_bundle(month_bundle)
    for verified, problems in ((None, []), (False, ["record 12 (event estop of session s-1): content changed"] * 5)):
        fig = _pdf_figure(bundle, review_of_bundle(bundle, tz=UTC), verified=verified, problems=problems)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        renderer = FigureCanvasAgg(fig).get_renderer()
        page = fig.bbox
        texts = list(fig.texts) + [t for ax in fig.axes for t in ax.texts + [ax.title, ax._left_title]]
        for t in texts:
            if not t.get_text():
                continue
            box = t.get_window_extent(renderer)
            assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, t.get_text()


@pytest.mark.parametrize("line, expect", [
    ({"t": 0, "do": "report", "pain": 11, "effort": 3}, "pain must be a whole number from 0 to 10"),
    ({"t": 0, "do": "report", "pain": 3, "effort": 3.3}, "effort must be 0 to 10 in steps of 0.5"),
    ({"t": 0, "do": "report", "pain": 3}, 'report needs "effort"'),
    ({"t": 0, "do": "report", "pain": 3, "effort": 3, "comment": 7}, "comment must be text"),
    ({"t": 0, "do": "report", "pain": 3, "effort": 3, "mood": "ok"}, "report does not take mood"),
])
def test_report_action_is_checked_before_the_session(tmp_path, capsys, line, expect):
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(short_rx(issued=dt.date(2026, 11, 6))))
    acts = tmp_path / "a.jsonl"
    acts.write_text(json.dumps(line) + "\n")
    assert main(["session", "run", "--prescription", str(rx_path), "--db", str(tmp_path / "db"),
                 "--trace", str(tmp_path / "t.csv"), "--actions", str(acts), "--virtual-time",
                 "--allow-unsigned", "--start-at", "2026-11-07T09:00:00+00:00"]) == 2
    assert expect in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_start_at_needs_virtual_time(tmp_path, capsys):
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(short_rx(issued=dt.date(2026, 11, 6))))
    assert main(["session", "run", "--prescription", str(rx_path), "--db", str(tmp_path / "db"),
                 "--trace", str(tmp_path / "t.csv"), "--allow-unsigned",
                 "--start-at", "2026-11-07T09:00:00+00:00"]) == 2
    assert "--start-at needs --virtual-time" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse's usage error
        main(["session", "run", "--prescription", str(rx_path), "--db", str(tmp_path / "db"),
              "--trace", str(tmp_path / "t.csv"), "--allow-unsigned", "--virtual-time",
              "--start-at", "yesterday"])
    assert stop.value.code == 2
    assert "'yesterday' is not an ISO-8601 time" in capsys.readouterr().err
