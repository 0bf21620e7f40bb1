"""The console's HTTP server: aiohttp in the coordinator's own event loop, on its own port.

Auth is the gRPC service's: the same tokens, the same roles. A token comes in an
``Authorization: Bearer`` header or in the ``seamfill_token`` cookie that ``/login`` sets
(HttpOnly, SameSite=Strict). Pages need the reader role; actions (POST ``/api/...``) need the
admin role, and when the token comes from the cookie they also need the header
``X-Seamfill-Console: 1``, which a page of another site cannot send. Every response carries a
strict Content-Security-Policy: scripts and styles from this origin only, nothing inline.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from seamfill.coordinator.service import STATUS, Role, Runtime
from seamfill.core import errors
from seamfill.core.errors import SeamfillError
from seamfill.core.logs import log_event

from . import handlers

log = logging.getLogger("seamfill.coordinator")
STATIC = Path(__file__).with_name("static")
COOKIE = "seamfill_token"
CSRF_HEADER = "X-Seamfill-Console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_HTTP = {
    errors.InvalidArgument: 400,
    errors.NotFound: 404,
    errors.FailedPrecondition: 409,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.CoordinatorUnavailable: 503,
    errors.StorageError: 503,
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_status(e: SeamfillError) -> int:
    """The HTTP status of a seamfill error (the gRPC table's classes, nearest first)."""
    for cls in type(e).__mro__:
        if cls in _HTTP:
            return _HTTP[cls]
        if cls in STATUS:
            break
    return 500


def token_of(request: web.Request) -> tuple[str, bool]:
    """(token, came from the cookie)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    return request.cookies.get(COOKIE, ""), True


def role_of(rt: Runtime, request: web.Request) -> Role | None:
    if not rt.auth.enabled:
        return Role.ADMIN
    token, _ = token_of(request)
    return rt.auth.role_of([("authorization", f"Bearer {token}")]) if token else None


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    rt = request.app[handlers.RT_KEY]
    path = request.path
    if path.startswith("/static/") or path in ("/login", "/logout"):
        return await handler(request)
    role = role_of(rt, request)
    if role is not None:
        request[handlers.ROLE_KEY] = role
    if path.startswith("/api/"):
        return await _guard_action(rt, request, role, handler)
    if role is None:
        if request.query.get("fragment"):
            raise web.HTTPUnauthorized(text="log in again: the token is missing or refused")
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
    return await handler(request)


async def _guard_action(
    rt: Runtime, request: web.Request, role: Role | None, handler: Handler
) -> web.StreamResponse:
    if request.method != "POST":
        return _error(405, "actions are POST requests")
    if role is None:
        return _error(401, "this action needs an admin token: log in at /login")
    if role < Role.ADMIN:
        return _error(403, f"this action needs the admin role; this token has {role.name.lower()}")
    _, from_cookie = token_of(request)
    if rt.auth.enabled and from_cookie and request.headers.get(CSRF_HEADER) != "1":
        return _error(403, f"send the header {CSRF_HEADER}: 1 with actions (as the console does)")
    try:
        return await handler(request)
    except SeamfillError as e:
        return _error(http_status(e), f"{type(e).__name__}: {e.message}")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SeamfillError as e:
        status = http_status(e)
        page = handlers.error_page(request, f"{type(e).__name__}: {e.message}")
        return web.Response(text=page, status=status, content_type="text/html")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    for k, v in _HEADERS.items():
        response.headers.setdefault(k, v)


def build_app(rt: Runtime) -> web.Application:
    app = web.Application(middlewares=[_errors, _auth], client_max_size=64 * 1024)
    app[handlers.RT_KEY] = rt
    app.on_response_prepare.append(_headers)
    app.add_routes(
        [
            web.get("/", handlers.fleet),
            web.get("/jobs", handlers.jobs),
            web.get("/series", handlers.series),
            web.get("/dataset", handlers.dataset),
            web.get("/dead", handlers.dead),
            web.get("/login", login_form),
            web.post("/login", login),
            web.post("/logout", logout),
            web.post("/api/job/{action}", handlers.job_action),
            web.post("/api/ensure", handlers.ensure),
            web.post("/api/dead/requeue", handlers.requeue),
            web.static("/static", STATIC),
        ]
    )
    return app


async def login_form(request: web.Request) -> web.Response:
    rt = request.app[handlers.RT_KEY]
    return handlers.html(handlers.render(request, "Log in", handlers.login_body(rt, "")))


async def login(request: web.Request) -> web.Response:
    rt = request.app[handlers.RT_KEY]
    form = await request.post()
    token = str(form.get("token", "")).strip()
    role = rt.auth.role_of([("authorization", f"Bearer {token}")]) if token else None
    if rt.auth.enabled and role is None:
        body = handlers.login_body(rt, "That token was refused: copy one from auth.reader/admin.")
        return handlers.html(handlers.render(request, "Log in", body), status=401)
    nxt = request.query.get("next", "/")
    resp = web.HTTPSeeOther(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/")
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    raise resp


async def logout(request: web.Request) -> web.Response:
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


class Console:
    """The web console of one coordinator replica; ``await start()`` returns the bound port."""

    def __init__(self, rt: Runtime, host: str, port: int) -> None:
        self.rt, self.host, self.port = rt, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        runner = web.AppRunner(build_app(self.rt), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise SeamfillError(
                f"cannot serve the console on {self.host}:{self.port}: {e.strerror}; "
                "pick another --ui-port"
            ) from e
        self._runner = runner
        server: Any = site._server  # aiohttp exposes the bound socket only here
        self.port = int(server.sockets[0].getsockname()[1])
        log_event(log, "seamless.console.started", url=self.url)
        return self.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
