"""The signed-in clinician's signing keys: register the public key file of a key made in
the browser (the program editor's "make a new key") or by `homeapp rx keygen`, instead of
`homeapp-clinic clinician key` on the server.

    GET  /account/keys     the keys registered to you (their key ids), and the form
    POST /account/keys     a public key file and your password again -> registered

Only ever for the signed-in clinician's own account (there is no username in the form).
The password is asked again (a session left open on a shared computer must not let
someone else add a key that then signs prescriptions); it counts towards the sign-in
throttle like a sign-in. Every outcome is in the audit table: a registration by the
service (`clinician_key_add`, actor the clinician), a refusal here (`web_key_add`,
outcome denied or refused, with the reason). Refused with a message that says what to
give instead: no file, a file that is no PEM public key, a private key (never kept, never
echoed), a key that is not Ed25519, a key registered to another clinician.
"""
from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from ..models import ClinicianKey
from ..service import LOGIN_WINDOW, Actor, ClinicError, Conflict, TooMany, Unauthorized
from . import i18n
from .core import clinic, page_router, render, require_csrf, signed_in, translator

router = page_router()

NOT_A_KEY = ("That file is not a public key: choose clinician.pub (it begins with -----BEGIN PUBLIC KEY-----), as the "
             "program page's \"Make a new key in this browser\" or homeapp rx keygen wrote it.")
#: A public key file is a few hundred bytes; anything much larger is not one.
MAX_KEY_FILE_BYTES = 16 * 1024


def _keys(request: Request, actor: Actor) -> list[tuple[str, str]]:
    """(key id, registered on YYYY-MM-DD) of the clinician's keys, oldest first."""
    with clinic(request).Session() as db:
        rows = db.execute(select(ClinicianKey.key_id, ClinicianKey.created_at)
                          .where(ClinicianKey.clinician_id == actor.clinician_id)
                          .order_by(ClinicianKey.created_at, ClinicianKey.key_id)).all()
    return [(kid, when.date().isoformat() if when else "") for kid, when in rows]


def _page(request: Request, actor: Actor, *, status_code: int = 200, error: str | None = None,
          registered: str | None = None, known: str | None = None) -> Response:
    return render(request, "keys.html", status_code=status_code, keys=_keys(request, actor), error=error,
                  registered=registered, known=known)


@router.get("/account/keys")
def keys(request: Request, actor: Actor = Depends(signed_in)) -> Response:
    return _page(request, actor)


@router.post("/account/keys", dependencies=[Depends(require_csrf)])
async def register(request: Request, actor: Actor = Depends(signed_in)) -> Response:
    _ = translator(request)
    svc = clinic(request)
    form = await request.form()
    password = form.get("password")
    upload = form.get("keyfile")

    def refuse(reason: str, message: str, status: int, outcome: str = "refused") -> Response:
        if outcome == "denied":     # a wrong password: counted like a failed sign-in
            svc.audit_denied(actor, "web_key_add", None, reason)
        else:
            _audit_refusal(request, actor, reason)
        return _page(request, actor, status_code=status, error=message)

    if not isinstance(password, str) or not password:
        return refuse("no password", _("Give your password again: registering a key is confirmed with it."), 400)
    if upload is None or isinstance(upload, str) or not upload.filename:
        return refuse("no file", _("Choose the public key file (clinician.pub) to register."), 400)
    raw = await upload.read(MAX_KEY_FILE_BYTES + 1)
    try:
        svc.authenticate(actor.name, password[:1024])
    except TooMany:
        minutes = int(LOGIN_WINDOW.total_seconds() // 60)
        return refuse("too many wrong passwords", _(
            "Too many failed sign-ins for this username. Try again in {minutes} minutes.", minutes=minutes), 429,
            outcome="denied")
    except Unauthorized:
        return refuse("wrong password", _("Wrong password: the key was not registered."), 401, outcome="denied")
    if len(raw) > MAX_KEY_FILE_BYTES:
        return refuse("file too large", _("That file is too large for a public key ({size} bytes at most): choose "
                                          "clinician.pub.", size=MAX_KEY_FILE_BYTES), 400)
    if b"PRIVATE KEY" in raw:
        # never kept, never shown: the secret half stays with the clinician
        return refuse("a private key was sent", _(
            "That is a private key (clinician.key): keep it secret and never upload it. Choose the public key "
            "file, clinician.pub, made with it."), 400)
    if b"-----BEGIN PUBLIC KEY-----" not in raw:
        return refuse("not a PEM public key", _(NOT_A_KEY), 400)
    before = {kid for kid, _when in _keys(request, actor)}
    try:
        kid = svc.add_clinician_key(actor.name, raw, by=actor)
    except Conflict:
        return refuse("registered to another clinician", _(
            "That key is already registered to another clinician. Each clinician signs with a key of their own: "
            "make a new key for yourself."), 409)
    except ClinicError as e:   # not a PEM public key, not Ed25519
        if "Ed25519" in str(e):
            return refuse(str(e), _("That public key is not an Ed25519 key: the devices verify Ed25519 signatures "
                                    "only. Make a key with the program page or homeapp rx keygen."), 400)
        return refuse(str(e), _(NOT_A_KEY), 400)
    if kid in before:
        return _page(request, actor, known=kid)
    return _page(request, actor, registered=kid)


def _audit_refusal(request: Request, actor: Actor, reason: str) -> None:
    import json

    from ..models import AuditEntry
    from ..timeutil import utcnow
    with clinic(request).Session.begin() as db:
        db.add(AuditEntry(at=utcnow(), actor=str(actor), action="web_key_add", patient_ref=None, outcome="refused",
                          detail_json=json.dumps({"reason": reason}), is_read=False))


i18n.add("sv", {
    "Signing keys": "Signeringsnycklar",
    "Your signing keys": "Dina signeringsnycklar",
    "The clinic accepts a prescription signed by one of these keys only. Compare a key id with the one the "
    "program page or homeapp rx keygen showed when the key was made.":
        "Kliniken godtar bara en ordination som signerats med någon av de här nycklarna. Jämför nyckel-id med det "
        "som programsidan eller homeapp rx keygen visade när nyckeln gjordes.",
    "Key id": "Nyckel-id",
    "Registered": "Registrerad",
    "No key is registered to you yet.": "Ingen nyckel är registrerad för dig än.",
    "Register a public key": "Registrera en publik nyckel",
    "The public key file (clinician.pub)": "Filen med den publika nyckeln (clinician.pub)",
    "Never the private key (clinician.key): it stays with you.":
        "Aldrig den privata nyckeln (clinician.key): den stannar hos dig.",
    "Your password, to confirm": "Ditt lösenord, för att bekräfta",
    "Register the key": "Registrera nyckeln",
    "Key {key} is registered to you. Compare this id with the one shown when the key was made; add the same "
    "file to each patient's device with homeapp rx trust add.":
        "Nyckeln {key} är registrerad för dig. Jämför id:t med det som visades när nyckeln gjordes; lägg in samma "
        "fil på varje patients enhet med homeapp rx trust add.",
    "Key {key} was already registered to you: nothing changed.":
        "Nyckeln {key} var redan registrerad för dig: inget ändrades.",
    "Give your password again: registering a key is confirmed with it.":
        "Ange ditt lösenord igen: registreringen av en nyckel bekräftas med det.",
    "Choose the public key file (clinician.pub) to register.":
        "Välj filen med den publika nyckeln (clinician.pub) att registrera.",
    "Wrong password: the key was not registered.": "Fel lösenord: nyckeln registrerades inte.",
    "That file is too large for a public key ({size} bytes at most): choose clinician.pub.":
        "Filen är för stor för en publik nyckel (högst {size} byte): välj clinician.pub.",
    "That is a private key (clinician.key): keep it secret and never upload it. Choose the public key file, "
    "clinician.pub, made with it.":
        "Det är en privat nyckel (clinician.key): håll den hemlig och ladda aldrig upp den. Välj filen med den "
        "publika nyckeln, clinician.pub, som gjordes med den.",
    "That file is not a public key: choose clinician.pub (it begins with -----BEGIN PUBLIC KEY-----), as the "
    "program page's \"Make a new key in this browser\" or homeapp rx keygen wrote it.":
        "Filen är ingen publik nyckel: välj clinician.pub (den börjar med -----BEGIN PUBLIC KEY-----), så som "
        "programsidans \"Skapa en ny nyckel i webbläsaren\" eller homeapp rx keygen skrev den.",
    "That key is already registered to another clinician. Each clinician signs with a key of their own: make a "
    "new key for yourself.":
        "Nyckeln är redan registrerad för en annan behandlare. Varje behandlare signerar med en egen nyckel: gör en "
        "ny nyckel åt dig.",
    "That public key is not an Ed25519 key: the devices verify Ed25519 signatures only. Make a key with the "
    "program page or homeapp rx keygen.":
        "Den publika nyckeln är ingen Ed25519-nyckel: enheterna kontrollerar bara Ed25519-signaturer. Gör en nyckel "
        "med programsidan eller homeapp rx keygen.",
})
