"""The patient list on PostgreSQL (the run's throwaway server, tests/conftest.py): the digests and cached rows use that database's own upsert and row locks, and give
the same rows as on SQLite for the same demo clinic."""
from __future__ import annotations

import datetime as dt

import pytest

from clinic.db import migrate, open_engine
from clinic.service import Clinic
from clinic.web import demo, overview


def _clinic(url: str) -> Clinic:
    engine = open_engine(url)
    migrate(engine)
    return Clinic(engine)


def _summary(rows):
    return {r.patient_id: (r.week_done, r.per_week, r.last_session, sorted(f.kind for f in r.flags)) for r in rows}


def test_the_list_on_postgresql_equals_the_list_on_sqlite(postgres, tmp_path):
    today = dt.datetime.now().astimezone().date()
    pg, lite = _clinic(postgres.new_database()), _clinic(f"sqlite:///{tmp_path / 'clinic.db'}")
    for svc in (pg, lite):
        demo.fill(svc, patients=9, days=21, today=today, contractions=False, other_patients=1)
    actor = pg.clinician(demo.DEMO_CLINICIAN)
    first = overview.patient_rows(pg, actor)
    assert len(first) == 9 and overview.refresh_digests(pg, clinician_id=actor.clinician_id) == 0   # digested once
    assert _summary(first) == _summary(overview.patient_rows(lite, lite.clinician(demo.DEMO_CLINICIAN)))
    again = overview.patient_rows(pg, actor)                           # from the cached rows
    assert _summary(again) == _summary(first)
    assert {"pain_high", "pain_rising"} <= set(_summary(first)["DEMO-002"][3])
    assert "no_sync" in _summary(first)["DEMO-005"][3]
