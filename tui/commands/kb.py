"""`chrysopedia import PATH...`, `chrysopedia stats` and `chrysopedia kb list|remove|export`."""

from __future__ import annotations

import sys

from tui.commands._common import print_json, run_with_db

IMPORT_HELP = (
    "import your own material: yt-dlp subtitle downloads (NAME.info.json + NAME.LANG.vtt), "
    ".srt/.vtt subtitles, Markdown notes, PDF manuals, chrysopedia.kb/1 JSON; files and "
    "folders, mixed"
)


def register(sub) -> None:
    p = sub.add_parser("import", help=IMPORT_HELP, description=IMPORT_HELP)
    p.add_argument("path", nargs="*", help="files and folders (folders are searched recursively)")
    p.add_argument("--creator", metavar="NAME", help="creator of subtitles, notes and PDFs that do not say")
    p.add_argument("--strict", action="store_true", help="import nothing if any file is refused")
    p.add_argument("--prune", action="store_true",
                   help="remove pages whose files are gone (only under the paths given)")
    p.add_argument("--demo", action="store_true",
                   help="load the bundled demo pages into this database (and keep them)")
    p.add_argument("--json", action="store_true", help="print one JSON report")
    p.set_defaults(handler=cmd_import)
    s = sub.add_parser("stats", help="counts of what the database holds")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(handler=cmd_stats)

    kb = sub.add_parser("kb", help="list, remove or export what the knowledge base holds")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    ls = kb_sub.add_parser("list", help="creators, pages and files, and where each came from")
    ls.add_argument("--json", action="store_true", help="one JSON object")
    ls.set_defaults(handler=cmd_kb_list)
    rm = kb_sub.add_parser("remove", help="remove a creator, a page, an imported file or the demo pages")
    what = rm.add_mutually_exclusive_group(required=True)
    what.add_argument("--creator", metavar="SLUG", help="a creator with all their pages and videos")
    what.add_argument("--page", metavar="SLUG", help="one technique page")
    what.add_argument("--file", metavar="PATH", help="the page an imported file became")
    what.add_argument("--demo", action="store_true", help="the bundled demo pages, for good")
    rm.add_argument("--json", action="store_true", help="one JSON object")
    rm.set_defaults(handler=cmd_kb_remove)
    ex = kb_sub.add_parser("export", help="write the knowledge base as chrysopedia.kb/1 JSON")
    ex.add_argument("path", help="the .json file to write")
    ex.set_defaults(handler=cmd_kb_export)


def _print_kb_import(path, report, as_json: bool) -> None:
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if as_json:
        print_json(report.as_dict())
    else:
        print(f"imported {path}")
        for line in report.lines():
            print(f"  {line}")


def _legacy_import(args, settings) -> int:
    """chrysopedia.kb/1 documents only: imported exactly as the format has always been."""
    from tui.db.importer import ensure_demo_kb, import_path
    from tui.db.kb_format import KBFormatError

    async def body(db):
        if args.demo:
            await ensure_demo_kb(db, settings, force=True)
        reports = []
        for path in args.path:
            try:
                reports.append((path, await import_path(db, path), None))
            except KBFormatError as exc:
                reports.append((path, None, exc))
                break
        if not args.demo and any(r is not None and r.changed for _, r, _ in reports):
            from tui.db.importer import demo_loaded, remove_demo_kb

            if await demo_loaded(db):
                await remove_demo_kb(db)
        return reports

    status = 0
    for path, report, exc in run_with_db(settings, body):
        if exc is not None:
            print(f"chrysopedia: {path}: refused, nothing was imported:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            status = 1
        else:
            _print_kb_import(path, report, args.json)
    return status


def cmd_import(args, settings) -> int:
    from tui.services.kb_import import legacy_kb_paths

    if not args.path and not args.demo:
        print("chrysopedia: import: give files or folders to import (or --demo)", file=sys.stderr)
        return 2
    if args.path and legacy_kb_paths(args.path):
        return _legacy_import(args, settings)
    return _material_import(args, settings)


def _material_import(args, settings) -> int:
    import asyncio
    import signal

    from tui.db.importer import ensure_demo_kb
    from tui.services.kb_import import import_paths

    tty = sys.stdout.isatty() and not args.json
    stop = {"requested": False}

    async def body(db):
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, lambda: stop.__setitem__("requested", True))
        except (NotImplementedError, RuntimeError):  # not the main thread / no signals
            pass
        try:
            if args.demo:
                await ensure_demo_kb(db, settings, force=True)
            if not args.path:
                return None
            if not tty:
                return await import_paths(
                    db, args.path, creator=args.creator, strict=args.strict, prune=args.prune,
                    keep_demo=args.demo, should_stop=lambda: stop["requested"],
                )
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            with Progress(
                TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                TextColumn("files · {task.fields[sections]} sections · {task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task("import", total=None, sections=0, rate="")

                def progress(done: int, total: int, sections: int) -> None:
                    speed = bar.tasks[0].speed
                    rate = f"{speed:.1f} files/s" if speed else ""
                    bar.update(task, completed=done, total=total, sections=sections, rate=rate)

                return await import_paths(
                    db, args.path, creator=args.creator, strict=args.strict, prune=args.prune,
                    keep_demo=args.demo, on_progress=progress, should_stop=lambda: stop["requested"],
                )
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):
                pass

    # Loading the demo before an import would only be removed again after it.
    run = run_with_db(settings, body, load_bundled=False)
    if run is None:
        if args.json:
            print_json({"demo": True})
        else:
            print("the demo pages are loaded")
        return 0
    if args.json:
        print_json(run.as_dict())
    else:
        for warning in run.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for refused in run.refused:
            print(f"{_shown(refused['path'])}: {_plain(refused['reason'])}", file=sys.stderr)
        if run.strict_refused:
            print("chrysopedia: import: --strict: nothing was imported", file=sys.stderr)
        else:
            print(run.summary())
            if run.demo_removed:
                print("the demo pages were removed: your own material is what the answers cite now "
                      "(`chrysopedia import --demo` brings them back)")
    if run.interrupted:
        done = len(run.added) + len(run.updated) + len(run.unchanged) + len(run.documents)
        print(f"interrupted: stopped between files; {done} of {run.files_total} files were "
              "imported and stay, the rest were not started", file=sys.stderr)
        return 130
    return 0 if run.ok else 1


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
    from tui.db.importer import demo_loaded

    async def body(db):
        stats: dict = await gather_stats(db)
        stats["demo"] = await demo_loaded(db)
        return stats

    stats = run_with_db(settings, body)
    if args.json:
        print_json(stats)
        return 0
    demo = stats.pop("demo")
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        print(f"{key:<{width}}  {value:>8}")
    if demo:
        print("the bundled demo pages are loaded (`chrysopedia import PATH` brings your own; "
              "`chrysopedia kb remove --demo` removes them)")
    return 0


def _shown(path: str) -> str:
    """A path under the current folder relative to it (as the user typed it), else as it is."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:
        return _plain(path)
    return _plain(path if rel.startswith("..") else rel)


def _plain(value) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in str(value or "")).strip()


def cmd_kb_list(args, settings) -> int:
    from tui.db.materials_store import list_kb

    data = run_with_db(settings, list_kb)
    if args.json:
        print_json(data)
        return 0
    by_creator: dict = {}
    for page in data["pages"]:
        by_creator.setdefault(page["creator"], []).append(page)
    files_by_page: dict = {}
    for f in data["files"]:
        files_by_page.setdefault(f["page"], []).append(f["path"])
    for creator in data["creators"]:
        pages = by_creator.get(creator["slug"], [])
        print(f"{_plain(creator['name'])} ({creator['slug']}): {len(pages)} page{'s' if len(pages) != 1 else ''}")
        for page in pages:
            print(f"  {page['slug']}  {_plain(page['title'])}  [{page['origin']}, {page['sections']} sections]")
            for path in files_by_page.get(page["slug"], []):
                print(f"    {_plain(path)}")
    print(f"{len(data['creators'])} creators, {len(data['pages'])} pages, {len(data['files'])} files")
    return 0


def cmd_kb_remove(args, settings) -> int:
    from tui.db import materials_store as store
    from tui.db.importer import remove_demo_kb

    async def body(db):
        if args.demo:
            return store.Removed(await remove_demo_kb(db), [], [])
        if args.creator:
            return await store.remove_creator(db, args.creator)
        if args.page:
            removed = await store.remove_page(db, args.page)
            return removed if removed.pages else None
        return await store.remove_file(db, args.file)

    removed = run_with_db(settings, body, load_bundled=False)
    if removed is None:
        what = (f"no creator {args.creator!r}" if args.creator else f"no page {args.page!r}" if args.page
                else f"no imported file {args.file!r} is recorded")
        print(f"chrysopedia: kb remove: {what}", file=sys.stderr)
        return 1
    if args.json:
        print_json(removed.as_dict())
        return 0
    noun = "page" if len(removed.pages) == 1 else "pages"
    line = f"removed {len(removed.pages)} {noun}"
    if removed.creators:
        line += f", creator{'s' if len(removed.creators) != 1 else ''} {', '.join(removed.creators)}"
    if removed.files:
        line += f", {len(removed.files)} file record{'s' if len(removed.files) != 1 else ''}"
    if args.demo:
        line += " (the demo pages will not come back; `chrysopedia import --demo` asks for them)"
    print(line)
    return 0


def cmd_kb_export(args, settings) -> int:
    from tui.db.kb_export import export_kb

    try:
        counts = run_with_db(settings, lambda db: export_kb(db, args.path), load_bundled=False)
    except OSError as exc:
        print(f"chrysopedia: kb export: {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.path}: {counts['creators']} creators, {counts['videos']} videos, "
          f"{counts['techniques']} pages, {counts['sections']} sections")
    return 0
