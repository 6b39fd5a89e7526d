"""`chrysopedia distill`: imported transcripts become technique pages and creator profiles."""

from __future__ import annotations

import sys

from tui.commands._common import names, print_json, run_with_db

HELP = ("turn imported transcripts into technique pages and creator profiles with the "
        "configured model (without one: measured creator profiles only)")


def register(sub) -> None:
    p = sub.add_parser("distill", help=HELP, description=HELP)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--creator", metavar="SLUG", help="one creator's transcripts")
    which.add_argument("--page", metavar="SLUG", help="one transcript page (or its distilled page)")
    which.add_argument("--all", action="store_true", help="every imported transcript")
    p.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="model requests at a time (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON report")
    p.set_defaults(handler=cmd_distill)


def cmd_distill(args, settings) -> int:
    import asyncio
    import signal

    from tui.services.distill_job import DistillReport, run_distill

    if not (args.creator or args.page or args.all):
        print("chrysopedia: distill: say what to distill: --creator SLUG, --page SLUG or --all",
              file=sys.stderr)
        return 2
    if not 1 <= args.concurrency <= 32:
        print(f"chrysopedia: distill: --concurrency must be from 1 to 32, got {args.concurrency}",
              file=sys.stderr)
        return 2
    tty = sys.stderr.isatty() and not args.json
    report = DistillReport()

    async def body(db):
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
        try:
            if not tty:
                await run_distill(db, settings, creator=args.creator, page=args.page,
                                  concurrency=args.concurrency, report=report)
                return None
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            with Progress(
                TextColumn("distilling"), BarColumn(), MofNCompleteColumn(),
                TextColumn("pages · {task.fields[tokens]} tokens{task.fields[left]}"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            ) as bar:
                task_id = bar.add_task("distill", total=None, tokens="0", left="")

                def progress(p) -> None:
                    left = p.tokens_left_estimate
                    bar.update(task_id, completed=p.done, total=p.total, tokens=f"{p.tokens:,}",
                               left=f" · ~{left:,} to go" if left else "")

                await run_distill(db, settings, creator=args.creator, page=args.page,
                                  concurrency=args.concurrency, on_progress=progress, report=report)
            return None
        except LookupError as exc:
            return str(exc.args[0])
        except asyncio.CancelledError:
            report.interrupted = True
            return None
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):
                pass

    problem = run_with_db(settings, body, load_bundled=False)
    if problem:
        print(f"chrysopedia: distill: {problem}", file=sys.stderr)
        return 2
    if args.json:
        print_json(report.as_dict())
    else:
        _print(report)
    if report.interrupted:
        return 130
    return 0 if report.ok else 1


def _print(report, *, after_import: bool = False) -> None:
    from tui.text import clean

    if report.pages_total == 0 and not report.interrupted:
        print("nothing to distill: this import added or updated no transcripts" if after_import
              else "nothing to distill: no imported transcripts (`chrysopedia import` a folder "
                   "of yt-dlp downloads first)")
        return
    if report.model is None:
        print("no model is configured: creator profiles were measured from the transcripts; "
              "the pages stay transcripts")
    else:
        print(f"{len(report.distilled)} pages distilled, {len(report.unchanged)} already were, "
              f"{len(report.rejected)} kept as transcripts, {len(report.failed)} failed "
              f"({report.tokens:,} tokens with {report.model}, {report.cached} from the cache)")
    for slug, checks in report.checks.items():
        said = sum(c["supported"] for c in checks)
        total = sum(c["claims"] for c in checks)
        kept = sum(1 for c in checks if c["ok"])
        print(f"{slug}: {kept} of {len(checks)} sections kept by the claim check, "
              f"{said} of {total} sentences said in their ranges")
    for item in report.rejected + report.failed:
        print(f"{item['page']}: kept as a transcript:", file=sys.stderr)
        for reason in item["reasons"]:
            print(f"  {clean(reason)}", file=sys.stderr)
    if report.measured_profiles:
        print(names("measured profiles", report.measured_profiles))
    if report.distilled_profiles:
        print(names("profiles written by the model", report.distilled_profiles))
    for problem in report.profile_problems:
        print(f"profile: {clean(problem)}", file=sys.stderr)
    if report.interrupted:
        print("interrupted: the pages finished so far are stored; run it again to go on",
              file=sys.stderr)
