"""The touchscreen app's own memory: numpy is kept out of its process (sqlite_utils would
import it for nothing), and the log still works there. The figures themselves are in
`make bench` (tests/bench/bench_soak.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("importing the app needs a display (make test runs it under Xvfb)",
                allow_module_level=True)

pytestmark = pytest.mark.kivy


def test_the_app_process_logs_a_session_without_numpy(tmp_path):
    code = textwrap.dedent(f"""
        import datetime as dt, sys
        from homeapp.ui.app import keep_numpy_out
        assert "sqlite_utils" not in sys.modules, "imported before the app could keep numpy out"
        keep_numpy_out()
        from homeapp.store import Store
        st = Store.open({str(tmp_path / "log.db")!r})
        now = dt.datetime.now(dt.timezone.utc)
        st.start_session(session_id="s1", prescription_id="rx", started_at=now,
                         planned_contractions=1, channels=1)
        st.add_contraction("s1", channel=0, index=0, start_t=0.0, end_t=1.0, peak_ma=3.0, completed=True)
        st.end_session("s1", status="completed", ended_at=now)
        assert st.export()["sessions"][0]["channels"][0]["peak_ma"] == 3.0
        assert sys.modules.get("numpy") is None and "sqlite_utils" in sys.modules
        print("ok")
    """)
    env = dict(os.environ, KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1", KIVY_HOME=str(tmp_path / "kivy"),
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
