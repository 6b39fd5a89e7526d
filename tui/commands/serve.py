"""`chrysopedia serve`: the full app in a browser, one app process per browser session.

Loopback by default. Any other address needs a token (`--token-file`, `--token` or
$CHRYSOPEDIA_SERVE_TOKEN); it is never printed. See tui/serve/server.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from tui.errors import UsageError
from tui.serve.guard import MIN_TOKEN_CHARS, TOKEN_ENV, is_loopback

TOKEN_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the app to browsers (one app process per browser session)",
        description="Serve the full app to web browsers. Each browser session runs its own "
        "app process with this command's settings, database and Redis. Binding to anything "
        "but loopback needs a token.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    token = p.add_mutually_exclusive_group()
    token.add_argument("--token", metavar="TOKEN",
                       help="the token browsers must give (visible to other local users in "
                       "the process list: prefer --token-file)")
    token.add_argument("--token-file", metavar="FILE", help="read the token from FILE")
    p.add_argument("--public-url", metavar="URL",
                   help="the address browsers use, when it differs (behind a reverse proxy)")
    p.add_argument("--max-sessions", type=int, default=8, metavar="N",
                   help="app processes at most at once (default 8)")
    p.set_defaults(handler=serve)


def read_token(args) -> str | None:
    """The token from --token, --token-file or the environment; UsageError if unusable."""
    if args.token_file:
        path = Path(args.token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise UsageError(f"token file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read token file {path}: {exc}") from None
        if not token:
            raise UsageError(f"token file {path} is empty")
        where = f"the token in {path}"
    elif args.token is not None:
        token, where = args.token.strip(), "--token"
    elif os.environ.get(TOKEN_ENV, "").strip():
        token, where = os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() or ord(c) < 0x20 for c in token):
        raise UsageError(
            f"{where} must be at least {MIN_TOKEN_CHARS} characters without spaces "
            f"(make one with: {TOKEN_HINT})"
        )
    return token


def check_options(args, token: str | None) -> None:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    if args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be at least 1, got {args.max_sessions}")
    if token is None and not is_loopback(args.host):
        raise UsageError(
            f"serving on {args.host} needs a token, or anyone who can reach the port gets the "
            f"app: pass --token-file FILE (make one with: {TOKEN_HINT} > FILE)"
        )
    if args.public_url:
        from urllib.parse import urlsplit

        parts = urlsplit(args.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--public-url must be an http(s):// URL, got {args.public_url!r}")
        if token is None and not is_loopback(parts.hostname):
            # A reverse proxy in front makes a loopback server as public as its address.
            raise UsageError(
                f"serving at {args.public_url} needs a token, or anyone who can reach that "
                f"address gets the app: pass --token-file FILE (make one with: {TOKEN_HINT} > FILE)"
            )


def check_port(host: str, port: int) -> None:
    """Fail before opening the database when the address cannot be listened on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(args, settings) -> int:
    token = read_token(args)
    check_options(args, token)
    check_port(args.host, args.port)

    from tui.commands._common import run_with_db

    async def ready(db) -> None:  # schema and bundled KB ready before any session opens
        return None

    # A database that cannot be opened raises SetupError: one line, exit 2 (tui.cli).
    run_with_db(settings, ready)
    from tui.serve.server import ChrysopediaServer

    server = ChrysopediaServer(
        settings,
        host=args.host,
        port=args.port,
        token=token,
        public_url=args.public_url,
        max_sessions=args.max_sessions,
    )
    try:
        server.serve()
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
