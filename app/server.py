"""The app's server: Streamlit's own ASGI app (``st.App``) plus the two routes of the session
cookie, which a Streamlit script cannot set itself (it runs over the websocket, after the page
has loaded). `shadowtutor app` runs this file; `streamlit run` finds the ``app`` object in it.

* ``GET /session/claim?t=<handoff>&next=/cost``: after a login the page fetches this in the
  background with a one-time token (should that fail, the browser comes here itself); the
  route sets ``shadowtutor_session`` (signed, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over
  HTTPS, ``Max-Age`` the session's lifetime) and redirects to ``next`` (``/`` without one).
* ``GET /session/end``: clears the cookie (the session itself is revoked by the Log out
  button before it comes here) and goes back to the login form.

Nothing here reads the cookie: the app script does, on every run (``st.context.cookies``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from shadowtutor import db
from shadowtutor.accounts import sessions
from shadowtutor.app import deps
from shadowtutor.config import Settings

MAIN = Path(__file__).resolve().with_name("main.py")
CLAIM, END = "/session/claim", "/session/end"


def _key(settings: Settings) -> str:
    return sessions.secret(configured=settings.session_secret, home=settings.home_path)


def _set_cookie(response: RedirectResponse, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        sessions.COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",  # sent on typed addresses, bookmarks and links; not on cross-site POSTs
        secure=request.url.scheme == "https",
    )


async def claim(request: Request) -> RedirectResponse:
    settings = Settings.load(secrets=deps.secrets())  # as the app script reads them
    target = sessions.safe_next(request.query_params.get("next"))
    handoff = request.query_params.get("t", "")
    got = None
    if handoff:
        with db.session_scope(settings.db_url) as session:
            got = sessions.claim(session=session, handoff=handoff, key=_key(settings))
    response = RedirectResponse(target, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token never leaves in a Referer
    if got is not None:
        _set_cookie(response, request, *got)
    return response


async def end(request: Request) -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="lax")
    return response


app = st.App(MAIN, routes=[Route(CLAIM, claim), Route(END, end)])
