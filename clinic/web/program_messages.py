"""The validator's messages (schedules/validate.py) in the program editor's language.

The validator speaks English, one line a problem: `PATH: TEXT`. This module keeps a
catalogue keyed by the validator's message templates (the English text with its values as
`{name}`), matched against each TEXT; the values are carried over, the words they contain
(kinds such as "a list", limits such as "1 to 150 Hz") translated by `_VALUE_WORDS`. A
message that no template matches is shown in English with a visible marker
(`Message.untranslated`), never dropped; `untranslated(lines, language)` lists them, so a
test names every message without a Swedish text.

Order matters: a template that is a longer form of another ("... (with the longest
adjustable settings) ...") comes first.
"""
from __future__ import annotations

import re
from typing import Iterable

#: English template -> Swedish template, in matching order. `{name}`: a value the validator quoted.
TEMPLATES: dict[str, str] = {
    "unknown field (an adjustable value has value, min and max)":
        "okänt fält (ett justerbart värde har value, min och max)",
    "unknown field (did you mean {hint}?)": "okänt fält (menade du {hint}?)",
    "unknown field (known fields: {fields})": "okänt fält (kända fält: {fields})",
    "unknown field": "okänt fält",
    "missing (an adjustable value needs value, min and max, each {allowed})":
        "saknas (ett justerbart värde behöver value, min och max, vart och ett {allowed})",
    'missing (expected "{format}")': 'saknas (väntat "{format}")',
    "missing ({what})": "saknas ({what})",
    "missing": "saknas",
    "{value} is not a finite number": "{value} är inte ett ändligt tal",
    "{value} is not a whole number": "{value} är inte ett heltal",
    "{value} is not a number": "{value} är inte ett tal",
    "{value} is above the device limit of {high} (allowed {allowed})":
        "{value} är över enhetens gräns {high} (tillåtet {allowed})",
    "{value} is below the device limit of {low} (allowed {allowed})":
        "{value} är under enhetens gräns {low} (tillåtet {allowed})",
    "{value} is above the limit of {high} (allowed {allowed})":
        "{value} är över gränsen {high} (tillåtet {allowed})",
    "{value} is below the limit of {low} (allowed {allowed})": "{value} är under gränsen {low} (tillåtet {allowed})",
    "{value} is not text": "{value} är inte text",
    "is empty": "är tomt",
    "{value} is not one of {allowed}": "{value} är inte något av {allowed}",
    "{value} is not a date (expected YYYY-MM-DD)": "{value} är inte ett datum (väntat ÅÅÅÅ-MM-DD)",
    "min {low} is above max {high}": "min {low} är över max {high}",
    "value {value} is outside its own range {low} to {high}":
        "värdet {value} ligger utanför sitt eget intervall {low} till {high}",
    "expected a JSON object, got {kind}": "väntade ett JSON-objekt, fick {kind}",
    "expected an object, got {kind}": "väntade ett objekt, fick {kind}",
    "expected a list of blocks, got {kind}": "väntade en lista med block, fick {kind}",
    "expected a list of {low} to {high} channels, got {kind}":
        "väntade en lista med {low} till {high} kanaler, fick {kind}",
    "{n} channels given (allowed {low} to {high})": "{n} kanaler angivna (tillåtet {low} till {high})",
    "no blocks (at least one is needed)": "inga block (minst ett behövs)",
    "ramp_up_s + ramp_down_s = {total} (at their largest) is longer than {on}":
        "ramp_up_s + ramp_down_s = {total} (som störst) är längre än {on}",
    "ramp_up_s + ramp_down_s = {total} is longer than {on}": "ramp_up_s + ramp_down_s = {total} är längre än {on}",
    '"alternating" needs 2 channels ({n} given)': '"alternating" (växelvis) behöver 2 kanaler ({n} angivna)',
    '"alternating" needs off_s >= on_s, but {off} and {on}':
        '"alternating" (växelvis) behöver off_s >= on_s, men {off} och {on}',
    '{value} is not supported (expected "{format}")': '{value} stöds inte (väntat "{format}")',
    "{value} is a placeholder, not a patient: give the patient's id":
        "{value} är en platshållare, inte en patient: ange patientens id",
    "{value} is a placeholder, not a clinician: give the clinician's id":
        "{value} är en platshållare, inte en behandlare: ange behandlarens id",
    "{value} is in the future (today is {today}); issued is the day the prescription was written: to start "
     "sessions later, set valid_from":
        "{value} ligger i framtiden (i dag är det {today}); issued är dagen då ordinationen skrevs: sätt "
     "valid_from för att börja passen senare",
    "{value} is before issued {issued} (sessions cannot start before the prescription was written)":
        "{value} är före issued {issued} (passen kan inte börja innan ordinationen skrevs)",
    "{value} is before issued {issued}": "{value} är före issued {issued}",
    "{value} is after expires {expires} (no day would be left)":
        "{value} är efter expires {expires} (ingen dag skulle bli kvar)",
    "{value} has passed (today is {today})": "{value} har passerat (i dag är det {today})",
    "{n} cannot fit in a week of at most {per_day} per day (max_sessions_per_day); at most {most}":
        "{n} ryms inte i en vecka med högst {per_day} per dag (max_sessions_per_day); högst {most}",
    "session total {total} min (with the longest adjustable settings) is longer than the limit of {limit} min":
        "passet totalt {total} min (med de längsta justerbara inställningarna) är längre än gränsen {limit} min",
    "session total {total} min is longer than the limit of {limit} min":
        "passet totalt {total} min är längre än gränsen {limit} min",}

#: Words inside the quoted values (kinds, limits, "at its smallest"), in Swedish: whole
#: phrases first, then " to " of a range ("1 to 150 Hz").
_VALUE_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "sv": (
        (" (at its smallest)", " (som minst)"), (" (at its largest)", " (som störst)"),
        ("a date YYYY-MM-DD", "ett datum ÅÅÅÅ-MM-DD"),
        ("a list of at least one block", "en lista med minst ett block"),
        ("a huge number", "ett enormt stort tal"), ("an object", "ett objekt"), ("a list of ", "en lista med "),
        ("a list", "en lista"), ("true/false", "sant/falskt"), ("a number", "ett tal"), (" channels", " kanaler"),
        (" to ", " till "), (" or ", " eller "),
    ),
}
#: The values that hold the validator's words (the others quote what was entered, kept as typed).
_WORDY = frozenset({"kind", "allowed", "what", "on", "off"})
#: Values that are exactly one word to translate (a kind alone).
_VALUE_EXACT = {"sv": {"text": "text", "null": "null"}}

_COMPILED: list[tuple[re.Pattern[str], str]] = []


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    out = []
    for i, part in enumerate(parts):
        out.append(f"(?P<{part}>.+?)" if i % 2 else re.escape(part))
    return re.compile("".join(out) + r"\Z", re.S)


for _english, _swedish in TEMPLATES.items():
    _COMPILED.append((_compile(_english), _swedish))


class Message(str):
    """A validator message for display: the text (translated, or the English) and
    `untranslated`, true when no template gave it a text in the page's language."""

    untranslated: bool = False

    def __new__(cls, text: str, *, untranslated: bool = False) -> "Message":
        made = super().__new__(cls, text)
        made.untranslated = untranslated
        return made


def _value(text: str, language: str) -> str:
    exact = _VALUE_EXACT.get(language, {})
    if text in exact:
        return exact[text]
    for english, translated in _VALUE_WORDS.get(language, ()):
        text = text.replace(english, translated)
    return text


def translate_text(text: str, language: str) -> str | None:
    """The TEXT of one validator message in `language` (None: no template matches)."""
    if language == "en":
        return text
    for pattern, translated in _COMPILED:
        found = pattern.match(text)
        if found:
            return translated.format(**{k: _value(v, language) if k in _WORDY else v
                                        for k, v in found.groupdict().items()})
    return None


def translate(line: str, language: str) -> Message:
    """One validator line (`PATH: TEXT`, or TEXT) in `language`; the English, marked
    untranslated, when no template matches. The PATH stays: it is the format's name."""
    path, sep, text = line.partition(": ")
    if not sep:
        path, text = "", line
    done = translate_text(text, language)
    if done is None:
        return Message(line, untranslated=language != "en")
    return Message(f"{path}: {done}" if sep else done)


def untranslated(lines: Iterable[str], language: str) -> list[str]:
    """The lines among `lines` that no template translates into `language`."""
    return [line for line in lines if translate(line, language).untranslated]


def _add_words() -> None:
    from . import i18n
    i18n.add("sv", {"(not translated yet: in English)": "(inte översatt än: på engelska)"})


_add_words()
