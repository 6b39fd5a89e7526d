"""`chrysopedia run` (the default): the full-screen app."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("run", help="start the terminal app (the default)")
    p.set_defaults(handler=run)


def run(args, settings) -> int:
    from tui.app import run_app

    return run_app(settings) or 0
