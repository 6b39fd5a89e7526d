"""The transcript archive (what the user sees): conversations and their messages, kept until deleted.

A turn is a question and its answer(s). `start_turn` saves the question at
once, with an assistant message in status "incomplete" — so a crash while the
answer streams keeps the question and shows the answer as interrupted.
`save_partial` may store the text so far while streaming; `finish_turn`
stores the final answer with its sources, model, tier, usage and status
("answered" | "failed" | "cancelled"). Regenerating adds another assistant
message to the same turn (`start_regeneration`); the newest is the current
one, the earlier ones stay as previous versions.

Database errors propagate (SQLAlchemyError); the chat service should log them
and carry on, since the archive must never break an answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tui.db.models import Conversation, Message, utcnow
from tui.services.history import validate_conversation_id

TITLE_CHARS = 80
FINAL_STATUSES = ("answered", "failed", "cancelled")
INCOMPLETE = "incomplete"
INTERRUPTED_ERROR = "interrupted: the app stopped while this answer was streaming"


@dataclass(frozen=True)
class TurnHandle:
    """What `finish_turn` needs: the conversation, the turn, the message rows."""

    conversation_id: str
    turn: int
    question: str
    user_message_id: int
    assistant_message_id: int


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    creator_slug: str | None
    personality_weight: float
    created_at: datetime
    updated_at: datetime
    turns: int

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["updated_at"] = self.updated_at.isoformat()
        return d


def make_title(question: str, limit: int = TITLE_CHARS) -> str:
    """The first question on one line, cut at a word boundary near `limit` characters."""
    text = " ".join(question.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "…"


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def start_turn(
    db,
    conversation_id: str | None,
    question: str,
    creator_slug: str | None = None,
    personality_weight: float = 0.0,
    *,
    user_id: str | None = None,
) -> TurnHandle:
    """Save the question now (creating the conversation on its first turn) plus an
    "incomplete" assistant message to be filled by `save_partial`/`finish_turn`.
    `user_id` (who asked) is recorded on both."""
    cid = validate_conversation_id(conversation_id)
    for attempt in range(3):
        try:
            return await _start_turn(db, cid, question, creator_slug, personality_weight,
                                     user_id)
        except IntegrityError:
            # Two first turns raced to create the conversation: the other one won, go again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _start_turn(db, cid, question, creator_slug, weight, user_id=None) -> TurnHandle:
    now = utcnow()
    async with db.session() as session, session.begin():
        # Touch the conversation first: this takes its row (PostgreSQL) or the write
        # lock (SQLite), so two turns on one conversation get distinct numbers.
        result = await session.execute(
            update(Conversation)
            .where(Conversation.id == cid)
            .values(updated_at=now, creator_slug=creator_slug, personality_weight=weight)
        )
        if result.rowcount == 0:
            await session.execute(
                insert(Conversation).values(
                    id=cid,
                    title=make_title(question),
                    creator_slug=creator_slug,
                    personality_weight=weight,
                    created_at=now,
                    updated_at=now,
                )
            )
        last = await session.scalar(
            select(func.max(Message.turn)).where(Message.conversation_id == cid)
        )
        turn = (last or 0) + 1
        common = dict(
            conversation_id=cid, turn=turn, creator_slug=creator_slug, personality_weight=weight,
            user_id=user_id,
        )
        user = Message(role="user", content=question, status="answered", created_at=now, **common)
        assistant = Message(role="assistant", content="", status=INCOMPLETE, created_at=now, **common)
        session.add_all([user, assistant])
        await session.flush()
        return TurnHandle(cid, turn, question, user.id, assistant.id)


_UNSET: Any = object()


async def start_regeneration(
    db, conversation_id: str, turn: int | None = None, *,
    creator_slug: str | None = _UNSET, personality_weight: float | None = _UNSET,
    user_id: str | None = None,
) -> TurnHandle:
    """A new "incomplete" assistant message in `turn` (default: the latest turn).

    The earlier answers stay as previous versions. `handle.question` is the
    turn's question, to ask again. The new answer records the creator and
    weight it is generated with (default: the question's), and `user_id`, who
    asked for it. LookupError when there is no such turn.
    """
    cid = validate_conversation_id(conversation_id)
    now = utcnow()
    async with db.session() as session, session.begin():
        await session.execute(
            update(Conversation).where(Conversation.id == cid).values(updated_at=now)
        )
        if turn is None:
            turn = await session.scalar(
                select(func.max(Message.turn)).where(Message.conversation_id == cid)
            )
        user = (
            await session.execute(
                select(Message)
                .where(Message.conversation_id == cid, Message.turn == turn, Message.role == "user")
                .order_by(Message.id)
                .limit(1)
            )
        ).scalar_one_or_none()
        if turn is None or user is None:
            raise LookupError(f"conversation {cid} has no turn {turn}")
        assistant = Message(
            conversation_id=cid, turn=turn, role="assistant", content="", status=INCOMPLETE,
            creator_slug=user.creator_slug if creator_slug is _UNSET else creator_slug,
            personality_weight=(
                user.personality_weight if personality_weight is _UNSET else personality_weight
            ),
            created_at=now,
            user_id=user_id,
        )
        session.add(assistant)
        await session.flush()
        return TurnHandle(cid, turn, user.content, user.id, assistant.id)


async def save_partial(db, handle: TurnHandle, content: str) -> None:
    """Store the answer so far (status stays "incomplete"); call it now and then while streaming."""
    async with db.session() as session, session.begin():
        await session.execute(
            update(Message)
            .where(Message.id == handle.assistant_message_id, Message.status == INCOMPLETE)
            .values(content=content)
        )


async def finish_turn(
    db,
    handle: TurnHandle,
    content: str,
    sources: list[dict[str, Any]] | None = None,
    model: str | None = None,
    cascade_tier: str | None = None,
    usage: dict[str, Any] | None = None,
    status: str = "answered",
    fallback_used: bool = False,
    latency_ms: float | None = None,
    error: str | None = None,
    claims: dict[str, Any] | None = None,
) -> None:
    """Store the final answer of a turn: "answered", "failed" (with `error`) or "cancelled"
    (with the partial text); `claims` is the answer's claim check."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"status must be one of {FINAL_STATUSES}, got {status!r}")
    now = utcnow()
    async with db.session() as session, session.begin():
        await session.execute(
            update(Message)
            .where(Message.id == handle.assistant_message_id)
            .values(
                content=content,
                sources=list(sources) if sources is not None else None,
                model=model,
                cascade_tier=cascade_tier,
                usage=dict(usage) if usage is not None else None,
                status=status,
                fallback_used=bool(fallback_used),
                latency_ms=latency_ms,
                error=error,
                claims=dict(claims) if claims is not None else None,
            )
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.id == handle.conversation_id)
            .values(updated_at=now)
        )


async def list_conversations(db, limit: int = 100, offset: int = 0) -> list[ConversationSummary]:
    """Conversations, most recently active first."""
    turns = (
        select(Message.conversation_id, func.max(Message.turn).label("turns"))
        .group_by(Message.conversation_id)
        .subquery()
    )
    query = (
        select(Conversation, func.coalesce(turns.c.turns, 0))
        .outerjoin(turns, turns.c.conversation_id == Conversation.id)
        .order_by(Conversation.updated_at.desc(), Conversation.id)
        .limit(limit)
        .offset(offset)
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return [
        ConversationSummary(
            id=c.id,
            title=c.title,
            creator_slug=c.creator_slug,
            personality_weight=c.personality_weight or 0.0,
            created_at=_aware(c.created_at),
            updated_at=_aware(c.updated_at),
            turns=int(n or 0),
        )
        for c, n in rows
    ]


async def get_conversation(db, conversation_id: str) -> ConversationSummary | None:
    cid = validate_conversation_id(conversation_id)
    for summary in await _summaries_where(db, cid):
        return summary
    return None


async def _summaries_where(db, cid: str) -> list[ConversationSummary]:
    async with db.session() as session:
        conv = await session.get(Conversation, cid)
        if conv is None:
            return []
        turns = await session.scalar(
            select(func.max(Message.turn)).where(Message.conversation_id == cid)
        )
    return [
        ConversationSummary(
            conv.id, conv.title, conv.creator_slug, conv.personality_weight or 0.0,
            _aware(conv.created_at), _aware(conv.updated_at), int(turns or 0),
        )
    ]


async def load_conversation(db, conversation_id: str) -> list[dict[str, Any]]:
    """Every message in order ([] for an unknown conversation).

    Each dict: id, turn, role, content, sources, status, model, cascade_tier,
    usage, fallback_used, latency_ms, error, claims (the stored claim check or None),
    creator_slug, personality_weight, user_id (who asked),
    created_at (aware datetime), current (the newest answer of its turn; True
    for questions), interrupted (an "incomplete" answer not being streamed now
    — after `mark_interrupted` or from a previous run).
    """
    cid = validate_conversation_id(conversation_id)
    async with db.session() as session:
        rows = (
            (await session.execute(
                select(Message).where(Message.conversation_id == cid).order_by(Message.id)
            ))
            .scalars()
            .all()
        )
    newest: dict[int, int] = {}
    for m in rows:
        if m.role == "assistant":
            newest[m.turn] = m.id
    out = []
    for m in rows:
        out.append(
            {
                "id": m.id,
                "turn": m.turn,
                "role": m.role,
                "content": m.content,
                "sources": m.sources or [],
                "status": m.status,
                "model": m.model,
                "cascade_tier": m.cascade_tier,
                "usage": m.usage,
                "fallback_used": bool(m.fallback_used),
                "latency_ms": m.latency_ms,
                "error": m.error,
                "claims": m.claims,
                "creator_slug": m.creator_slug,
                "personality_weight": m.personality_weight,
                "user_id": m.user_id,
                "created_at": _aware(m.created_at),
                "current": m.role != "assistant" or newest.get(m.turn) == m.id,
                "interrupted": m.status == INCOMPLETE and m.error == INTERRUPTED_ERROR,
            }
        )
    return out


async def delete_conversation(db, conversation_id: str) -> bool:
    """Delete a conversation and its messages; False when it did not exist."""
    cid = validate_conversation_id(conversation_id)
    async with db.session() as session, session.begin():
        await session.execute(delete(Message).where(Message.conversation_id == cid))
        result = await session.execute(delete(Conversation).where(Conversation.id == cid))
    return bool(result.rowcount)


async def mark_interrupted(db, older_than: float = 0.0) -> int:
    """Mark "incomplete" answers left by a crash (created more than `older_than` seconds ago)
    with `INTERRUPTED_ERROR`; they keep status "incomplete" and whatever text was saved.

    Call it at start-up, before this process streams anything (`older_than`
    guards other processes sharing the database). Returns how many.
    """
    cutoff = datetime.now(UTC).timestamp() - older_than
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(Message)
            .where(
                Message.status == INCOMPLETE,
                Message.error.is_(None),
                Message.created_at <= datetime.fromtimestamp(cutoff, UTC),
            )
            .values(error=INTERRUPTED_ERROR)
        )
    return int(result.rowcount or 0)
