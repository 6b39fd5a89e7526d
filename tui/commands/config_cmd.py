"""`chrysopedia config`: every setting, its value and where it came from (secrets masked)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("config", help="show the settings in force and where each comes from")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_config)


def cmd_config(args, settings) -> int:
    rows = settings.public_items()
    if args.json:
        from tui.commands._common import print_json

        print_json({name: {"value": value, "source": source} for name, value, source in rows})
        return 0
    width = max(len(r[0]) for r in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value}  [{source}]")
    return 0
