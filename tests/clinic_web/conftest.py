"""The web pages' tests compute the patient lists when viewed: no background warmer
threads in the test process (the warmer has its own test)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _no_background_warmer():
    from clinic.web import overview
    saved = overview.WARM_INTERVAL_S
    overview.WARM_INTERVAL_S = 0
    yield
    overview.WARM_INTERVAL_S = saved
