"""`chrysopedia import PATH...`, `chrysopedia stats` and `chrysopedia kb list|remove|export`."""

from __future__ import annotations

import sys

from tui.commands._common import names, print_json, run_with_db

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
                   help="load the bundled demo pages into this database, and keep them beside "
                        "your own material (until `kb remove --demo`)")
    p.add_argument("--distill", action="store_true",
                   help="then distill the transcripts added or updated (`chrysopedia distill`; "
                        "without a model: their creators' measured profiles)")
    p.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="with --distill: model requests at a time (default 4)")
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
            from tui.db.importer import make_room_for_own_material

            await make_room_for_own_material(db)
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
    if not 1 <= args.concurrency <= 32:
        print(f"chrysopedia: import: --concurrency must be from 1 to 32, got {args.concurrency}",
              file=sys.stderr)
        return 2
    if args.distill and args.path and legacy_kb_paths(args.path):
        print("chrysopedia: import: --distill distills imported transcripts; chrysopedia.kb/1 "
              "documents have none", file=sys.stderr)
        return 2
    args.nice = lower_priority(settings.import_nice)
    if args.path and legacy_kb_paths(args.path):
        return _legacy_import(args, settings)
    return _material_import(args, settings)


def lower_priority(step: int) -> int:
    """Raise this process's niceness by `step` (the reader process it starts inherits it);
    returns the niceness now. Only ever lowered: a process cannot raise its own priority."""
    import os

    if step > 0 and hasattr(os, "nice"):
        try:
            return os.nice(step)
        except OSError:  # not permitted here: the import runs at the priority it has
            pass
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


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
                run = await import_paths(
                    db, args.path, creator=args.creator, strict=args.strict, prune=args.prune,
                    keep_demo=args.demo, profiles=not args.distill,
                    should_stop=lambda: stop["requested"],
                )
                await _distill_after(db, settings, args, run, tty=False)
                return run
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

                run = await import_paths(
                    db, args.path, creator=args.creator, strict=args.strict, prune=args.prune,
                    keep_demo=args.demo, profiles=not args.distill, on_progress=progress,
                    should_stop=lambda: stop["requested"],
                )
            await _distill_after(db, settings, args, run, tty=True)
            return run
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
        print_json({**run.as_dict(), "nice": getattr(args, "nice", None)})
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
    if run.distill is not None and not args.json:
        from tui.commands.distill import _print

        _print(run.distill, after_import=True)
    elif run.measured_profiles and not args.json:
        print(names("measured profiles", run.measured_profiles))
    if run.distill is not None and run.distill.interrupted:
        return 130
    if run.interrupted:
        done = len(run.added) + len(run.updated) + len(run.unchanged) + len(run.documents)
        print(f"interrupted: stopped between files; {done} of {run.files_total} files were "
              "imported and stay, the rest were not started", file=sys.stderr)
        return 130
    return 0 if run.ok and (run.distill is None or run.distill.ok) else 1


async def _distill_after(db, settings, args, run, *, tty: bool) -> None:
    """`import --distill`: the transcripts this run added or updated, distilled as
    `chrysopedia distill` does (the report goes in `run.distill`). Ctrl+C stops it
    between pages: the pages finished stay."""
    import asyncio
    import signal

    from tui.services.distill_job import DistillReport, run_distill

    if not args.distill or run.interrupted or run.strict_refused:
        return
    pages = [entry["page"] for entry in run.added + run.updated]
    report = run.distill = DistillReport()
    if not pages:
        return
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run_distill(db, settings, pages=pages, concurrency=args.concurrency,
                                             report=report, on_progress=None))
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError):
        pass
    try:
        if not tty:
            await task
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn("distilling"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("pages · {task.fields[tokens]} tokens"),
                      console=Console(stderr=True), transient=True) as bar:
            task_id = bar.add_task("distill", total=len(pages), tokens="0")
            while not task.done():
                bar.update(task_id, completed=len(report.distilled) + len(report.rejected)
                           + len(report.failed), tokens=f"{report.tokens:,}")
                await asyncio.wait([task], timeout=0.2)
            await task
    except asyncio.CancelledError:
        report.interrupted = True
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass


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
        # `techniques` counts both: a distilled page and the transcript page it replaced in
        # search (which stays, reachable from it).
        out["distilled"] = int(await session.scalar(
            select(func.count()).select_from(TechniquePage).where(TechniquePage.origin == "distilled")) or 0)
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
        note = ("  (of the techniques: pages a model wrote from transcripts, which they replace "
                "in search)" if key == "distilled" and value else "")
        print(f"{key:<{width}}  {value:>8}{note}")
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
            where = ""
            if page.get("distilled_from"):
                where = f", from {page['distilled_from']}"
            elif page.get("distilled_as"):
                where = f", replaced in search by {page['distilled_as']}"
            print(f"  {page['slug']}  {_plain(page['title'])}  "
                  f"[{page['origin']}{where}, {page['sections']} sections]")
            for path in files_by_page.get(page["slug"], []):
                print(f"    {_plain(path)}")
    distilled = f" ({data['distilled']} distilled)" if data.get("distilled") else ""
    print(f"{len(data['creators'])} creators, {len(data['pages'])} pages{distilled}, "
          f"{len(data['files'])} files")
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
