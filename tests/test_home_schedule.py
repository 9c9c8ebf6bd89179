"""Home's 'next session' counts starts as the engine does."""
import datetime as dt
from types import SimpleNamespace

import pytest

from schedules.adherence import EARLY_ABORT_S
from homeapp.store import Store
from homeapp.ui.services import Services
from schedules.validate import parse_prescription
from tests.sessionkit import rx_dict


@pytest.mark.parametrize("ran_s, when", [(20, "now"), (EARLY_ABORT_S + 60, "later")])
def test_an_early_aborted_session_leaves_the_day_open_on_home(tmp_path, ran_s, when):
    rx = parse_prescription(rx_dict(max_sessions_per_day=1, sessions_per_week=7))
    store = Store.open(tmp_path / "log.db")
    try:
        store.save_prescription(rx)
        started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=ran_s + 5)
        if started.astimezone().date() != dt.datetime.now().astimezone().date():
            pytest.skip("too close to midnight for a same-day session")
        store.start_session(session_id="s1", prescription_id=rx.id, started_at=started,
                            planned_contractions=6, channels=2)
        store.end_session("s1", status="aborted", ended_at=started + dt.timedelta(seconds=ran_s))
        from homeapp.config import config_from_dict
        config = config_from_dict({}, source=None, data_dir_default=tmp_path / "data")
        device = SimpleNamespace(store=store, trust=None, simulated=False, hands=None)  # a Device's parts
        svc = Services(config=config, device=device)
        svc.rx = rx
        assert svc.due_text_params()["when"] == when
    finally:
        store.close()
