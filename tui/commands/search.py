"""`chrysopedia search QUERY [--creator SLUG] [--limit N] [--json]`."""

from __future__ import annotations

import sys

from tui.commands._common import print_json, run_with_db


def register(sub) -> None:
    p = sub.add_parser("search", help="search the knowledge base's sections")
    p.add_argument("query", nargs="+", help="what to look for (several words are one query)")
    p.add_argument("--creator", metavar="SLUG", help="prefer this creator's sections (slug or name)")
    p.add_argument("--limit", type=int, default=10, metavar="N", help="at most N results (1-100)")
    p.add_argument("--json", action="store_true", help='print {"cascade_tier": ..., "items": [...]}')
    p.set_defaults(handler=cmd_search)


def _plain(value) -> str:
    """KB text on one line, without control characters (it is data, not terminal codes)."""
    return "".join(ch if ch.isprintable() else " " for ch in str(value or "")).strip()


def cmd_search(args, settings) -> int:
    query = " ".join(args.query)
    if not query.strip():
        print("chrysopedia: search: the query is empty; give some words to search for", file=sys.stderr)
        return 2
    if not 1 <= args.limit <= 100:
        print("chrysopedia: search: --limit must be between 1 and 100", file=sys.stderr)
        return 2
    from tui.services.search import SearchService

    service = SearchService(settings)
    result = run_with_db(
        settings,
        lambda db: service.search(query, limit=args.limit, db=db, creator=args.creator),
    )
    if args.json:
        out = {"cascade_tier": result["cascade_tier"], "items": result["items"]}
        for key in ("creator_detected", "nearest"):
            if result.get(key):
                out[key] = result[key]
        print_json(out)
        return 0
    items = result["items"]
    if not items:
        print(f"no sections found (tier: {result['cascade_tier']})")
        if result.get("nearest"):
            print("nearest topics: " + "; ".join(_plain(t) for t in result["nearest"]))
        return 0
    noun = "section" if len(items) == 1 else "sections"
    print(f"{len(items)} {noun} (tier: {result['cascade_tier']})")
    for n, item in enumerate(items, start=1):
        line = (
            f"{n:>2}. {_plain(item['title'])} — {_plain(item['creator_name'])} — "
            f"{_plain(item['section_heading'])}"
        )
        where = _plain(item.get("locator_label"))
        if where:  # a video's time range, a document's pages, a note's heading
            line += f" — {where}"
        print(line)
    return 0
