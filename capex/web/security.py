"""The web client's sign-in cookie and its CSRF tokens.

A signed-in browser holds an access token, the same kind the API issues (so expiry,
sign-out and deactivation work alike), in an HttpOnly, SameSite=Lax cookie that is Secure
when the page is served over HTTPS. Every form carries a CSRF token: an HMAC, under the
secret key, of a random value kept in a second cookie. A POST whose form token does not
match its cookie is refused, so another site can neither post a form as the visitor (it
cannot read the cookie to compute the token) nor plant one (the token is keyed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "capex_session"
CSRF_COOKIE = "capex_csrf"
LANGUAGE_COOKIE = "capex_lang"
CSRF_FIELD = "csrf_token"
YEAR_SECONDS = 365 * 24 * 3600


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(request))


def new_csrf_seed() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(seed: str, secret_key: str) -> str:
    """The token a form carries for the browser whose CSRF cookie holds ``seed``."""
    digest = hmac.new(secret_key.encode(), b"capex-csrf:" + seed.encode(), hashlib.sha256)
    return digest.hexdigest()


def csrf_matches(seed: str | None, sent: str | None, secret_key: str) -> bool:
    if not seed or not sent:
        return False
    return hmac.compare_digest(csrf_token(seed, secret_key), sent)


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(char) < 32 for char in target):
        return default
    return target
