"""What went wrong with a server the app depends on, as one line a user can act on.

Each line names the setting, where its value came from (`Settings.sources`), the
server (password masked), what is wrong and the fix. The traceback goes to a log
file under the user's state dir, named at the end of the line. The CLI prints the
line and exits 2; the app shows it as a notification and in the status bar;
`chrysopedia doctor` shows the same words in its rows. No Textual here, and no
driver imported at module level: errors are recognised by SQLSTATE, type name
and message, so this module costs nothing until something fails.
"""

from __future__ import annotations

import errno
import getpass
import logging
import os
import socket
import ssl
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tui.config import APP_NAME, redact_url
from tui.errors import SchemaError, SetupError
from tui.text import clean

logger = logging.getLogger("chrysopedia.diagnose")

LOG_NAME = "errors.log"
LOG_MAX_BYTES = 1_000_000  # then the file is rotated once (errors.log.1)


def log_dir() -> Path:
    """`log/` in the user state dir (~/.local/state/chrysopedia/log on Linux)."""
    from platformdirs import user_state_path

    return user_state_path(APP_NAME) / "log"


def log_failure(exc: BaseException, what: str) -> Path | None:
    """Append `exc`'s traceback to the error log; its path, or None if it cannot be written."""
    path = log_dir() / LOG_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
            path.replace(path.with_name(LOG_NAME + ".1"))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
        text = "".join(traceback.format_exception(exc))
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {stamp} pid {os.getpid()}: {what}\n{text}\n")
    except OSError:
        logger.warning("cannot write the error log %s", path, exc_info=True)
        return None
    return path


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(clean(str(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Diagnosis:
    setting: str  # "database_url", "redis_url", "llm_api_url", ...
    source: str  # where the value came from: "--db", "$CHRYSOPEDIA_REDIS_URL", a file, "default"
    server: str  # the URL with its password masked
    problem: str
    fix: str = ""

    def line(self, log_path: Path | None = None) -> str:
        text = f"{self.setting} (from {self.source}) {self.server}: {self.problem}"
        if self.fix:
            text += f"; fix: {self.fix}"
        if log_path is not None:
            text += f" (details in {log_path})"
        return text

    def error(self, exc: BaseException | None = None, *, part: str) -> SetupError:
        """The SetupError to raise; the traceback of `exc` (if any) logged and named."""
        path = log_failure(exc, self.line()) if exc is not None else None
        error = SetupError(self.line(path), part=part, log_path=str(path) if path else None)
        error.diagnosis = self
        return error


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps (SQLAlchemy's `orig`, causes, contexts), outermost first."""
    out: list[BaseException] = []
    todo = [exc]
    while todo and len(out) < 12:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in out):
            continue
        out.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
        todo += list(getattr(current, "exceptions", ()) or ())  # ExceptionGroup, asyncpg's multi-host
    return out


def _sqlstate(chain: list[BaseException]) -> str | None:
    for exc in chain:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _find(chain: list[BaseException], kind: type | tuple[type, ...]) -> BaseException | None:
    return next((e for e in chain if isinstance(e, kind)), None)


def _source(settings, name: str) -> str:
    return settings.sources.get(name, "default")


# -- PostgreSQL and SQLite ----------------------------------------------------------------

def database_diagnosis(exc: BaseException, settings) -> Diagnosis:
    """Why the configured database could not be opened or used."""
    url = settings.database_url
    shown = redact_url(url)
    for driver, plain in (("postgresql+asyncpg://", "postgresql://"),
                          ("sqlite+aiosqlite://", "sqlite://")):
        if shown.startswith(driver):
            shown = plain + shown[len(driver):]  # the URL as users write it
    base = dict(setting="database_url", source=_source(settings, "database_url"), server=shown)
    chain = _chain(exc)
    schema_error = _find(chain, SchemaError)
    if schema_error is not None:
        return Diagnosis(**base, problem=one_line(str(schema_error), 400))
    if url.startswith("sqlite"):
        message = one_line(str(_find(chain, OSError) or exc))
        return Diagnosis(**base, problem=f"cannot open the SQLite database: {message}",
                         fix="check that the folder exists and is writable, or use another --db")
    parts = urlsplit(url)
    host = parts.hostname or os.environ.get("PGHOST") or "localhost"
    try:
        port = parts.port or int(os.environ.get("PGPORT") or 5432)
    except ValueError:
        port = 5432
    where = f"{host}:{port}"
    user = parts.username or os.environ.get("PGUSER") or getpass.getuser()
    database = parts.path.lstrip("/") or os.environ.get("PGDATABASE") or user
    state = _sqlstate(chain)
    pg_message = next((str(e) for e in chain if getattr(e, "sqlstate", None)), "")
    text = " ".join(one_line(str(e)) for e in chain).lower()

    if state == "3D000":
        return Diagnosis(**base, problem=f"database {database!r} does not exist on {where}",
                         fix=f"create it (createdb -h {host} -p {port} {database}) "
                             "or correct the database name in the URL")
    if state == "28P01":
        return Diagnosis(**base, problem=f"password authentication failed for role {user!r}",
                         fix="correct the password in the URL, $PGPASSWORD or the password file "
                             "($PGPASSFILE, ~/.pgpass)")
    if state == "28000" and "does not exist" in text:
        return Diagnosis(**base, problem=f"role {user!r} does not exist on {where}",
                         fix=f"create it (CREATE ROLE {user} LOGIN;) or put an existing user "
                             "in the URL or $PGUSER")
    if state == "28000" and "no encryption" in text:
        return Diagnosis(**base, problem="the server accepts only SSL connections",
                         fix="append ?sslmode=require to the URL")
    if state in ("28000", "28P01"):
        return Diagnosis(**base, problem=f"the server refused role {user!r}: "
                                         f"{one_line(pg_message)}",
                         fix="ask the database administrator for access (pg_hba.conf)")
    if state == "42501":
        return Diagnosis(**base, problem=f"role {user!r} lacks a privilege: {one_line(pg_message)}",
                         fix=f"a database owner grants it (e.g. GRANT CREATE ON SCHEMA public "
                             f"TO {user};), or use ?schema=NAME for a schema of the role's own")
    if state == "53300":
        return Diagnosis(**base, problem=f"{where} has no connection slots left",
                         fix="close idle clients or raise the server's max_connections")
    if state in ("57P03", "57P01", "57P02"):
        return Diagnosis(**base, problem=f"{where} is starting up or shutting down",
                         fix="wait a moment and try again")
    if "rejected ssl upgrade" in text:
        return Diagnosis(**base, problem=f"{where} does not offer SSL, but the URL's sslmode "
                                         "requires it",
                         fix="enable SSL on the server, or use ?sslmode=prefer (or drop it)")
    if _find(chain, ssl.SSLError) is not None:
        return Diagnosis(**base, problem=f"the SSL handshake with {where} failed "
                                         f"({one_line(str(_find(chain, ssl.SSLError)), 120)})",
                         fix="check the server's certificate and the URL's sslmode")
    if _find(chain, socket.gaierror) is not None:
        return Diagnosis(**base, problem=f"unknown host {host!r}",
                         fix="correct the host name in the URL (or $PGHOST)")
    refused = _find(chain, ConnectionRefusedError)
    if refused is not None or any(
        isinstance(e, OSError) and e.errno == errno.ECONNREFUSED for e in chain
    ) or "connect call failed" in text:
        return Diagnosis(**base, problem=f"connection refused: nothing listens at {where}",
                         fix="start PostgreSQL there, or correct the host and port in the URL")
    if _find(chain, TimeoutError) is not None:
        limit = getattr(settings, "database_connect_timeout", None)
        within = f" within {limit:g} s" if limit else ""
        return Diagnosis(**base, problem=f"no answer from {where}{within}",
                         fix="check the address and the network (firewall, VPN); for a slow "
                             "link raise database_connect_timeout")
    if any(isinstance(e, (ConnectionResetError, BrokenPipeError)) for e in chain) or (
        "connection was closed" in text or "connectiondoesnotexist" in text
    ):
        return Diagnosis(**base, problem=f"{where} closed the connection",
                         fix="check the server's log; it may be restarting or out of resources")
    if _find(chain, OSError) is not None:
        return Diagnosis(**base, problem=f"cannot reach {where}: "
                                         f"{one_line(str(_find(chain, OSError)), 120)}",
                         fix="check the host, the port and the network")
    detail = one_line(pg_message or str(exc), 160) or type(exc).__name__
    return Diagnosis(**base, problem=f"{type(exc).__name__}: {detail}",
                     fix="check the URL and that the server runs; `chrysopedia doctor` checks "
                         "every part")


def database_error(exc: BaseException, settings) -> SetupError:
    diagnosis = database_diagnosis(exc, settings)
    # A schema the app refuses (newer version, no permission) is not a crash: no traceback.
    logged = None if _find(_chain(exc), SchemaError) is not None else exc
    return diagnosis.error(logged, part="database")


def is_database_failure(exc: BaseException, *, opening: bool = True) -> bool:
    """Whether `exc` says the database did not work, as opposed to a bug in the app.

    While opening, a socket error or timeout can only be the database's; later, only the
    driver's and SQLAlchemy's own errors count (a command's file errors are its own)."""
    names = {f"{type(e).__module__}.{type(e).__name__}" for e in _chain(exc)}
    if any(n.startswith(("sqlalchemy.exc.", "asyncpg.", "sqlite3.")) for n in names):
        return True
    return opening and isinstance(exc, OSError | TimeoutError | SchemaError)


# -- Redis ----------------------------------------------------------------------------------

def redis_diagnosis(exc: BaseException, settings) -> Diagnosis | None:
    """A Redis misconfiguration, or None when Redis is merely unreachable (the local store
    serves meanwhile and Redis is tried again)."""
    url = settings.redis_url or ""
    base = dict(setting="redis_url", source=_source(settings, "redis_url"),
                server=redact_url(url))
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}"
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    text = " ".join(one_line(str(e)) for e in chain).lower()
    if "wrongpass" in text or "invalid username-password" in text or "invalid password" in text:
        return Diagnosis(**base, problem="the password (or user name) was refused (WRONGPASS)",
                         fix="correct it in the URL: redis://:PASSWORD@host:port/0 "
                             "(or redis://USER:PASSWORD@…)")
    if "noauth" in text or "authentication required" in text or (
        "AuthenticationError" in names and "hello must be called" in text
    ):
        return Diagnosis(**base, problem="the server requires a password (NOAUTH)",
                         fix="put it in the URL: redis://:PASSWORD@host:port/0")
    if "AuthenticationError" in names:
        return Diagnosis(**base, problem=f"authentication failed: {one_line(str(exc), 120)}",
                         fix="check the user and password in the URL")
    if parts.scheme == "rediss" and (
        _find(chain, ssl.SSLError) is not None or "ssl" in text or "tls" in text
    ):
        return _no_tls(base, where)
    return None


def _no_tls(base: dict, where: str) -> Diagnosis:
    return Diagnosis(**base, problem=f"no TLS handshake with {where}: the server there speaks "
                                     "plain Redis, without TLS",
                     fix="use redis:// for it, or the port where the server serves TLS")


async def redis_diagnosis_async(exc: BaseException, settings, timeout: float = 0.5) -> Diagnosis | None:
    """`redis_diagnosis`, plus the case a TLS client cannot tell from a dead server: a
    `rediss://` handshake that times out. A plain `PING` to the same port tells them apart
    (a plain Redis answers it; a dead or TLS-only one does not)."""
    import asyncio

    found = redis_diagnosis(exc, settings)
    url = settings.redis_url or ""
    parts = urlsplit(url)
    if found is not None or parts.scheme != "rediss" or not parts.hostname:
        return found
    port = parts.port or 6379
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(parts.hostname, port)
            try:
                writer.write(b"PING\r\n")
                await writer.drain()
                reply = await reader.read(64)
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    if reply[:1] in (b"+", b"-"):  # a RESP reply: +PONG, or -NOAUTH … from a plain server
        base = dict(setting="redis_url", source=_source(settings, "redis_url"),
                    server=redact_url(url))
        return _no_tls(base, f"{parts.hostname}:{port}")
    return None


def redis_replica_diagnosis(settings, primary: str) -> Diagnosis:
    url = settings.redis_url or ""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}"
    return Diagnosis(
        setting="redis_url", source=_source(settings, "redis_url"), server=redact_url(url),
        problem=f"{where} is a read-only replica (of {primary}); conversation memory needs "
                "to write",
        fix=f"point the URL at the primary ({primary})",
    )


# -- model servers --------------------------------------------------------------------------

def model_setting(settings, role: str) -> tuple[str, str]:
    """(setting, source) of the URL the `role` ("primary" | "fallback") endpoint uses."""
    name = "llm_fallback_url" if role == "fallback" and settings.llm_fallback_url else "llm_api_url"
    return name, _source(settings, name)


def html_reply_problem(settings, role: str) -> str:
    """The failure text for a model server that answered an HTML page."""
    name, source = model_setting(settings, role)
    return (f"the server answered with an HTML page, not the OpenAI-compatible API; "
            f"fix: set {name} (from {source}) to the API's base URL, often ending in /v1")
