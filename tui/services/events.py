"""The chat event protocol: typed values that ChatService yields, and their SSE form.

Every event has `.event` (the SSE event name), `.payload()` (the wire value:
a token's raw text, JSON-ready data for the rest) and `.to_sse()`, which writes
`event: NAME\\ndata: PAYLOAD\\n\\n` as the original service did — except that a
payload containing line breaks is written as one `data:` line per line, as the
SSE standard requires, so a standard client reassembles the exact text
(a token such as "\\n\\n- " survives the round trip). SSE reads CR as a line break
too; the chat service strips CR (and every other C0/C1 control but LF and TAB) from
tokens, so the text a client reassembles is exactly the answer that was stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

# SSE treats CRLF, LF and CR alike as line ends; split on all three.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_frame(event: str, data: str) -> str:
    """One SSE message: `event:` line, one `data:` line per line of `data`, blank line."""
    lines = _LINE_BREAK.split(data)
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


class _Event:
    event: ClassVar[str]

    def payload(self) -> Any:
        raise NotImplementedError

    def to_sse(self) -> str:
        value = self.payload()
        data = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return sse_frame(self.event, data)

    def to_json(self) -> dict[str, Any]:
        """`{"event": NAME, "data": PAYLOAD}` (the `chrysopedia ask --json` line)."""
        return {"event": self.event, "data": self.payload()}


@dataclass(frozen=True)
class Sources(_Event):
    """The numbered sources of this answer; always first (the list may be empty)."""

    sources: list[dict[str, Any]]
    event: ClassVar[str] = "sources"

    def payload(self) -> list[dict[str, Any]]:
        return self.sources


@dataclass(frozen=True)
class Token(_Event):
    """A fragment of the answer, already stripped of control characters."""

    text: str
    event: ClassVar[str] = "token"

    def payload(self) -> str:
        return self.text


@dataclass(frozen=True)
class Reset(_Event):
    """The primary model failed after tokens were sent: clear the partial answer.

    The fallback model (`model`) then streams its whole answer from the start.
    """

    reason: str
    model: str
    event: ClassVar[str] = "reset"

    def payload(self) -> dict[str, Any]:
        return {"reason": self.reason, "model": self.model}


@dataclass(frozen=True)
class Done(_Event):
    """Last event of a successful answer.

    `cited`: the source numbers the answer used (valid ones, ascending);
    `invalid_citations`: numbers the answer used that are outside 1..len(sources);
    `truncated`: the answer hit the stored-answer cap and generation was stopped;
    `usage`: prompt/completion/total tokens, `estimated` true when counted as chars/4;
    `claims`: the claim check of the answer (`tui.services.claims.ClaimReport.as_dict()`:
    total, supported, misattributed, unsupported, uncited and `items`, one per claim with
    its span in the answer and the supporting span in its source), None when not checked.
    """

    cascade_tier: str
    conversation_id: str
    fallback_used: bool
    model: str
    usage: dict[str, Any]
    latency_ms: float
    cited: list[int] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    truncated: bool = False
    turn: int | None = None
    message_id: int | None = None
    claims: dict[str, Any] | None = None
    # the creator the question named, when search recognised one: {"slug", "name"}
    creator_detected: dict[str, str] | None = None
    event: ClassVar[str] = "done"

    def payload(self) -> dict[str, Any]:
        return {
            "cascade_tier": self.cascade_tier,
            "conversation_id": self.conversation_id,
            "fallback_used": self.fallback_used,
            "model": self.model,
            "usage": self.usage,
            "latency_ms": round(self.latency_ms, 1),
            "cited": list(self.cited),
            "invalid_citations": list(self.invalid_citations),
            "truncated": self.truncated,
            "turn": self.turn,
            "message_id": self.message_id,
            "claims": self.claims,
            "creator_detected": self.creator_detected,
        }


@dataclass(frozen=True)
class Error(_Event):
    """Last event of a failed answer: a one-line message, never a stack trace or a key."""

    message: str
    # "setup" when a setting is wrong (a web page where the model API should be), not a
    # failure that may pass: `chrysopedia ask` exits 2 for it. Empty otherwise.
    kind: str = ""
    event: ClassVar[str] = "error"

    def payload(self) -> dict[str, Any]:
        return {"message": self.message, "kind": self.kind} if self.kind else {"message": self.message}


ChatEvent = Union[Sources, Token, Reset, Done, Error]  # noqa: UP007 - a runtime alias

__all__ = ["ChatEvent", "Done", "Error", "Reset", "Sources", "Token", "sse_frame"]
