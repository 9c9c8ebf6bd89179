"""The actions file of `homeapp session run` (contract.md): JSON lines, each
`{"t": seconds since session start, "do": ACTION, ...}`.

The whole file is read and checked before the session starts, so a bad line stops the run
with one clear message before any pulse.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schedules.limits import BLOCK_NUMERIC_FIELDS

from .errors import UserError

#: Each action and the fields it needs beyond `t` and `do`.
ACTIONS: dict[str, tuple[str, ...]] = {
    "intensity": ("channel", "ma"),
    "set": ("block", "param", "value"),
    "pause": (),
    "resume": (),
    "stop": (),
    "estop": (),
    "estop_release": (),
    "lead_off": ("channel",),
    "lead_on": ("channel",),
    "freeze": (),
    "report": ("pain", "effort"),
}
#: Fields an action may have but need not (`report`: the patient's comment).
OPTIONAL: dict[str, tuple[str, ...]] = {"report": ("comment",)}
#: Played after the session has ended, as the patient answers on the After screen.
AFTER_ACTIONS = frozenset({"report"})
#: The actions that stand for the physical world (the e-stop button, the electrodes): they
#: reach the board whatever the app is doing, also after a `freeze`.
WORLD_ACTIONS = frozenset({"estop", "estop_release", "lead_off", "lead_on"})


@dataclass(frozen=True)
class Action:
    t: float
    do: str
    args: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_action(obj: Any, *, where: str, channels: int, blocks: int) -> Action:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: an action must be a JSON object like "
                        f'{{"t": 12.5, "do": "pause"}}, got {type(obj).__name__}')
    if "t" not in obj or not _is_number(obj["t"]) or obj["t"] < 0:
        raise UserError(f"{where}: \"t\" must be the seconds since the session start "
                        f"(a number >= 0), got {obj.get('t')!r}")
    do = obj.get("do")
    if do not in ACTIONS:
        raise UserError(f"{where}: unknown action {do!r} (allowed: {', '.join(ACTIONS)})")
    needed = ACTIONS[do]
    optional = OPTIONAL.get(do, ())
    extra = sorted(set(obj) - {"t", "do", *needed, *optional})
    if extra:
        raise UserError(f"{where}: {do} does not take {', '.join(extra)} "
                        f"(it takes: {', '.join(('t', 'do') + needed + optional)})")
    for key in needed:
        if key not in obj:
            raise UserError(f"{where}: {do} needs \"{key}\"")
    if "channel" in needed:
        ch = obj["channel"]
        if not isinstance(ch, int) or isinstance(ch, bool) or not 0 <= ch < channels:
            raise UserError(f"{where}: channel {ch!r} does not exist "
                            f"(this prescription has channels 0 to {channels - 1})")
    if do == "intensity" and (not _is_number(obj["ma"]) or obj["ma"] < 0):
        raise UserError(f"{where}: ma must be a current in mA (a number >= 0), got {obj['ma']!r}")
    if do == "set":
        b = obj["block"]
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b < blocks:
            raise UserError(f"{where}: block {b!r} does not exist (blocks 0 to {blocks - 1})")
        if obj["param"] not in BLOCK_NUMERIC_FIELDS:
            raise UserError(f"{where}: param {obj['param']!r} is not adjustable "
                            f"(numeric block fields: {', '.join(BLOCK_NUMERIC_FIELDS)})")
        if not _is_number(obj["value"]):
            raise UserError(f"{where}: value must be a number, got {obj['value']!r}")
    if do == "report":
        _check_report(obj, where)
    return Action(t=float(obj["t"]), do=do, args={k: obj[k] for k in needed + optional if k in obj})


def _check_report(obj: dict[str, Any], where: str) -> None:
    """The After screen's answers: the same ranges the log accepts (Store.save_report)."""
    from .store import EFFORT_VALUES

    pain = obj["pain"]
    if isinstance(pain, bool) or not isinstance(pain, int) or not 0 <= pain <= 10:
        raise UserError(f"{where}: pain must be a whole number from 0 to 10, got {pain!r}")
    effort = obj["effort"]
    if not _is_number(effort) or float(effort) not in EFFORT_VALUES:
        raise UserError(f"{where}: effort must be 0 to 10 in steps of 0.5 (Borg CR10), got {effort!r}")
    if "comment" in obj and obj["comment"] is not None and not isinstance(obj["comment"], str):
        raise UserError(f"{where}: comment must be text, got {obj['comment']!r}")


def load_actions(path: str | Path, *, channels: int, blocks: int) -> list[Action]:
    """Every action of the file, sorted by time (the file's order kept for equal times)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such actions file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the actions file ({e})") from None
    actions: list[Action] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{where}: not a JSON object ({e.msg} at column {e.colno})") from None
        action = parse_action(obj, where=where, channels=channels, blocks=blocks)
        actions.append(Action(t=action.t, do=action.do, args=action.args, line=number))
    return sorted(actions, key=lambda a: (a.t, a.line))
