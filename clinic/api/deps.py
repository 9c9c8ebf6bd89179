"""What routes share: the service, the signed-in clinician, the signed device, the body."""
from __future__ import annotations

from fastapi import Request

from ..service import Actor, Clinic, ClinicError, Unauthorized


def clinic(request: Request) -> Clinic:
    """The Clinic service of this application."""
    return request.app.state.clinic


def signed_in_clinician(request: Request) -> Actor:
    """The clinician of the request's bearer token (Unauthorized without one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("sign in first: POST /api/login, then send 'Authorization: Bearer TOKEN'")
    return clinic(request).actor_for_token(token.strip())


def path_with_query(request: Request) -> str:
    """The path a device signed: path plus query string, as sent."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def json_object(request: Request) -> dict:
    """The body as a JSON object; ClinicError (400) naming what is wrong otherwise."""
    import json
    body = await request.body()
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ClinicError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ClinicError(f"the body is not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (ValueError, RecursionError):
        raise ClinicError("the body is not acceptable JSON (nested too deep or a number too long)") from None
    if not isinstance(data, dict):
        raise ClinicError(f"the body must be a JSON object, not {type(data).__name__}")
    return data
