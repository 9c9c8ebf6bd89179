"""The review's charts (homeapp/report.py's `review_png`, unchanged) kept per patient and
range, keyed by the last record each of the patient's devices uploaded: a chart is drawn
once for a given log, not once per view.

Drawing the charts over 180 days costs matplotlib most of a second (text layout and
rasterising, not the data: the profile in `make bench`'s notes). So:

- the key of a chart is everything its picture depends on: the clinic, the patient, the
  range asked, the last day counted (today, or the device's last contact day), the
  clinic's zone, the reader's language, and each device's last record
  (`Device.last_seq`): a new upload, a new day, a new range or the other language draws
  again, nothing else does;
- the patient's page, which loads the same review, starts drawing its chart in the
  background (`prepare`), so by the time the browser asks for `review.png` the picture
  is ready or nearly so;
- at most `MAX_CHARTS` pictures are kept (least recently used first out), in this
  process's memory only: nothing about a patient is written anywhere by this.

Access and audit stay where they were: every request still loads the patient's review
through `review.load` (another clinician's patient is a 404 and an audit row before any
cached picture is looked at).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Hashable

from sqlalchemy import select

from homeapp.report import review_png

from ..models import Device, Patient
from ..service import Clinic

#: Pictures kept (about 150 kB each over 180 days).
MAX_CHARTS = 48

_lock = threading.Lock()
_done: "OrderedDict[Hashable, bytes]" = OrderedDict()
_pending: dict[Hashable, Future] = {}
#: One drawing at a time in the background: the machine's other requests keep a core.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-chart")
#: Pictures drawn since start (for tests and the bench).
drawn = 0


def chart_key(clinic: Clinic, data: Any, *, zone: Any, lang: str = "en") -> Hashable:
    """The key of the chart of `data` (review.PatientData): see the module's docstring."""
    with clinic.Session() as db:
        seqs = tuple(db.execute(select(Device.id, Device.last_seq)
                                .join(Patient, Patient.id == Device.patient_id)
                                .where(Patient.patient_id == data.patient_id).order_by(Device.id)).all())
    return (str(clinic.engine.url), data.patient_id, data.range.first, data.range.last, data.counted_until, str(zone),
            tuple(tuple(s) for s in seqs), lang)


def _draw(key: Hashable, review: Any, lang: str = "en") -> bytes:
    global drawn
    png = review_png(review, lang=lang)
    with _lock:
        drawn += 1
        _done[key] = png
        _done.move_to_end(key)
        while len(_done) > MAX_CHARTS:
            _done.popitem(last=False)
        _pending.pop(key, None)
    return png


def prepare(key: Hashable, review: Any, *, lang: str = "en") -> None:
    """Start drawing this chart in the background, unless it is drawn or being drawn."""
    with _lock:
        if key in _done or key in _pending:
            return
        future: Future = Future()
        _pending[key] = future

    def run() -> None:
        try:
            future.set_result(_draw(key, review, lang))
        except BaseException as e:   # the request that waits for it sees the error
            with _lock:
                _pending.pop(key, None)
            future.set_exception(e)
    _executor.submit(run)


def png(key: Hashable, review: Callable[[], Any] | Any, *, lang: str = "en") -> bytes:
    """The chart for `key`: kept, or being drawn (waited for), or drawn now from `review`."""
    with _lock:
        found = _done.get(key)
        if found is not None:
            _done.move_to_end(key)
            return found
        future = _pending.get(key)
    if future is not None:
        try:
            return future.result()
        except Exception:
            pass            # drawn again below, so the error is this request's own
    return _draw(key, review() if callable(review) else review, lang)


def forget() -> None:
    """Drop every kept picture (tests)."""
    with _lock:
        _done.clear()
