"""What the touchscreen test files share: the app on the simulated board, and its log.

Import only after the module-level display check: importing the UI needs a display."""
from __future__ import annotations

import pytest

from tests.uitools import UI


@pytest.fixture
def ui(tmp_path):
    """The app on the simulated board, its engine on the held clock; closed afterwards."""
    u = UI(tmp_path)
    yield u
    u.close()


def events(ui, kind=None):
    """The events of the current (or last) session, open or ended."""
    sid = ui.state.session_id if ui.state is not None else ui.device.store.export()["sessions"][-1]["id"]
    evs = ui.device.store.session(sid)["events"]
    return [e for e in evs if kind is None or e["kind"] == kind]
