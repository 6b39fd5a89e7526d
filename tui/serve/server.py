"""The web server behind `chrysopedia serve`, built on textual-serve.

textual-serve's `Server` serves a page with xterm.js and, for each browser websocket,
starts the app with Textual's web driver and relays its screen and keys. This subclass
adds what exposing it needs:

- A token (`?token=` once, then an HttpOnly cookie; or `Authorization: Bearer`): without
  it every route, the websocket included, answers 401 before any process starts. The
  token is compared in constant time, never logged (the access log has no query strings,
  and every log line is redacted: aiohttp logs a malformed request's raw line) and never put
  in a page.
- Without a token the server only answers requests addressed to a loopback name (or the
  `--public-url` host), so a web page elsewhere cannot reach it by DNS rebinding; the
  websocket refuses any Origin but the server's own, so no other site can open a session.
- At most `max_sessions` app processes; another browser gets a page saying so.
- Each session's process runs in its own process group and is ended when its websocket
  closes (quit, then SIGTERM, then SIGKILL to the group), and all of them when the server
  stops. The session entry (`tui.serve.session`) also dies with the server if it is killed.
- Its own page template: no fonts from the internet (the page works on a LAN without
  one), and textual.js served with one line added that exposes the xterm.js `Terminal`
  as `window.chrysopediaTerminal` (for tests and benchmarks reading the screen).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
import textual_serve
from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractAccessLogger
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from tui.serve.guard import TOKEN_ENV, WILDCARD_HOSTS, is_loopback, lan_url
from tui.serve.session import PARENT_ENV

log = logging.getLogger("chrysopedia.serve")

COOKIE = "chrysopedia_session"
COOKIE_MAX_AGE_S = 30 * 24 * 3600  # a browser on the studio LAN need not ask again for a month
# After asking the app to quit: how long it may take before SIGTERM, then SIGKILL.
QUIT_GRACE_S = 3.0
TERM_GRACE_S = 2.0
TEMPLATES = Path(__file__).parent / "templates"
TEXTUAL_JS = Path(textual_serve.__file__).parent / "static" / "js" / "textual.js"
# The one place textual.js is changed: after xterm.js opens its terminal, keep a handle.
JS_NEEDLE = "this.terminal.open(e),"
JS_PATCH = "this.terminal.open(e),window.chrysopediaTerminal=this.terminal,"


def session_environment(
    settings: Any, base: Mapping[str, str], parent_pid: int
) -> dict[str, str]:
    """The environment of a session's app: the server's settings, spelled out."""
    from tui.config import environment_for

    env = dict(base)
    env.pop(TOKEN_ENV, None)
    for name, value in environment_for(settings).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env[PARENT_ENV] = str(parent_pid)
    return env


def patched_textual_js() -> bytes:
    text = TEXTUAL_JS.read_text(encoding="utf-8")
    if JS_NEEDLE not in text:
        log.warning("textual.js changed: the terminal is not exposed to scripts")
        return text.encode("utf-8")
    return text.replace(JS_NEEDLE, JS_PATCH, 1).encode("utf-8")


# Credentials as they can appear in a log line (aiohttp logs a malformed request's raw
# request line or header, query string included): a `token=` value, a Bearer header, the
# session cookie.
CREDENTIALS = re.compile(
    r"(?i)(token=|bearer\s+|" + COOKIE + r"=)[^&;\s'\"\\]+")


class RedactingFormatter(logging.Formatter):
    """Log lines (and their tracebacks) with every credential replaced by `***`: the token
    and the session cookie's value wherever they appear, and anything in a credential's
    place (a wrong token is someone's guess at the right one)."""

    def __init__(self, fmt: str, datefmt: str, secrets: list[str]) -> None:
        super().__init__(fmt, datefmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return CREDENTIALS.sub(r"\1***", text)


class PathOnlyAccessLogger(AbstractAccessLogger):
    """One line per request with the path but never the query (it may hold the token)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.3fs",
            request.remote, request.method, request.path, response.status, time,
        )


def _signal_group(process: asyncio.subprocess.Process, step: str) -> None:
    """SIGTERM ("term") or SIGKILL ("kill") to the process's group (Windows: the process)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGTERM if step == "term" else signal.SIGKILL)
        elif process.returncode is None and step == "term":
            process.terminate()
        elif process.returncode is None:
            process.kill()


class Session(AppService):
    """One browser session's app process, in its own process group, always ended.

    Overrides AppService's `_open_app_process` (an argv, no shell, a new session) and
    `stop`, and uses its `_process`, `_stdin`, `_task` and `_download_manager`;
    tests/test_serve.py checks these are still there.
    """

    quit_grace = QUIT_GRACE_S
    term_grace = TERM_GRACE_S

    def __init__(self, argv: list[str], env: dict[str, str], **kwargs: Any) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = argv
        self.env = env
        self._stopped = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _open_app_process(self, width: int = 80, height: int = 24):
        env = dict(self.env)
        env.update(
            TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver",
            TEXTUAL_COLOR_SYSTEM="truecolor",
            TERM_PROGRAM="textual",
            COLUMNS=str(width),
            ROWS=str(height),
        )
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the app to quit; past the grace time, end its process group."""
        if self._stopped:
            return
        self._stopped = True
        process = self._process
        with contextlib.suppress(Exception):
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if process is None:
            return
        if process.returncode is None:
            # A hung app may not read its stdin: the message must not wait on it forever.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send_meta({"type": "quit"}), self.quit_grace)
        for step, grace in (("quit", self.quit_grace), ("term", self.term_grace),
                            ("kill", None)):
            if step != "quit":
                _signal_group(process, step)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), grace)
                break
            except TimeoutError:
                continue
        # Whatever the app left in its group (a player it started is in its own session).
        _signal_group(process, "kill")
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, self.term_grace)
            self._task = None


class ChrysopediaServer(Server):
    """textual-serve's Server with a token, a session limit and reliable session ends."""

    def __init__(
        self,
        settings: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        public_url: str | None = None,
        max_sessions: int = 8,
        argv: list[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            "chrysopedia",
            host=host,
            port=port,
            title="Chrysopedia",
            public_url=public_url,
            templates_path=TEMPLATES,
        )
        self.explicit_public_url = public_url
        self.settings = settings
        self._token = token
        self._cookie_value = (
            hmac.new(token.encode(), b"chrysopedia-serve-cookie", hashlib.sha256).hexdigest()
            if token
            else None
        )
        self.max_sessions = max_sessions
        self.argv = argv or [sys.executable, "-m", "tui.serve.session"]
        self.session_env = session_environment(
            settings, os.environ if env is None else env, os.getpid()
        )
        self.sessions: set[Session] = set()
        self._js = patched_textual_js()
        allowed = set()
        if public_url:
            allowed.add((urlsplit(public_url).hostname or "").lower())
        self.allowed_hosts = allowed

    def __repr__(self) -> str:  # never the token
        return f"ChrysopediaServer({self.host}:{self.port}, token={'set' if self._token else 'none'})"

    # -- logging and start-up ------------------------------------------------------
    def initialize_logging(self) -> None:
        # Plain lines, no tracebacks with local variables, credentials redacted.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter(
            "%(asctime)s %(name)s: %(message)s", "%H:%M:%S",
            [self._token or "", self._cookie_value or ""]))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel("DEBUG" if self.debug else "INFO")

    async def on_startup(self, app: web.Application) -> None:
        guard = "a token is required" if self._token else "loopback only, no token"
        print(
            f"chrysopedia: serving on {self.public_url} ({guard}; at most "
            f"{self.max_sessions} sessions). Ctrl+C stops it.",
            flush=True,
        )
        if not self.explicit_public_url and self.host in WILDCARD_HOSTS:
            # 0.0.0.0 is where the server listens, not an address a browser can open
            print(f"chrysopedia: open {lan_url(self.port)} from another machine "
                  "(or this machine's name or address)", flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        await self.stop_all()

    async def stop_all(self) -> None:
        sessions = list(self.sessions)
        await asyncio.gather(*(s.stop() for s in sessions), return_exceptions=True)

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.get("/static/js/textual.js", self.handle_textual_js),
            web.static("/static", self.statics_path, name="static"),
        ])
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    def serve(self, debug: bool = False) -> None:
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_exit)
        try:
            web.run_app(
                self._make_app(),
                host=self.host,
                port=self.port,
                handle_signals=False,
                loop=loop,
                print=None,
                access_log_class=PathOnlyAccessLogger,
                access_log=logging.getLogger("chrysopedia.serve.access"),
                shutdown_timeout=QUIT_GRACE_S + TERM_GRACE_S + 1,
            )
        finally:
            # A server that failed after sessions began still ends them.
            if self.sessions:
                loop.run_until_complete(self.stop_all())
            loop.close()

    # -- the guard -----------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        assert self._token is not None and self._cookie_value is not None
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer " and hmac.compare_digest(
            header[7:].strip().encode(), self._token.encode()
        ):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._cookie_value.encode())

    def _host_allowed(self, request: web.Request) -> bool:
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        host = host.strip("[]").lower()
        return is_loopback(host) or host in self.allowed_hosts

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if self._token is None:
            if not self._host_allowed(request):
                return web.Response(status=403, text="This server answers only on loopback.\n")
            return await handler(request)
        query_token = request.query.get("token")
        if query_token is not None:
            if not hmac.compare_digest(query_token.encode(), self._token.encode()):
                return self._unauthorised()
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)
            # Once: the token becomes a cookie, and the address bar loses it.
            query = request.query.copy()
            del query["token"]
            response = web.HTTPSeeOther(request.rel_url.with_query(query))
            response.set_cookie(
                COOKIE, self._cookie_value, httponly=True, samesite="Lax", path="/",
                secure=self.public_url.startswith("https:"), max_age=COOKIE_MAX_AGE_S,
            )
            return response
        if not self._authorised(request):
            return self._unauthorised()
        return await handler(request)

    @staticmethod
    def _unauthorised() -> web.Response:
        return web.Response(
            status=401,
            text="401: this Chrysopedia server needs its token "
            "(open the address with ?token=..., or send Authorization: Bearer ...).\n",
            headers={"WWW-Authenticate": 'Bearer realm="chrysopedia"'},
        )

    # -- routes --------------------------------------------------------------------
    async def handle_textual_js(self, request: web.Request) -> web.Response:
        return web.Response(body=self._js, content_type="application/javascript")

    def _full(self) -> bool:
        return len(self.sessions) >= self.max_sessions

    def _limit_page(self) -> web.Response:
        n = self.max_sessions
        body = (
            "<!DOCTYPE html><html><head><title>Chrysopedia: all sessions in use</title>"
            "<meta charset='utf-8'></head><body style='background:#0c181f;color:#eee;"
            "font-family:monospace;padding:3em'><h1>All sessions are in use</h1>"
            f"<p>This server runs at most {n} session{'s' if n != 1 else ''} at once, and "
            "all are open. Close another tab, or try again later.</p></body></html>"
        )
        return web.Response(status=503, text=body, content_type="text/html",
                            headers={"Retry-After": "30"})

    def _base_url(self, request: web.Request) -> str:
        if self.explicit_public_url:
            return self.explicit_public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if self._full():
            return self._limit_page()
        base = self._base_url(request)
        ws = ("wss:" if base.startswith("https:") else "ws:") + base.split(":", 1)[1] + "/ws"
        font_size = min(max(to_int(request.query.get("fontsize", "16"), 16), 6), 48)
        context = {
            "font_size": font_size,
            "app_websocket_url": ws,
            "config": {"static": {"url": base + "/static/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def _origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser: the token (or loopback) is the guard
            return True
        parts = urlsplit(origin)
        if parts.netloc.lower() == request.host.lower():
            return True
        return bool(self.explicit_public_url) and (
            parts.netloc.lower() == urlsplit(self.explicit_public_url).netloc.lower()
        )

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_allowed(request):
            return web.Response(status=403, text="Cross-origin websocket refused.\n")
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 20)
        if not websocket.can_prepare(request).ok:  # refused before a session is made
            return web.Response(status=400, text="This address takes a websocket only.\n")
        if self._full():
            return web.Response(status=503, text="All sessions are in use.\n")
        width = min(max(to_int(request.query.get("width", "80"), 80), 10), 1000)
        height = min(max(to_int(request.query.get("height", "24"), 24), 5), 500)
        session = Session(
            self.argv,
            self.session_env,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions.add(session)  # before any await: the limit holds under a burst
        try:
            await websocket.prepare(request)
            await session.start(width, height)
            log.info("session %s started (pid %s, %d open)", session.app_service_id[:8],
                     session.pid, len(self.sessions))
            await self._relay(websocket, session)
        except (asyncio.CancelledError, ConnectionResetError):
            pass
        except Exception:  # noqa: BLE001 - one session's failure must not stop the server
            log.warning("session %s failed", session.app_service_id[:8], exc_info=True)
        finally:
            await session.stop()
            self.sessions.discard(session)
            with contextlib.suppress(Exception):
                await websocket.close()
            log.info("session %s ended (%d open)", session.app_service_id[:8], len(self.sessions))
        return websocket

    async def _relay(self, websocket: web.WebSocketResponse, session: Session) -> None:
        """Browser -> app: keys, resizes, focus. Malformed messages are ignored."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
                kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            except (ValueError, TypeError, IndexError, KeyError):
                continue
            if kind == "stdin" and isinstance(data, str):
                await session.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                width = min(max(to_int(str(data.get("width", 80)), 80), 10), 1000)
                height = min(max(to_int(str(data.get("height", 24)), 24), 5), 500)
                await session.set_terminal_size(width, height)
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await session.blur()
            elif kind == "focus":
                await session.focus()
