"""`chrysopedia import PATH` and `chrysopedia stats`."""

from __future__ import annotations

import sys

from tui.commands._common import print_json, run_with_db


def register(sub) -> None:
    p = sub.add_parser("import", help="import a chrysopedia.kb/1 file or folder")
    p.add_argument("path", help="a .json document or a folder of them")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(handler=cmd_import)
    s = sub.add_parser("stats", help="counts of what the database holds")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(handler=cmd_stats)


def cmd_import(args, settings) -> int:
    from tui.db.importer import import_path
    from tui.db.kb_format import KBFormatError

    try:
        report = run_with_db(settings, lambda db: import_path(db, args.path))
    except KBFormatError as exc:
        print(f"chrysopedia: {args.path}: refused, nothing was imported:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(report.as_dict())
    else:
        print(f"imported {args.path}")
        for line in report.lines():
            print(f"  {line}")
    return 0


async def gather_stats(db) -> dict[str, int]:
    from sqlalchemy import func, select

    from tui.db.models import ChatUsageLog, Conversation, Creator, Section, TechniquePage, Video

    out = {}
    async with db.session() as session:
        for key, model in (
            ("creators", Creator), ("videos", Video), ("techniques", TechniquePage),
            ("sections", Section), ("conversations", Conversation), ("usage", ChatUsageLog),
        ):
            out[key] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return out


def cmd_stats(args, settings) -> int:
    stats = run_with_db(settings, gather_stats)
    if args.json:
        print_json(stats)
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value:>8}")
    return 0
