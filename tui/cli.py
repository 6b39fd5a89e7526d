"""Entry point `chrysopedia`: global flags, then one subcommand (default: run the app).

Each subcommand lives in its own module under `tui/commands/` and exposes
`register(subparsers)`; modules keep heavy imports (sqlalchemy, openai, redis,
textual) inside their handlers so `--help` and start-up stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from tui import __version__
from tui.errors import SchemaError, SetupError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chrysopedia",
        description="Ask about synthesis, sound design, mixing, sampling and audio processing; "
        "answers cite a knowledge base of technique pages.",
    )
    parser.add_argument("--version", action="version", version=f"chrysopedia {__version__}")
    parser.add_argument("--db", metavar="URL", help="database URL (sqlite:///FILE or postgresql://...)")
    parser.add_argument("--redis", metavar="URL", help="Redis URL for conversation memory")
    parser.add_argument("--config", metavar="FILE", help="config.toml to read instead of the default")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import tui.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"tui.commands.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tui.config import ConfigError, load_settings

    try:
        settings = load_settings(config_file=args.config, flags={"db": args.db, "redis": args.redis})
    except ConfigError as exc:
        print(f"chrysopedia: {exc}", file=sys.stderr)
        return 2
    handler = getattr(args, "handler", None)
    if handler is None:
        from tui.commands.run import run

        handler = run
    try:
        return int(handler(args, settings) or 0)
    except (UsageError, SchemaError, SetupError) as exc:
        print(f"chrysopedia: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"chrysopedia: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`chrysopedia ask ... | head`): stop quietly.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - a bug still ends in one line, its trace in the log
        from tui.services.diagnose import log_failure, one_line

        path = log_failure(exc, f"chrysopedia {getattr(args, 'command', None) or 'run'}")
        where = f" (details in {path})" if path else ""
        print(f"chrysopedia: unexpected error: {type(exc).__name__}: "
              f"{one_line(str(exc))}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
