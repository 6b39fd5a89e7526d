"""Section embeddings: stored as compact blobs in the knowledge base's own database,
scored from one in-process int8 matrix.

- `section_vectors(section_id, model, content_hash, dim, vector)`: one row per section and
  embedding model; `vector` is the float16 bytes of the unit-length embedding (512 bytes
  for 256 dimensions). The model name is stored with each vector and only the current
  model's vectors are ever read, so a half-finished switch never mixes two models.
- `await update_sections(conn_or_session, section_ids=None)`: (re)embeds the given
  sections, or every section without a current vector when `section_ids` is None. A
  section whose text hash matches its stored vector is skipped. Runs inside the caller's
  transaction. Importers call it with the ids of the sections they added or changed
  (removed sections lose their vectors through the foreign key).
- `matrix(x, generation)`: the process-wide matrix for the current database, reloaded when
  `vectors_generation` (in `chrysopedia_meta`, changed by every update) differs.

The local model is WordLlama (its 256-dimension weights and tokenizer ship inside its
wheel): a static embedding, so a section costs microseconds and a query far less than
the lexical statements. It is loaded from the installed package's folder with downloads
disabled; nothing is fetched at run time.

Scoring: vectors are int8 with one scale per row (a quarter of float32's memory), kept
ready to multiply: the query is quantised the same way and SimSIMD's int8 dot-product
kernel (AVX2/NEON, one thread) scores every row without converting the matrix (at 100k
sections converting it to float32 block by block cost more than the products). A small
matrix is also kept as float32 and scored exactly, by SimSIMD's float32 kernel. Not
BLAS: OpenBLAS hands a matrix-vector product of this size to a second thread, which on a
busy machine makes the caller wait for a core (the p95 of a search tripled).
PostgreSQL's pgvector is not used: the blob path is the same on both backends, and the
matrix multiply is faster than a round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simsimd
from sqlalchemy import ForeignKey, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tui.db.models import Base

logger = logging.getLogger(__name__)

LOCAL_MODEL = "wordllama-l2-supercat-256"
DIM = 256
META_GENERATION = "vectors_generation"
# the model whose vectors the search uses: changed only once every section has one
META_MODEL = "vectors_model"
# words of a section's body that go into its vector (see section_text)
BODY_WORDS = 60
# An imported section (a transcript's 1-4 minutes, a manual's pages) starts with talk or
# boilerplate; its vector reads more of it (docs/BENCHMARKS.md: transcripts' MRR).
IMPORTED_BODY_WORDS = 200
VECTOR_TEXT_VERSION = "2"  # bumped when section_text changes: ensure_vectors re-embeds
# below this many bytes of float32 rows (4,096 sections at 256 dimensions) the matrix is
# also kept as float32 and scored exactly; above it, int8 alone: a quarter of the memory,
# and about half the time (a 10k-section float32 matrix, 10 MB, no longer fits the
# machine's cache; its int8 rows, 2.6 MB, do), for cosines within 0.003
F32_MAX_BYTES = 4 * 1024 * 1024
# texts per request to an embedding server
REMOTE_BATCH = 64
# sections embedded and written per batch at import
EMBED_BATCH = 2000


class SectionVector(Base):
    __tablename__ = "section_vectors"
    section_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("sections.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(32))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


async def migrate(conn: Any) -> None:
    """Schema step: the `section_vectors` table (idempotent; `create_all` also makes it
    for new databases, since this module declares it on the shared metadata)."""
    await conn.run_sync(lambda sync: SectionVector.__table__.create(sync, checkfirst=True))


# ------------------------------------------------------------------ the model

class LocalEmbedder:
    """WordLlama, loaded offline from its wheel."""

    name = LOCAL_MODEL
    dim = DIM

    def __init__(self) -> None:
        from pathlib import Path

        # wordllama calls logging.basicConfig(level=INFO) on import: a library must not
        # configure the application's logging, so its handler and level are undone
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            import wordllama
            from wordllama import WordLlama
        finally:
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
            root.setLevel(level)

        # 0.4.0.post1 looks for the tokenizer under another folder name, then tries to
        # download it; pointing cache_dir at the package finds both files it ships.
        self._model = WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True, dim=DIM
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self._model.embed(list(texts), norm=True), dtype=np.float32)
        return np.nan_to_num(out)


_local: LocalEmbedder | None = None
_local_lock = threading.Lock()


def local_embedder() -> LocalEmbedder:
    global _local
    with _local_lock:
        if _local is None:
            _local = LocalEmbedder()
        return _local


class EmbedError(Exception):
    """The embedding server failed; the message is one line, without the key."""


class RemoteEmbedder:
    """An OpenAI-compatible `/v1/embeddings` server (Ollama, llama.cpp, vLLM, OpenAI),
    asked in batches of REMOTE_BATCH texts."""

    def __init__(self, model: str, url: str, api_key: str | None = None,
                 timeout: float = 60.0) -> None:
        import httpx2

        self.name = model
        self.url = url.rstrip("/") + "/embeddings"
        self.dim = 0
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx2.Client(timeout=timeout, headers=headers)
        self._key = api_key

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), REMOTE_BATCH):
            out.append(self._batch(list(texts[start : start + REMOTE_BATCH])))
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out)

    def _batch(self, texts: list[str]) -> np.ndarray:
        try:
            resp = self._client.post(self.url, json={"model": self.name, "input": texts})
        except Exception as exc:  # noqa: BLE001 - any transport failure is one line
            raise EmbedError(f"embedding server {self.url}: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise EmbedError(f"embedding server {self.url}: HTTP {resp.status_code}")
        try:
            data = sorted(resp.json()["data"], key=lambda d: d["index"])
            vecs = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            raise EmbedError(f"embedding server {self.url}: not an embeddings answer") from None
        if vecs.ndim != 2 or len(vecs) != len(texts) or not vecs.shape[1]:
            raise EmbedError(f"embedding server {self.url}: {len(vecs)} vectors for "
                             f"{len(texts)} texts")
        if self.dim and vecs.shape[1] != self.dim:
            raise EmbedError(f"embedding server {self.url}: dimension changed")
        self.dim = vecs.shape[1]
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.nan_to_num(vecs / np.where(norms > 0, norms, 1.0))


_remote: list[RemoteEmbedder | None] = [None]


def configure(settings: Any) -> None:
    """Use the embedding server the settings name (`embed_model`, `embed_url` or the chat
    model's URL), or the local model when none is set."""
    model = getattr(settings, "embed_model", None)
    if not model:
        _remote[0] = None
        return
    url = getattr(settings, "embed_url", None) or getattr(settings, "llm_api_url", None) or ""
    current = _remote[0]
    if current is None or (current.name, current.url) != (model, url.rstrip("/") + "/embeddings"):
        _remote[0] = RemoteEmbedder(model, url, getattr(settings, "llm_api_key", None))


def current_embedder() -> Any:
    return _remote[0] or local_embedder()


def current_model() -> str:
    """The name the configured model's vectors are stored under (without loading it)."""
    return _remote[0].name if _remote[0] is not None else LOCAL_MODEL


def embedder_for(model: str) -> Any:
    """The embedder that made `model`'s vectors, if this process has it."""
    if model == LOCAL_MODEL:
        return local_embedder()
    remote = _remote[0]
    return remote if remote is not None and remote.name == model else None


# ------------------------------------------------------------------- text

def section_text(title: str | None, heading: str | None, tags: Any, summary: str | None,
                 body: str | None, imported: bool = False) -> str:
    """What a section's vector stands for: its page's title, tags and summary with the
    section's heading and the start of its body. Title and summary carry the topic; a
    static model averages its tokens, so a long body dilutes it (on the eval set the
    first BODY_WORDS words ranked better than the whole body, and embed several times
    faster)."""
    if isinstance(tags, str):
        import json

        try:
            tags = json.loads(tags)
        except ValueError:
            tags = []
    tag_text = " ".join(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ""
    lead = " ".join((body or "").split()[:IMPORTED_BODY_WORDS if imported else BODY_WORDS])
    return f"{title or ''}. {heading or ''}. {tag_text}. {summary or ''} {lead}"


def content_hash(text_: str) -> str:
    return hashlib.blake2b(text_.encode("utf-8", "replace"), digest_size=16).hexdigest()


def to_blob(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f2").tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<f2").reshape(len(blobs), dim)


# ----------------------------------------------------------------- updates

_SECTION_TEXT = (
    "SELECT s.id, p.title, s.heading, p.tags, p.summary, s.body, s.locator "
    "FROM sections s JOIN technique_pages p ON p.id = s.page_id"
)


async def _set_generation(conn: Any) -> None:
    await conn.execute(text("DELETE FROM chrysopedia_meta WHERE key = :k"), {"k": META_GENERATION})
    await conn.execute(
        text("INSERT INTO chrysopedia_meta (key, value) VALUES (:k, :v)"),
        {"k": META_GENERATION, "v": uuid.uuid4().hex},
    )


async def active_model(conn: Any) -> str:
    row = await conn.execute(text("SELECT value FROM chrysopedia_meta WHERE key = :k"),
                             {"k": META_MODEL})
    return row.scalar_one_or_none() or LOCAL_MODEL


async def update_sections(
    conn: Any, section_ids: Iterable[int] | None = None, embedder: Any = None,
    progress: Any = None,
) -> int:
    """Embed the given sections (None: every section lacking a vector) with the model the
    search uses, inside the caller's transaction; `conn` is an AsyncConnection or
    AsyncSession. Returns how many vectors were written. Sections whose text is unchanged
    keep their vector. `progress(done, total)` is called after each batch."""
    if embedder is None:
        # By name first: the local model takes a quarter of a second and ~70 MB to load,
        # which a start-up with every vector in place does not need.
        active = await active_model(conn)
        remote = _remote[0]
        model = active if active == LOCAL_MODEL or (remote is not None and remote.name == active) \
            else LOCAL_MODEL  # the active model's server is not configured here: local
    else:
        model = embedder.name
    if section_ids is None:
        rows = (await conn.execute(text(
            _SECTION_TEXT + " LEFT JOIN section_vectors v ON v.section_id = s.id "
            "AND v.model = :m WHERE v.section_id IS NULL ORDER BY s.id"), {"m": model})).all()
        stored: dict[int, str] = {}
    else:
        ids = sorted({int(i) for i in section_ids})
        rows, stored = [], {}
        for start in range(0, len(ids), 900):  # bound the statement's parameter count
            chunk = ids[start : start + 900]
            marks = ", ".join(f":i{k}" for k in range(len(chunk)))
            params = {f"i{k}": v for k, v in enumerate(chunk)}
            rows += (await conn.execute(
                text(_SECTION_TEXT + f" WHERE s.id IN ({marks})"), params)).all()
            stored.update((int(r[0]), r[1]) for r in (await conn.execute(text(
                "SELECT section_id, content_hash FROM section_vectors "
                f"WHERE model = :m AND section_id IN ({marks})"), {"m": model, **params})).all())
    todo = []
    for sid, title, heading, tags, summary, body, locator in rows:
        t = section_text(title, heading, tags, summary, body, imported=locator is not None)
        h = content_hash(t)
        if stored.get(int(sid)) != h:
            todo.append((int(sid), t, h))
    if todo and embedder is None:
        embedder = embedder_for(model)
    written = 0
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start : start + EMBED_BATCH]
        vecs = await asyncio.to_thread(embedder.embed, [t for _, t, _ in batch])
        ids = [sid for sid, _, _ in batch]
        for s in range(0, len(ids), 900):
            chunk = ids[s : s + 900]
            marks = ", ".join(f":i{k}" for k in range(len(chunk)))
            await conn.execute(
                text(f"DELETE FROM section_vectors WHERE model = :m AND section_id IN ({marks})"),
                {"m": model, **{f"i{k}": v for k, v in enumerate(chunk)}},
            )
        await conn.execute(
            text("INSERT INTO section_vectors (section_id, model, content_hash, dim, vector) "
                 "VALUES (:s, :m, :h, :d, :v)"),
            [{"s": sid, "m": model, "h": h, "d": embedder.dim, "v": to_blob(vecs[i])}
             for i, (sid, _, h) in enumerate(batch)],
        )
        written += len(batch)
        if progress is not None:
            progress(written, len(todo))
    if written or section_ids is not None:  # an import may also have removed sections
        await _set_generation(conn)
    return written


async def switch_model(conn: Any, embedder: Any, progress: Any = None) -> int:
    """Make `embedder`'s model the one the search uses: embed every section that has no
    current vector of it (vectors are kept per model and text hash, so switching back
    reuses them), then record it as active. All inside the caller's transaction: a
    server failing half-way raises EmbedError and leaves the previous model in use."""
    ids = [int(r[0]) for r in (await conn.execute(text("SELECT id FROM sections"))).all()]
    written = await update_sections(conn, ids, embedder=embedder, progress=progress)
    await conn.execute(text("DELETE FROM chrysopedia_meta WHERE key = :k"), {"k": META_MODEL})
    await conn.execute(text("INSERT INTO chrysopedia_meta (key, value) VALUES (:k, :v)"),
                       {"k": META_MODEL, "v": embedder.name})
    await _set_generation(conn)
    return written


# ------------------------------------------------------------------ scoring

@dataclass
class Matrix:
    """Every current vector of one database: int8 rows, a scale per row, their section
    and creator ids (the creator tier filters on them)."""

    generation: str
    model: str
    ids: np.ndarray  # int64, ascending
    creators: np.ndarray  # int64
    q8: np.ndarray  # (n, dim) int8
    scale: np.ndarray  # (n,) float32
    pages: np.ndarray  # int64, the page of each section (for the per-page cap)
    # float32 rows too when they fit in F32_MAX_BYTES: scored exactly
    f32: np.ndarray | None = None
    reload_after: float = 0.0  # time.monotonic(): kept until then when the generation moves

    @property
    def nbytes(self) -> int:
        extra = self.f32.nbytes if self.f32 is not None else 0
        return (self.ids.nbytes + self.creators.nbytes + self.q8.nbytes + self.scale.nbytes
                + self.pages.nbytes + extra)

    def pages_of(self, section_ids: Sequence[int]) -> dict[int, int]:
        pos = np.searchsorted(self.ids, np.asarray(section_ids, dtype=np.int64))
        return {int(s): int(self.pages[p]) for s, p in zip(section_ids, pos, strict=True)
                if p < len(self.ids) and self.ids[p] == s}

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Every row's dot product with the (unit-length) query, as float32."""
        q = np.asarray(query, dtype=np.float32)
        if not len(self.ids):
            return np.zeros(0, np.float32)
        if self.f32 is not None:
            return np.asarray(simsimd.cdist(q[None, :], self.f32, metric="dot",
                                            out_dtype="float32"))[0]
        # the query quantised as the rows are (int8 products are exact in float32): its
        # rounding moves a cosine by at most about 0.002, as the rows' own rounding does
        peak = float(np.abs(q).max())
        q_scale = np.float32(peak / 127.0 if peak > 0 else 1.0)
        q8 = np.clip(np.rint(q / q_scale), -127, 127).astype(np.int8)
        out = np.asarray(simsimd.cdist(q8[None, :], self.q8, metric="dot",
                                       out_dtype="float32"))[0]
        out *= self.scale * q_scale
        return out

    def top(self, query: np.ndarray, k: int, creator_id: int | None = None
            ) -> list[tuple[int, float]]:
        """The k best (section id, cosine), best first; ties to the lower id."""
        if not len(self.ids):
            return []
        s = self.scores(query)
        if creator_id is not None:
            s = np.where(self.creators == creator_id, s, -np.inf)
        k = min(k, len(s))
        part = np.argpartition(-s, k - 1)[:k]
        order = part[np.lexsort((self.ids[part], -s[part]))]
        order = order[np.isfinite(s[order])]
        return list(zip(self.ids[order].tolist(), s[order].tolist(), strict=True))

    def vectors(self, section_ids: Sequence[int]) -> tuple[list[int], np.ndarray]:
        """The stored (dequantised) vectors of those sections that have one."""
        ids = np.asarray(section_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids)
        found = [(int(s), int(p)) for s, p in zip(ids, pos, strict=True)
                 if p < len(self.ids) and self.ids[p] == s]
        if not found:
            return [], np.zeros((0, self.q8.shape[1]), np.float32)
        rows = [p for _, p in found]
        return [s for s, _ in found], self.q8[rows].astype(np.float32) * self.scale[rows, None]

    def similarity(self, query: np.ndarray, section_ids: Sequence[int]) -> dict[int, float]:
        pos = np.searchsorted(self.ids, np.asarray(section_ids, dtype=np.int64))
        out = {}
        q = np.asarray(query, dtype=np.float32)
        for sid, p in zip(section_ids, pos, strict=True):
            if p < len(self.ids) and self.ids[p] == sid:
                out[int(sid)] = float(self.q8[p].astype(np.float32) @ q * self.scale[p])
        return out


def quantize(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vecs = np.asarray(vecs, dtype=np.float32)
    peak = np.abs(vecs).max(axis=1) if len(vecs) else np.zeros(0, np.float32)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q8 = np.clip(np.rint(vecs / scale[:, None]), -127, 127).astype(np.int8)
    return q8, scale


_matrices: dict[Any, Matrix] = {}
RELOAD_COST_SHARE = 0.1
MAX_RELOAD_WAIT_S = 2.0
_matrices_lock = threading.Lock()


def load_matrix(rows: Sequence[Any], generation: str, model: str, dim: int) -> Matrix:
    """`rows`: (section id, creator id, float16 blob[, page id]), ascending by section id."""
    rows = [r for r in rows if r[2] is not None and len(r[2]) == dim * 2]
    ids = np.fromiter((int(r[0]) for r in rows), np.int64, len(rows))
    creators = np.fromiter((int(r[1]) for r in rows), np.int64, len(rows))
    pages = np.fromiter((int(r[3]) if len(r) > 3 else -1 for r in rows), np.int64, len(rows))
    vecs = from_blobs([bytes(r[2]) for r in rows], dim).astype(np.float32) if rows else (
        np.zeros((0, dim), np.float32))
    q8, scale = quantize(vecs)
    f32 = vecs if vecs.nbytes <= F32_MAX_BYTES else None
    return Matrix(generation, model, ids, creators, q8, scale, pages, f32)


def cached_matrix(key: Any, generation: str | None, model: str, fetch) -> Matrix | None:
    """The matrix for database `key`, reloaded through `fetch()` -> rows when the stored
    generation changed. None when the database has no vectors."""
    if generation is None:
        return None
    now = time.monotonic()
    with _matrices_lock:
        m = _matrices.get(key)
        if m is not None and m.model == model and (
                m.generation == generation or now < m.reload_after):
            # While another process imports, the generation changes with every file: a
            # matrix younger than RELOAD_COST_SHARE⁻¹ × its own loading time is kept, so
            # reloading takes at most that share of the searches' time (new sections are
            # found by the lexical side meanwhile, and semantically a moment later).
            return m
    rows = fetch()
    dim = len(bytes(rows[0][2])) // 2 if rows else DIM
    m = load_matrix(rows, generation, model, dim)
    m.reload_after = now + min(MAX_RELOAD_WAIT_S, (time.monotonic() - now) / RELOAD_COST_SHARE)
    with _matrices_lock:
        _matrices[key] = m
    return m


MATRIX_ROWS = (
    "SELECT v.section_id, p.creator_id, v.vector, s.page_id FROM section_vectors v "
    "JOIN sections s ON s.id = v.section_id JOIN technique_pages p ON p.id = s.page_id "
    # a transcript page its distilled page replaced is out of search, on this side too
    "WHERE v.model = :m AND s.page_id NOT IN (SELECT raw_page_id FROM distilled_pages) "
    "ORDER BY v.section_id"
)
