"""`chrysopedia usage [--json] [--days N] [--by-user]`: tokens, requests, latency, fallback
rate and tiers; per user (the `user_id` setting of whoever asked) with `--by-user`."""

from __future__ import annotations

from tui.commands._common import print_json, run_with_db


def register(sub) -> None:
    p = sub.add_parser("usage", help="token usage, latency and fallback rate of recent requests")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--days", type=int, default=30, metavar="N",
                   help="the last N days, today included (default 30)")
    p.add_argument("--by-user", action="store_true",
                   help="also one line per user: requests, tokens, median latency")
    p.set_defaults(handler=cmd_usage)


def _plain(value) -> str:
    """A user id on one line without control characters (it is data from the database)."""
    return "".join(ch if ch.isprintable() else " " for ch in str(value))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def format_report(report: dict) -> list[str]:
    t = report["totals"]
    lines = [
        f"usage, last {report['days']} day{'s' if report['days'] != 1 else ''} "
        f"(since {report['since'][:10]}, UTC)",
        f"  requests   {t['requests']:>10,}   answered {t['answered']:,} · failed {t['failed']:,}"
        f" · cancelled {t['cancelled']:,}"
        + (f" · interrupted {t['incomplete']:,}" if t.get("incomplete") else ""),
        f"  tokens     {t['total_tokens']:>10,}   prompt {t['prompt_tokens']:,} · completion "
        f"{t['completion_tokens']:,}" + (f" · {t['estimated']:,} requests estimated (chars/4)"
                                         if t["estimated"] else ""),
    ]
    lat = report["latency_ms"]
    lines.append(f"  latency    mean {_ms(lat['mean'])} · p50 {_ms(lat['p50'])} · p95 {_ms(lat['p95'])}"
                 " (answered)")
    rate = report["fallback_rate"]
    lines.append(f"  fallback   {'-' if rate is None else f'{rate:.1%}'}")
    if report["tiers"]:
        lines.append("  tiers      " + " · ".join(f"{k} {v:,}" for k, v in report["tiers"].items()))
    purposes = report.get("purposes") or {}
    if set(purposes) - {"answer"}:
        # Answering apart from distilling, once there is anything but answers.
        lines.append("  purposes   " + " · ".join(
            f"{k} {v['requests']:,} ({v['total_tokens']:,} tokens)" for k, v in purposes.items()))
    if report["models"]:
        lines.append("  models     " + " · ".join(f"{k} {v:,}" for k, v in report["models"].items()))
    claims = report.get("claims") or {}
    if claims.get("total"):
        lines.append(f"  claims     {claims['total']:,} checked · {claims['supported_share']:.0%} "
                     "supported by their sources")
    # Every day of a short window; only the active days of a long one.
    if report.get("users") is not None:
        lines.append("")
        width = max([len("user")] + [len(_plain(u["user_id"])) for u in report["users"]])
        lines.append(f"  {'user':<{width}}  {'requests':>8}  {'answered':>8}  {'tokens':>10}  "
                     f"{'p50':>9}")
        for u in report["users"]:
            lines.append(f"  {_plain(u['user_id']):<{width}}  {u['requests']:>8,}  "
                         f"{u['answered']:>8,}  {u['total_tokens']:>10,}  "
                         f"{_ms(u['latency_p50_ms']):>9}")
    days = [d for d in report["per_day"] if report["days"] <= 31 or d["requests"] or d.get("claims")]
    if days:
        lines.append("")
        lines.append(f"  {'date':<10}  {'requests':>8}  {'tokens':>10}  {'supported':>9}")
        for day in days:
            share = day.get("supported_share")
            lines.append(f"  {day['date']:<10}  {day['requests']:>8,}  {day['total_tokens']:>10,}"
                         f"  {'-' if share is None else f'{share:.0%}':>9}")
    return lines


def cmd_usage(args, settings) -> int:
    from tui.cli import UsageError
    from tui.services.usage import usage_report

    if args.days < 1 or args.days > 3650:
        raise UsageError(f"--days must be between 1 and 3650, got {args.days}")
    report = run_with_db(settings, lambda db: usage_report(db, args.days, by_user=args.by_user),
                         load_bundled=False)
    if args.json:
        print_json(report)
    else:
        print("\n".join(format_report(report)))
    return 0
