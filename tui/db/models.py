"""SQLAlchemy 2 models: the knowledge base, the transcript archive, usage and local memory.

Portable across SQLite and PostgreSQL: JSON columns, string UUIDs, float
epoch-free timestamps as timezone-aware datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    """Key/value facts about this database: schema version, bundled KB hash."""

    __tablename__ = "chrysopedia_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Creator(Base):
    __tablename__ = "creators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    bio: Mapped[str | None] = mapped_column(Text)
    genres: Mapped[list[Any] | None] = mapped_column(JSON)
    personality_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The platform's channel id for an imported channel: two channels of one name stay apart.
    source_key: Mapped[str | None] = mapped_column(String(200), index=True)

    videos: Mapped[list[Video]] = relationship(back_populates="creator")
    pages: Mapped[list[TechniquePage]] = relationship(back_populates="creator")


class Video(Base):
    __tablename__ = "videos"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column(Float)
    # The day the platform published it, ISO `YYYY-MM-DD` (info.json's upload_date).
    upload_date: Mapped[str | None] = mapped_column(String(10))

    creator: Mapped[Creator] = relationship(back_populates="videos")


class TechniquePage(Base):
    __tablename__ = "technique_pages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"), index=True)
    topic_category: Mapped[str] = mapped_column(String(64), index=True)
    tags: Mapped[list[Any] | None] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)
    # Where the page came from: "demo" (the bundled pages), "kb" (a chrysopedia.kb/1
    # document) or "import" (a user's file, named by `material_key`).
    origin: Mapped[str] = mapped_column(String(16), default="kb", index=True)
    material_key: Mapped[str | None] = mapped_column(String(1000), unique=True)
    # The imported file a "page" or "heading" locator opens (absolute path).
    source_file: Mapped[str | None] = mapped_column(Text)

    creator: Mapped[Creator] = relationship(back_populates="pages")
    sections: Mapped[list[Section]] = relationship(
        back_populates="page", order_by="Section.position", cascade="all, delete-orphan"
    )


class Section(Base):
    __tablename__ = "sections"
    __table_args__ = (UniqueConstraint("page_id", "anchor", name="uq_section_page_anchor"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    page_id: Mapped[int] = mapped_column(
        ForeignKey("technique_pages.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    anchor: Mapped[str] = mapped_column(String(64))
    heading: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    video_id: Mapped[str | None] = mapped_column(
        ForeignKey("videos.id", ondelete="SET NULL"), index=True
    )
    start_time: Mapped[float | None] = mapped_column(Float)
    end_time: Mapped[float | None] = mapped_column(Float)
    # Where in its source the section is: "video" (start/end time), "page" (first/last
    # page of a document) or "heading" (a note's heading at `line`); None: video when it
    # has times (pages written before locators existed).
    locator: Mapped[str | None] = mapped_column(String(16))
    first_page: Mapped[int | None] = mapped_column(Integer)
    last_page: Mapped[int | None] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)
    # The note or document as the user named it (relative to the folder imported).
    source_path: Mapped[str | None] = mapped_column(Text)

    page: Mapped[TechniquePage] = relationship(back_populates="sections")
    video: Mapped[Video | None] = relationship()


class FileRecord(Base):
    """One imported file: what it was when read, and the page it became.

    A yt-dlp download is two records (subtitles and info.json) with one material key.
    Same path, size and mtime (or the same content hash) means unchanged: not read again.
    """

    __tablename__ = "kb_files"
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)  # absolute
    size: Mapped[int] = mapped_column(Integer)
    mtime: Mapped[float] = mapped_column(Float)
    content_hash: Mapped[str] = mapped_column(String(64))
    material_key: Mapped[str] = mapped_column(String(1000), index=True)
    page_slug: Mapped[str | None] = mapped_column(String(64), index=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DistilledLink(Base):
    """A technique page a model distilled from an imported transcript page (the raw page).

    The distilled page takes the raw page's place in the search index; the raw page
    stays, reachable from the distilled one, which records the transcript it was made
    from (`transcript_hash`): a changed transcript is distilled again.
    """

    __tablename__ = "distilled_pages"
    raw_page_id: Mapped[int] = mapped_column(
        ForeignKey("technique_pages.id", ondelete="CASCADE"), primary_key=True
    )
    page_id: Mapped[int] = mapped_column(
        ForeignKey("technique_pages.id", ondelete="CASCADE"), unique=True
    )
    transcript_hash: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChatUsageLog(Base):
    """One row per request that reached a model: answered, failed or cancelled."""

    __tablename__ = "chat_usage_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(200))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    creator_slug: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    query: Mapped[str] = mapped_column(String(2000))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    cascade_tier: Mapped[str] = mapped_column(String(32), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="answered")  # answered|failed|cancelled
    # What the model was asked for: "answer" (a question) or "distill" (a transcript page).
    purpose: Mapped[str] = mapped_column(String(16), default="answer", server_default="answer")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Conversation(Base):
    """The transcript archive: what the user sees, kept until they delete it."""

    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID
    title: Mapped[str] = mapped_column(Text, default="")
    creator_slug: Mapped[str | None] = mapped_column(String(64))
    personality_weight: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id", cascade="all, delete-orphan"
    )


class Message(Base):
    """One message of a transcript. An assistant message keeps its sources map.

    `turn` groups a question with its answers: regenerating adds another
    assistant message to the same turn, and the newest is the current one.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_turn", "conversation_id", "turn"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    turn: Mapped[int] = mapped_column(Integer, default=0)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text, default="")
    sources: Mapped[list[Any] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(200))
    cascade_tier: Mapped[str | None] = mapped_column(String(32))
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # answered | failed | cancelled | incomplete (streaming when the app died)
    status: Mapped[str] = mapped_column(String(16), default="answered")
    creator_slug: Mapped[str | None] = mapped_column(String(64))
    personality_weight: Mapped[float | None] = mapped_column(Float)
    user_id: Mapped[str | None] = mapped_column(String(200))  # who asked (schema v4)
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # The claim check of an answer: counts per class and each claim's spans
    # (tui.services.claims.ClaimReport.as_dict); None when it was not checked.
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class ChatMemory(Base):
    """The local conversation memory (what the model sees) when Redis is not in use.

    Same semantics as the Redis store: a JSON array of {role, content}, capped,
    expiring an hour after the last turn.
    """

    __tablename__ = "chat_memory"
    conversation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    messages: Mapped[str] = mapped_column(Text, default="[]")
    version: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float)  # unix time
