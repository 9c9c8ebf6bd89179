"""The clinician's pages in English and Swedish: a small catalogue in Python, not gettext.

The pages' strings are few, live beside the templates, and are edited by the engineers who
write the pages; a dictionary keyed by the English text keeps a missing translation
visible (the English shows) and needs no compile step (.mo files) before the service runs.

    from clinic.web.i18n import add, gettext
    add("sv", {"Program": "Program", "Sign it": "Signera det"})   # at import of your page module
    gettext("sv", "Patients")                                      # -> "Patienter"

In templates every page gets `_` bound to the request's language: `{{ _("Patients") }}`,
and `{{ _("{n} of {due}", n=2, due=5) }}` formats after translating. A page module ADDS
its entries with `add` (one call per module, at import); nobody edits another module's
entries. `LANGUAGES` is what the switch in the header offers.
"""
from __future__ import annotations

from typing import Mapping

#: Language code -> its name in that language (the header's switch).
LANGUAGES = {"en": "English", "sv": "Svenska"}
DEFAULT = "en"

_CATALOGUE: dict[str, dict[str, str]] = {"sv": {}}


def add(language: str, entries: Mapping[str, str]) -> None:
    """Add translations (English text -> text in `language`). An English text already
    translated differently is refused: two pages would show two words for one thing."""
    if language not in LANGUAGES or language == DEFAULT:
        raise ValueError(f"language {language!r}: translations go to one of "
                         f"{', '.join(k for k in LANGUAGES if k != DEFAULT)}")
    table = _CATALOGUE.setdefault(language, {})
    for english, translated in entries.items():
        if table.get(english, translated) != translated:
            raise ValueError(f"{english!r} is already translated to {language} as {table[english]!r}, "
                             f"not {translated!r}")
        table[english] = translated


def gettext(language: str, text: str, /, **values: object) -> str:
    """`text` in `language` (the English when no translation exists), then `.format(**values)`."""
    out = _CATALOGUE.get(language, {}).get(text, text)
    return out.format(**values) if values else out


def missing(language: str, texts: list[str]) -> list[str]:
    """The texts among `texts` without a translation into `language` (for the tests)."""
    table = _CATALOGUE.get(language, {})
    return [t for t in texts if t not in table]


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: the header switch's cookie, else the browser's first
    language we have, else English."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT


add("sv", {
    # the frame of every page
    "NMES home training: clinic": "NMES-hemträning: klinik",
    "Skip to the main content": "Hoppa till huvudinnehållet",
    "Signed in as {name}": "Inloggad som {name}",
    "Sign out": "Logga ut",
    "Language": "Språk",
    "Patients": "Patienter",
    "Main": "Huvudmeny",
    # sign-in
    "Sign in": "Logga in",
    "Username": "Användarnamn",
    "Password": "Lösenord",
    "Wrong username or password.": "Fel användarnamn eller lösenord.",
    "Give your username and password.": "Ange användarnamn och lösenord.",
    "Too many failed sign-ins for this username. Try again in {minutes} minutes.":
        "För många misslyckade inloggningar för det här användarnamnet. Försök igen om {minutes} minuter.",
    "Too many failed sign-ins from this computer's address. Try again in {minutes} minutes.":
        "För många misslyckade inloggningar från den här datorns adress. Försök igen om {minutes} minuter.",
    "You are signed out.": "Du är utloggad.",
    "Your sign-in expired or you signed out. Sign in again.":
        "Din inloggning har gått ut eller så har du loggat ut. Logga in igen.",
    # errors
    "Page not found": "Sidan finns inte",
    "Refused": "Nekad",
    "Back to the patients": "Tillbaka till patienterna",
    "The form expired or came from another site. Reload the page and try again.":
        "Formuläret har gått ut eller kom från en annan webbplats. Ladda om sidan och försök igen.",
    "No patient {id} among your patients.": "Ingen patient {id} bland dina patienter.",
    "Patient {id}: no log uploaded yet.": "Patient {id}: ingen logg uppladdad än.",
    "Something went wrong in the clinic service (it is logged on the server).":
        "Något gick fel i kliniktjänsten (det är loggat på servern).",
})
