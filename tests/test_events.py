"""The event protocol: names, payloads and SSE framing, checked with independent SSE parsers."""

from __future__ import annotations

import json

import pytest
from openai._streaming import SSEDecoder

from tui.services.events import Done, Error, Reset, Sources, Token


def parse_sse(text: str) -> list[tuple[str, str]]:
    """The WHATWG event-stream interpretation algorithm, written from the standard."""
    events: list[tuple[str, str]] = []
    event_type, data = "", ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line terminator
    for line in lines:
        if line == "":
            if data:
                events.append((event_type or "message", data[:-1] if data.endswith("\n") else data))
            event_type, data = "", ""
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
    return events


def parse_with_openai(text: str) -> list[tuple[str, str]]:
    """openai's own SSE decoder (from httpx-sse): a second, unrelated implementation."""
    decoder = SSEDecoder()
    out = []
    for sse in decoder.iter_bytes(iter([text.encode()])):
        out.append((sse.event or "message", sse.data))
    return out


TOKENS = [
    "plain",
    "\n\n- ",
    "line one\nline two",
    "trailing newline\n",
    "\nleading newline",
    " leading space",
    "  two spaces",
    "",
    "crlf\r\nand cr\rend",
    "data: looks like a field",
    ": looks like a comment",
    "unicode — ✓ [1]",
    "\n",
    "\n\n\n",
]


@pytest.mark.parametrize("text", TOKENS)
@pytest.mark.parametrize("parser", [parse_sse, parse_with_openai])
def test_token_round_trips_through_a_standard_parser(text, parser):
    events = parser(Token(text).to_sse())
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert events == [("token", expected)]


def test_token_sse_is_the_seed_framing_for_single_line_text():
    assert Token("hello").to_sse() == "event: token\ndata: hello\n\n"


def test_newline_token_is_one_data_line_per_line():
    assert Token("\n\n- ").to_sse() == "event: token\ndata: \ndata: \ndata: - \n\n"


@pytest.mark.parametrize("parser", [parse_sse, parse_with_openai])
def test_a_whole_stream_reassembles(parser):
    sources = [{"number": 1, "title": "Parallel\nCompression", "summary": "a\n\nb"}]
    stream = [
        Sources(sources),
        Token("Intro"),
        Token("\n\n- "),
        Token("item [1]"),
        Reset(reason="primary failed:\nboom", model="fb"),
        Token("again"),
        Done(
            cascade_tier="global", conversation_id="c", fallback_used=True, model="fb",
            usage={"prompt_tokens": 1}, latency_ms=12.345, cited=[1], invalid_citations=[7],
        ),
    ]
    text = "".join(e.to_sse() for e in stream)
    parsed = parser(text)
    assert [name for name, _ in parsed] == ["sources", "token", "token", "token", "reset", "token", "done"]
    assert json.loads(parsed[0][1]) == sources
    assert "".join(d for n, d in parsed if n == "token") == "Intro\n\n- item [1]again"
    assert json.loads(parsed[4][1]) == {"reason": "primary failed:\nboom", "model": "fb"}
    done = json.loads(parsed[-1][1])
    assert done["cited"] == [1] and done["invalid_citations"] == [7]
    assert done["fallback_used"] is True and done["latency_ms"] == 12.3


def test_names_and_payloads():
    assert Sources([]).event == "sources" and Sources([]).payload() == []
    assert Token("x").event == "token" and Token("x").payload() == "x"
    assert Reset("r", "m").payload() == {"reason": "r", "model": "m"}
    assert Error("bad").event == "error" and Error("bad").payload() == {"message": "bad"}
    done = Done("global", "cid", False, "m", {}, 1.0)
    payload = done.payload()
    for key in ("cascade_tier", "conversation_id", "fallback_used", "model", "usage", "latency_ms",
                "cited", "invalid_citations", "truncated"):
        assert key in payload
    assert done.to_json() == {"event": "done", "data": payload}
    assert Token("a\nb").to_json() == {"event": "token", "data": "a\nb"}


def test_error_sse_is_json():
    assert parse_sse(Error("Search failed").to_sse()) == [("error", '{"message": "Search failed"}')]


def test_non_ascii_json_payloads_stay_readable():
    sse = Sources([{"title": "Säge — ✓"}]).to_sse()
    assert "Säge — ✓" in sse


def test_chat_module_reexports_the_events():
    from tui.services import chat

    assert chat.Token is Token and chat.Done is Done and chat.Error is Error
    assert chat.Sources is Sources and chat.Reset is Reset
    assert set(chat.ChatEvent.__args__) == {Sources, Token, Reset, Done, Error}
