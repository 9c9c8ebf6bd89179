"""The log's read-only second connection and its row-order cursors (homeapp/store.py):
what the clinic sync reads with, so that it never holds up the engine's writes and never
misses what was logged while the clock was set back."""
from __future__ import annotations

import datetime as dt

import pytest

from homeapp.store import Store

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "homeapp.db") as s:
        yield s


def test_the_reader_sees_every_committed_write_and_cannot_write(store):
    reader = store.reader()
    try:
        store.add_device_event(kind="boot", at=T0)
        assert [e["kind"] for e in reader.device_events()] == ["boot"]
        store.add_device_event(kind="pin_lockout", at=T0)
        assert [e["kind"] for e in reader.device_events()] == ["boot", "pin_lockout"]
        with pytest.raises(Exception, match="(?i)read.?only"):
            reader.add_device_event(kind="x", at=T0)
        assert len(store.device_events()) == 2
    finally:
        reader.close()


def test_device_events_after_follow_the_logging_order_not_the_clock(store):
    store.add_device_event(kind="a", at=T0)
    store.add_device_event(kind="b", at=T0 - dt.timedelta(hours=5))     # the clock set back
    store.add_device_event(kind="c", at=T0 + dt.timedelta(minutes=1))
    rows = store.device_events_after(0)
    assert [e["kind"] for _, e in rows] == ["a", "b", "c"]
    assert [e["kind"] for _, e in store.device_events_after(rows[0][0])] == ["b", "c"]
    assert store.device_events_after(rows[-1][0]) == []
    assert [e["kind"] for _, e in store.device_events_after(0, limit=2)] == ["a", "b"]
    assert {e["kind"]: e for _, e in rows} == {e["kind"]: e for e in store.device_events()}


def test_sessions_after_follow_the_starting_order_and_leave_a_running_one_unread(store):
    for n, start in enumerate((T0, T0 - dt.timedelta(days=2))):           # the second with the clock set back
        store.start_session(session_id=f"s{n}", prescription_id="rx", started_at=start, planned_contractions=1,
                            channels=1)
        store.add_event(f"s{n}", t=0.5, kind="intensity", detail={"channel": 0, "ma": 3})
        store.end_session(f"s{n}", status="completed", ended_at=start + dt.timedelta(minutes=20))
    store.start_session(session_id="s2", prescription_id="rx", started_at=T0, planned_contractions=1, channels=1)
    rows = store.sessions_after(0)
    assert [(s or {}).get("id") for _, s in rows] == ["s0", "s1", None]
    assert rows[0][1] == store.session("s0") and rows[1][1] == store.session("s1")
    assert [s["id"] for _, s in store.sessions_after(rows[0][0], limit=1)] == ["s1"]
