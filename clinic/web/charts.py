"""The review's chart pictures (homeapp/report.py's `review_png`, unchanged), kept in the
clinic's database (table web_review_charts) per patient, language and range of days, and
drawn before a clinician asks for them.

Drawing the charts costs matplotlib about 0.4 s of CPU over 180 days (text and ticks, not
the data: the profile in docs/clinic-web.md), more on a loaded machine. So:

- **The key** of a picture is everything it depends on (`ChartKey.state`, a hash): the
  code that draws it (`CHART_VERSION`: the sources of the report module and of its
  words, and matplotlib's version), the range asked, the last day counted (today, or the
  device's last contact day), the clinic's zone, the language and each device's log head and contact day
  (`log_mark`). A picture is served only while its key still matches: a new upload, a new
  day or another range never shows an older picture.
- **Kept where every process sees it**: `serve --workers N` runs several processes and
  the pre-draw runs in the supervisor, so the pictures are rows of the clinic's database,
  not files or process memory. They are patient data: as protected as the log (the same
  database, its access and backups), deleted with the patient (foreign key, ON DELETE
  CASCADE), and dropped as soon as the patient's data changes (every picture under an
  older `log_mark` is deleted by the next store or pre-draw pass).
- **Pre-drawn** (`ChartWarmer`, a pass every `$HOMEAPP_CLINIC_WEB_WARM_S` seconds beside
  the patient lists' warmer): for every patient whose picture of the page's default range
  (the last `review.DEFAULT_DAYS` days; `$HOMEAPP_CLINIC_CHART_DAYS`) is missing or stale,
  in each language of `$HOMEAPP_CLINIC_CHART_LANGUAGES` (default: the pages' languages;
  a language the report module does not draw in shares the English picture). The drawing
  runs in a separate process at low priority (`nice` 10), so it takes the CPU the
  requests leave and never holds a serving process's interpreter; a pass stops after
  `PREDRAW_BUDGET_S` seconds and the next pass starts a second later (so a patient who
  synced meanwhile comes first), most recently heard-from patients first.
- **On demand** otherwise: the patient page starts drawing its chart in the background
  (`prepare`) and the browser's request for `review.png` waits for it (`png`); the
  picture is then stored for every process.

Access and audit stay where they were: every request still loads the patient's review
through `review.load` (another clinician's patient is a 404 and an audit row) before any
stored picture is looked at; the key is made from what that load read.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import matplotlib
from sqlalchemy import delete, select

import homeapp.report
import homeapp.report_texts
from .. import timeutil
from ..chartproc import DrawingProcess, chart_language, draw_timed
from ..models import Device, Patient, WebReviewChart
from ..service import Actor, Clinic, NotFound
from ..timeutil import utcnow
from . import i18n, review
from .overview import PeriodicPasses, _when

log = logging.getLogger(__name__)

#: The modules a chart's code and words come from: the report draws it in the words of
#: report_texts (a changed word is a changed picture).
CHART_SOURCES = (homeapp.report, homeapp.report_texts)
#: The drawing code's version: a picture drawn by other code or words is never served.
CHART_VERSION = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in CHART_SOURCES)
                               + matplotlib.__version__.encode()).hexdigest()[:16]


def _setting(name: str, default: str, parse: Callable[[str], Any], allowed: str) -> tuple[Any, ...]:
    """A comma-separated setting from the environment; a wrong one is logged (naming it and
    what is allowed) and the default used, so the service still starts."""
    text = os.environ.get(name, default)
    try:
        values = tuple(parse(x.strip()) for x in text.split(",") if x.strip())
        if not values:
            raise ValueError("empty")
        return values
    except ValueError:
        log.warning("$%s=%r: give %s; using %s", name, text, allowed, default)
        return tuple(parse(x) for x in default.split(","))


def _days(text: str) -> int:
    n = int(text)
    if not 1 <= n <= review.MAX_DAYS:
        raise ValueError(text)
    return n


def _language(text: str) -> str:
    if text not in i18n.LANGUAGES:
        raise ValueError(text)
    return text


#: Days of the ranges pre-drawn (each: the last N days up to today).
PREDRAW_DAYS = _setting("HOMEAPP_CLINIC_CHART_DAYS", str(review.DEFAULT_DAYS), _days,
                        f"numbers of days from 1 to {review.MAX_DAYS}, e.g. 28,182")
#: Languages pre-drawn (each mapped by `chart_language`: one picture per distinct result).
PREDRAW_LANGUAGES = _setting("HOMEAPP_CLINIC_CHART_LANGUAGES", ",".join(i18n.LANGUAGES), _language,
                             f"languages of the pages ({', '.join(i18n.LANGUAGES)}), e.g. sv")
#: Whether `ensure_warmer` starts the pre-draw ($HOMEAPP_CLINIC_CHART_PREDRAW=0: no, every
#: chart is drawn when a page first asks for it).
PREDRAW_ENABLED = os.environ.get("HOMEAPP_CLINIC_CHART_PREDRAW", "1") != "0"
#: Seconds of drawing per pre-draw pass at most (the rest waits for the next pass).
PREDRAW_BUDGET_S = 45.0
#: The pre-drawing process's niceness (0 to 19; higher yields the CPU more readily).
PREDRAW_NICE = 10
#: A picture not drawn again for this long is deleted (ranges nobody looks at any more).
KEEP_DAYS = 7
#: Who reads a patient's log to pre-draw the charts (in the audit table).
PREDRAW_ACTOR = Actor("system", "chart-predraw")

_lock = threading.Lock()
_pending: dict["ChartKey", Future] = {}
#: One drawing at a time in the background of a serving process: its other requests keep a core.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-chart")
#: Pictures this process drew for a page (for tests and the bench; pre-draws are not counted here).
drawn = 0
#: Pictures pre-drawn by ChartWarmers of this process.
predrawn = 0


@dataclass(frozen=True)
class ChartKey:
    """Which picture: patient, range, language, and `state` (everything it is drawn
    from, hashed) with `log_mark` (the patient's log, hashed)."""

    patient_id: str
    first: dt.date
    last: dt.date
    lang: str
    state: str
    log_mark: str
    database: str
    clinic: Clinic = field(compare=False, hash=False, repr=False)


def log_mark(devices: Iterable[tuple[str, int, Any]], *, zone: Any) -> str:
    """A hash of the drawing code and a patient's devices' (key id, records held, last
    contact); the contact counts by its day in `zone` (the review counts adherence up to it)."""
    parts = []
    for key_id, records, seen in sorted(devices, key=lambda d: str(d[0])):
        when = _when(seen)
        parts.append(f"{key_id}:{records}:{when.astimezone(zone).date().isoformat() if when else '-'}")
    return hashlib.sha256(f"{CHART_VERSION}|{';'.join(parts)}".encode()).hexdigest()


def chart_key(clinic: Clinic, data: Any, *, zone: Any, lang: str = "en") -> ChartKey:
    """The key of the chart of `data` (review.PatientData) in `lang` (a page's language),
    made from what `review.load` read (its devices were read before its records)."""
    mark = log_mark(((d["key_id"], d["records"], d.get("last_seen_at")) for d in data.devices), zone=zone)
    lang = chart_language(lang)
    state = hashlib.sha256(f"{mark}|{data.range.first}|{data.range.last}|{data.counted_until}|{zone}|{lang}"
                           .encode()).hexdigest()
    return ChartKey(data.patient_id, data.range.first, data.range.last, lang, state, mark,
                    str(clinic.engine.url), clinic)


# ------------------------------------------------------------------------------ the store

def _matching(key: ChartKey, column: Any) -> Any:
    """`column` of the stored picture that matches `key`, or None."""
    with key.clinic.Session() as db:
        return db.scalar(select(column).join(Patient, Patient.id == WebReviewChart.patient_id)
                         .where(WebReviewChart.lang == key.lang, WebReviewChart.first_day == key.first,
                                WebReviewChart.last_day == key.last, WebReviewChart.chart_state == key.state,
                                Patient.patient_id == key.patient_id))


def stored(key: ChartKey) -> bytes | None:
    """The stored picture of `key`, if one matches it."""
    return _matching(key, WebReviewChart.png)


def is_stored(key: ChartKey) -> bool:
    """Whether a picture matching `key` is stored (without reading the picture)."""
    return _matching(key, WebReviewChart.id) is not None


def store(key: ChartKey, png: bytes, *, cpu_s: float) -> None:
    """Keep `png` as the picture of `key` (replacing the range's older one), and delete
    every picture of the patient drawn from other data (another `log_mark`)."""
    clinic = key.clinic
    if clinic.is_postgres:
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    with clinic.Session.begin() as db:
        pk = db.scalar(select(Patient.id).where(Patient.patient_id == key.patient_id))
        if pk is None:
            return
        db.execute(delete(WebReviewChart).where(WebReviewChart.patient_id == pk,
                                                WebReviewChart.log_mark != key.log_mark))
        values = {"patient_id": pk, "lang": key.lang, "first_day": key.first, "last_day": key.last,
                  "chart_state": key.state, "log_mark": key.log_mark, "png": png, "drawn_at": utcnow(),
                  "draw_cpu_ms": int(round(cpu_s * 1000))}
        stmt = insert(WebReviewChart).values(**values)
        db.execute(stmt.on_conflict_do_update(
            index_elements=["patient_id", "lang", "first_day", "last_day"],
            set_={k: stmt.excluded[k] for k in ("chart_state", "log_mark", "png", "drawn_at", "draw_cpu_ms")}))


# ------------------------------------------------------------------------------ on demand

def _draw(key: ChartKey, review_: Any) -> bytes:
    global drawn
    png, cpu_s = draw_timed(review_, key.lang)
    try:
        store(key, png, cpu_s=cpu_s)
    except Exception:       # the picture is still this request's answer; the next one draws again
        log.exception("storing the chart of %s failed", key.patient_id)
    with _lock:
        drawn += 1
    return png


def prepare(key: ChartKey, review_: Any) -> None:
    """Start drawing this chart in the background, unless it is stored or being drawn."""
    with _lock:
        if key in _pending:
            return
    if is_stored(key):
        return
    with _lock:
        if key in _pending:
            return
        future: Future = Future()
        _pending[key] = future

    def run() -> None:
        try:
            future.set_result(_draw(key, review_))
        except BaseException as e:   # the request that waits for it sees the error
            future.set_exception(e)
        finally:
            with _lock:
                _pending.pop(key, None)
    _executor.submit(run)


def png(key: ChartKey, review_: Callable[[], Any] | Any) -> bytes:
    """The chart for `key`: stored, or being drawn here (waited for), or drawn now from `review_`."""
    found = stored(key)
    if found is not None:
        return found
    with _lock:
        future = _pending.get(key)
    if future is not None:
        try:
            return future.result()
        except Exception:
            pass            # drawn again below, so the error is this request's own
    else:
        found = stored(key)     # a drawing may have ended between the two looks
        if found is not None:
            return found
    return _draw(key, review_() if callable(review_) else review_)


def forget(clinic: Clinic) -> None:
    """Drop every stored picture of `clinic` (tests and the bench)."""
    with clinic.Session.begin() as db:
        db.execute(delete(WebReviewChart))


# ------------------------------------------------------------------------------ the pre-draw

@dataclass
class PredrawPass:
    """What one pre-draw pass did."""

    drawn: int = 0
    fresh: int = 0                  # (patient, range, language) already drawn from the current data
    dropped: int = 0                # pictures deleted: drawn from older data, or not drawn again for KEEP_DAYS
    left: int = 0                   # left for the next pass (the budget ran out)
    draw_cpu_s: float = 0.0         # CPU of the drawing process
    load_s: float = 0.0             # wall time loading the reviews (this process)
    cpu_s: float = 0.0              # CPU of this pass's thread (loading, storing; not the drawing)
    wall_s: float = 0.0
    failed: list[str] = field(default_factory=list)


class ChartWarmer(PeriodicPasses):
    """Pre-draws the review charts of every patient (see the module's docstring): a
    daemon thread, a pass every `interval_s`; the drawing in a separate process at
    niceness `nice` (`in_process=True`: in this thread, for a one-off run)."""

    failure = "pre-drawing the review charts failed (retried next pass)"

    def __init__(self, clinic: Clinic, *, interval_s: float, days: Sequence[int] = PREDRAW_DAYS,
                 languages: Sequence[str] = PREDRAW_LANGUAGES, budget_s: float = PREDRAW_BUDGET_S,
                 nice: int = PREDRAW_NICE, in_process: bool = False,
                 patient_ids: Sequence[str] | None = None) -> None:
        self.clinic, self.budget_s, self.nice = clinic, budget_s, nice
        self.patient_ids = set(patient_ids) if patient_ids is not None else None    # None: every patient
        self.days = tuple(days)
        self.languages = tuple(dict.fromkeys(chart_language(x) for x in languages))
        self.in_process = in_process
        self.last: PredrawPass | None = None
        self._process: DrawingProcess | None = None
        super().__init__(interval_s=interval_s, name="clinic-chart-predraw")

    def stop(self) -> None:
        super().stop()
        if self._process is not None:
            self._process.close()
            self._process = None

    def _draw(self, review_: Any, lang: str) -> tuple[bytes, float]:
        if self.in_process:
            return draw_timed(review_, lang)
        if self._process is None:
            self._process = DrawingProcess(nice=self.nice)
        return self._process.draw(review_, lang)

    def run_once(self, *, today: dt.date | None = None) -> PredrawPass:
        """One pass: drop pictures of changed data, draw what is missing (within the budget)."""
        global predrawn
        t0, cpu0 = time.perf_counter(), time.thread_time()
        out = PredrawPass()
        tz = timeutil.clinic_zone()
        today = today or timeutil.clinic_today()
        with self.clinic.Session() as db:
            patients = {pk: pid for pk, pid in db.execute(select(Patient.id, Patient.patient_id))
                        if self.patient_ids is None or pid in self.patient_ids}
            devices: dict[int, list[tuple[str, int, Any]]] = {pk: [] for pk in patients}
            for pk, key_id, last_seq, seen in db.execute(
                    select(Device.patient_id, Device.key_id, Device.last_seq, Device.last_seen_at)):
                devices.setdefault(pk, []).append((key_id, last_seq + 1, seen))
            rows = db.execute(select(WebReviewChart.id, WebReviewChart.patient_id, WebReviewChart.lang,
                                     WebReviewChart.first_day, WebReviewChart.last_day, WebReviewChart.log_mark,
                                     WebReviewChart.drawn_at)).all()
        marks = {pk: log_mark(devices.get(pk, ()), zone=tz) for pk in patients}
        old = utcnow() - dt.timedelta(days=KEEP_DAYS)
        rows = [r for r in rows if r.patient_id in patients]
        gone = [r.id for r in rows if marks[r.patient_id] != r.log_mark or r.drawn_at < old]
        if gone:
            with self.clinic.Session.begin() as db:
                for i in range(0, len(gone), 500):
                    db.execute(delete(WebReviewChart).where(WebReviewChart.id.in_(gone[i:i + 500])))
        out.dropped = len(gone)
        dropped = set(gone)
        have = {(r.patient_id, r.lang, r.first_day, r.last_day) for r in rows if r.id not in dropped}
        ranges = [review.Range(today - dt.timedelta(days=n - 1), today) for n in self.days]
        todo = []
        for pk in patients:
            for rng in ranges:
                missing = [lang for lang in self.languages if (pk, lang, rng.first, rng.last) not in have]
                out.fresh += len(self.languages) - len(missing)
                if missing:
                    todo.append((pk, rng, missing))
        # most recently heard-from first: their clinicians are the likeliest to look next
        latest = {pk: max((_when(s) for _, _, s in devices.get(pk, ()) if s), default=None) for pk in patients}
        never = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        todo.sort(key=lambda t: latest.get(t[0]) or never, reverse=True)
        for n, (pk, rng, langs) in enumerate(todo):
            if self._stop.is_set() or time.perf_counter() - t0 > self.budget_s:
                out.left = len(todo) - n
                break
            try:
                t = time.perf_counter()
                data = review.load(self.clinic, PREDRAW_ACTOR, patients[pk], rng, contractions=False, tz=tz,
                                   action="web_review_chart_predraw")
                out.load_s += time.perf_counter() - t
                for lang in langs:
                    key = chart_key(self.clinic, data, zone=tz, lang=lang)
                    if is_stored(key):      # a page drew it meanwhile
                        out.fresh += 1
                        continue
                    picture, cpu_s = self._draw(data.review, lang)
                    store(key, picture, cpu_s=cpu_s)
                    out.drawn += 1
                    out.draw_cpu_s += cpu_s
                    with _lock:
                        predrawn += 1
            except NotFound:
                continue            # removed meanwhile
            except Exception:
                log.exception("pre-drawing the chart of %s failed (tried again next pass)", patients[pk])
                out.failed.append(patients[pk])
        out.wall_s = time.perf_counter() - t0
        out.cpu_s = time.thread_time() - cpu0
        self.passes += 1
        self.last = out
        return out

    def _pass(self) -> float:
        if self.run_once().left:
            return 1.0          # the budget ran out: go on at once (with the newest uploads first)
        return self.interval_s
