"""`chrysopedia ask QUESTION`: one streamed, cited answer on stdout.

Plain: the answer's tokens as they arrive, then the numbered sources and a
line naming the conversation (pass it to `--conversation` to go on).
`--json`: one `{"event": NAME, "data": PAYLOAD}` object per line per event.
`--sse`: the SSE text (`event: NAME` / `data: ...` lines), as an HTTP endpoint would send.
`--voice`: no answer; what the creator voice adds to the prompt at `--weight` (the
app's voice preview text).
Exit status 0 when the answer is done, 1 on an error event, 2 on bad arguments or a
setting that does not work (a server that cannot be used as configured).
The model comes from the configuration (`CHRYSOPEDIA_LLM_API_URL` or
`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `CHRYSOPEDIA_LLM_MODEL`, …); with none, the
offline digest answers from the knowledge base.
"""

from __future__ import annotations

import json
import sys

from tui.commands._common import run_with_db


def register(sub) -> None:
    p = sub.add_parser("ask", help="ask one question; stream the cited answer to stdout")
    p.add_argument("question", nargs="?", default="", help="the question (empty with --regenerate)")
    p.add_argument("--creator", metavar="SLUG", help="answer from (and in the voice of) this creator")
    p.add_argument("--weight", metavar="W", default="0",
                   help="creator-voice weight from 0 (encyclopedic) to 1 (full voice); default 0")
    p.add_argument("--conversation", metavar="ID", help="continue this conversation (a UUID)")
    p.add_argument("--regenerate", action="store_true",
                   help="answer the conversation's last question again (needs --conversation)")
    p.add_argument("--voice", action="store_true",
                   help="print what --creator's voice adds to the prompt at --weight, and exit")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per event, one per line")
    fmt.add_argument("--sse", action="store_true", help="print the server-sent-events text")
    p.set_defaults(handler=cmd_ask)


def _clock(seconds) -> str:
    if not isinstance(seconds, int | float):
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def format_source(source: dict) -> str:
    """`[N] Title — Section · Creator · Video 1:35–2:40 <URL at 1:35>` on one line."""
    line = f"[{source.get('number')}] {source.get('title') or 'Untitled'}"
    if source.get("section_heading"):
        line += f" — {source['section_heading']}"
    if source.get("creator_name"):
        line += f" · {source['creator_name']}"
    video = source.get("video_title") or source.get("video_filename") or ""
    start, end = _clock(source.get("start_time")), _clock(source.get("end_time"))
    if video or start:
        line += f" · {video}{' ' if video and start else ''}{start}{'–' + end if start and end else ''}"
    loc = source.get("locator")
    if isinstance(loc, dict) and loc.get("kind") in ("page", "heading"):
        from tui.services.locators import locator_label

        where = locator_label(source)
        if loc.get("kind") == "page" and loc.get("path"):
            where = f"{loc['path']} {where}"
        line += f" · {where}"
    if source.get("video_url"):
        from tui.services.player import url_at_time
        from tui.services.sources import start_seconds

        # the link lands on the cited second, as "open" in the app does
        line += f" <{url_at_time(source['video_url'], start_seconds(source.get('start_time')))}>"
    return " ".join(line.split())  # one line, whatever the KB holds


def cmd_ask(args, settings) -> int:
    from tui.cli import UsageError
    from tui.services.history import validate_conversation_id
    from tui.services.personality import validate_weight

    try:
        weight = validate_weight(args.weight)
    except ValueError as exc:
        raise UsageError(f"--weight: {exc}") from None
    if args.conversation is not None:
        try:
            validate_conversation_id(args.conversation)
        except ValueError as exc:
            raise UsageError(f"--conversation: {exc}") from None
    if args.voice:
        return run_with_db(settings, lambda db: _voice(db, settings, args.creator, weight))
    if args.regenerate and not args.conversation:
        raise UsageError("--regenerate needs --conversation ID")
    if not args.regenerate and not args.question.strip():
        raise UsageError("ask: the question is empty")
    mode = "json" if args.json else "sse" if args.sse else "text"
    import logging

    # Failures reach the user as one line (the error event); without a configured
    # handler, logging's last resort would print warnings and tracebacks on stderr.
    logging.getLogger("chrysopedia").addHandler(logging.NullHandler())
    return run_with_db(settings, lambda db: _ask(db, settings, args, weight, mode))


async def _voice(db, settings, creator: str | None, weight: float) -> int:
    from tui.services.chat import ChatService

    service = ChatService(settings, db, None)
    try:
        if creator and await service.creator_profile(creator) is None:
            print(f"chrysopedia: unknown creator {creator!r}", file=sys.stderr)
            return 1
        print(await service.voice_preview(creator, weight))
    finally:
        await service.aclose()
    return 0


async def _ask(db, settings, args, weight: float, mode: str) -> int:
    from contextlib import aclosing

    from tui.services.chat import ChatService, Done, Error, Reset, Sources, Token
    from tui.services.history import open_history

    out = sys.stdout
    history = await open_history(settings, db)
    if history.state.problem:
        # A misconfigured Redis (password, TLS, replica) would split the team's memory:
        # say so instead of answering from the local store.
        from tui.errors import SetupError

        await history.close()
        raise SetupError(history.state.problem, part="redis")
    service = ChatService(settings, db, history)
    status = 1
    sources: list[dict] = []
    try:
        stream = service.stream_response(
            args.question, creator=args.creator, conversation_id=args.conversation,
            personality_weight=weight, regenerate=args.regenerate,
        )
        async with aclosing(stream) as events:
            async for event in events:
                if isinstance(event, Done):
                    status = 0
                elif isinstance(event, Error) and event.kind == "setup":
                    status = 2  # a wrong setting, as for any other bad configuration
                if mode == "json":
                    out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
                elif mode == "sse":
                    out.write(event.to_sse())
                elif isinstance(event, Sources):
                    sources = event.sources
                elif isinstance(event, Token):
                    out.write(event.text)
                elif isinstance(event, Reset):
                    out.write(f"\n\n[{event.reason}; the answer restarts with {event.model}]\n\n")
                elif isinstance(event, Done):
                    _write_footer(out, sources, event)
                elif isinstance(event, Error):
                    out.write("\n")
                    out.flush()
                    print(f"chrysopedia: {event.message}", file=sys.stderr)
                out.flush()
    finally:
        await service.aclose()
        await history.close()
    return status


def _write_footer(out, sources: list[dict], done) -> None:
    out.write("\n\n")
    if sources:
        out.write("Sources\n")
        for source in sources:
            out.write(f"  {format_source(source)}\n")
    else:
        out.write("(no sources found)\n")
    notes = [f"conversation {done.conversation_id}", f"model {done.model}"]
    if done.fallback_used:
        notes.append("fallback")
    if done.cascade_tier:
        notes.append(f"search {done.cascade_tier}")
    if done.invalid_citations:
        notes.append("cites missing sources " + ", ".join(f"[{n}]" for n in done.invalid_citations))
    if done.truncated:
        notes.append("answer cut at the size limit")
    if done.claims and done.claims.get("total"):
        from tui.services.claims import summary_line

        out.write(summary_line(done.claims) + "\n")
    out.write(" · ".join(notes) + "\n")

