"""ChatService: a question in, a stream of typed events out (Sources · Token* · Reset? · Done | Error).

One request, end to end (see docs/ARCHITECTURE.md, "Event protocol"):

1. validate (question, weight, conversation id, creator) — a refused request yields a
   single `Error` and nothing is stored;
2. save the question in the transcript archive (an "incomplete" answer row);
3. load the conversation memory (what the model sees);
4. search the knowledge base; number the sources once; emit `Sources`;
5. build the system prompt (the original service's rules and format, the numbered
   context block with each source's section text within `CONTEXT_BUDGET`, the creator
   voice block by weight), history between it and the question;
6. stream from the primary model, the fallback, or — with no model configured — the
   offline digest;
7. on success: memory gets the turn, the transcript the answer (with the sources map,
   model, tier, usage, claim check), the usage log a row, then `Done` (with `cited`,
   `invalid_citations` and `claims`, the check of each claim against its sources). On
   failure: transcript "failed", usage row if a model was reached, `Error`. On
   cancellation: the HTTP stream is closed at once, the partial answer is saved
   "cancelled", usage is logged, memory is untouched.

Consumers should close the stream when they stop early:
`async with contextlib.aclosing(service.stream_response(...)) as events: ...`
(cancelling the consuming task works too).

One topic, one request from question to stored answer, hence its length; search, the
models, memory, the archive and the claim check each live in a module of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tui.services.events import ChatEvent, Done, Error, Reset, Sources, Token
from tui.services.llm import (
    MAX_ANSWER_CHARS,
    MAX_TOKENS,
    OFFLINE_MODEL,
    Completion,
    LLMError,
    ModelRouter,
    clean_text,
    digest_tokens,
    offline_digest,
    split_sentences,
)
from tui.services.locators import locator_label
from tui.services.personality import (
    build_personality_block,
    describe_voice,
    temperature_for,
    validate_weight,
)

__all__ = [
    "CONTEXT_BUDGET",
    "ChatEvent",
    "ChatService",
    "Done",
    "Error",
    "Reset",
    "Sources",
    "Token",
    "build_context_block",
    "build_sources",
    "find_citations",
]

logger = logging.getLogger("chrysopedia.chat")

SYSTEM_PROMPT_TEMPLATE = """\
You are Chrysopedia, an expert assistant for music production techniques — \
synthesis, sound design, mixing, sampling, and audio processing.

## Rules
- Use ONLY the numbered sources below. Do not invent facts.
- Cite every factual claim inline with [N] immediately after the claim \
(e.g. "Parallel compression adds sustain [2] while preserving transients [1].").
- When sources disagree, present both perspectives with their citations.
- If the sources lack enough information, say so honestly.

## Response format
- Aim for 2–4 short paragraphs. Expand only when the question warrants detail.
- Use bullet lists for steps, signal chains, or parameter lists.
- **Bold** key terms on first mention.
- Use audio/synthesis/mixing terminology naturally — do not over-explain \
standard concepts (e.g. LFO, sidechain, wet/dry) unless the user asks.

Sources:
{context_block}
"""

MAX_CONTEXT_SOURCES = 10
# Characters of section text shared by all sources in the context block. Each source
# gets an equal share of what is left (unused share passes to the next ones), cut
# at a sentence boundary; the page summary comes on top of it (≤ 300 chars each).
CONTEXT_BUDGET = 6000
SUMMARY_CHARS = 300
MAX_QUERY_CHARS = 8000
PARTIAL_SAVE_INTERVAL = 2.0  # seconds between saves of the answer so far


# ── sources and context ───────────────────────────────────────────────────


def _s(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def build_sources(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The numbered citation list (the original service's fields plus creator_slug,
    video_title, video_url and video_upload_date, "" when unknown); number N is
    items[N-1], fixed for this answer."""
    sources: list[dict[str, Any]] = []
    for idx, item in enumerate(items, start=1):
        sources.append({
            "number": idx,
            "title": _s(item, "title"),
            "slug": _s(item, "technique_page_slug") or _s(item, "slug"),
            "creator_name": _s(item, "creator_name"),
            "creator_slug": _s(item, "creator_slug"),
            "topic_category": _s(item, "topic_category"),
            "summary": _s(item, "summary")[:200],
            "section_anchor": _s(item, "section_anchor"),
            "section_heading": _s(item, "section_heading"),
            "source_video_id": _s(item, "source_video_id"),
            "start_time": item.get("start_time"),
            "end_time": item.get("end_time"),
            "video_filename": _s(item, "video_filename"),
            "video_title": _s(item, "video_title"),
            "video_url": _s(item, "video_url"),
            "video_upload_date": _s(item, "video_upload_date"),
            "locator": item.get("locator"),
            "locator_label": locator_label(item),
        })
    return sources


def excerpt(text: str, limit: int) -> str:
    """Whole sentences of a Markdown body up to `limit` characters.

    When even the first sentence is longer, it is cut at a word boundary with "…".
    """
    if limit <= 0:
        return ""
    out: list[str] = []
    used = 0
    for sentence in split_sentences(text):
        cost = len(sentence) + (1 if out else 0)
        if used + cost > limit:
            if not out:
                cut = sentence[: max(0, limit - 1)].rsplit(" ", 1)[0]
                return (cut + "…") if cut else ""
            break
        out.append(sentence)
        used += cost
    return " ".join(out)


def build_context_block(items: Sequence[dict[str, Any]], budget: int = CONTEXT_BUDGET) -> str:
    """The numbered context block of the system prompt.

    `[N] Title by Creator — Section heading`, then the page summary, then the
    section's own text within the shared `budget` (see CONTEXT_BUDGET).
    """
    if not items:
        return "(No sources available)"
    lines: list[str] = []
    remaining = budget
    for idx, item in enumerate(items, start=1):
        title = _s(item, "title") or "Untitled"
        creator = _s(item, "creator_name")
        section = _s(item, "section_heading")
        parts = [f"[{idx}] {title}"]
        if creator:
            parts.append(f"by {creator}")
        if section:
            parts.append(f"— {section}")
        lines.append(" ".join(parts))
        summary = excerpt(_s(item, "summary"), SUMMARY_CHARS)
        if summary:
            lines.append(f"    {summary}")
        share = remaining // (len(items) - idx + 1)
        body = excerpt(_s(item, "section_body"), share)
        if body:
            lines.append(f"    {body}")
            remaining -= len(body)
        lines.append("")
    return "\n".join(lines)


_CITATION = re.compile(r"\[(\s*\d{1,4}(?:\s*[,;–-]\s*\d{1,4})*\s*)\](?!\()")
_CITATION_LINK = re.compile(r"\[(\d{1,4})\]\(")


# `Done.model` when the knowledge base had nothing on the question and no model was asked.
NO_SOURCES_MODEL = "no-sources"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def no_sources_message(nearest: Sequence[str]) -> str:
    """What the user reads when the KB has nothing on the question: plainly that, and the
    nearest topics it does cover (page titles: KB text, shown as plain text)."""
    text = ("The knowledge base has nothing on this question, so no answer was generated "
            "(a model would have had no sources to cite).")
    titles = [_MARKDOWN_SPECIAL.sub(r"\\\1", clean_text(t).replace("\n", " ").strip())
              for t in nearest if isinstance(t, str) and t.strip()]
    if titles:
        text += "\n\nThe nearest topics it does cover:\n\n" + "\n".join(f"- {t}" for t in titles)
    return text


def find_citations(text: str, n_sources: int) -> tuple[list[int], list[int]]:
    """(cited, invalid): the valid source numbers the text cites, and those outside
    1..n_sources; each ascending, without repeats. Understands [1], [1, 3], [2-4]."""
    numbers: set[int] = set()
    for match in _CITATION.finditer(text):
        for part in re.split(r"\s*[,;]\s*", match.group(1).strip()):
            bounds = re.split(r"\s*[–-]\s*", part)
            if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
                lo, hi = int(bounds[0]), int(bounds[1])
                if lo <= hi and hi - lo <= 50:
                    numbers.update(range(lo, hi + 1))
                    continue
            numbers.update(int(b) for b in bounds if b.isdigit())
    numbers.update(int(m.group(1)) for m in _CITATION_LINK.finditer(text))
    cited = sorted(n for n in numbers if 1 <= n <= n_sources)
    invalid = sorted(n for n in numbers if not 1 <= n <= n_sources)
    return cited, invalid


def build_messages(
    system_prompt: str, history: Sequence[dict[str, str]], query: str
) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt}, *history, {"role": "user", "content": query}]


# ── the service ───────────────────────────────────────────────────────────

# Imported on an answer's first use; `ChatService.warm_up` imports them ahead.
WARM_MODULES = (
    "tui.services.transcripts", "tui.services.usage", "tui.services.claims",
    "anyio._backends._asyncio", "jiter",
)
_SAMPLE_CHUNK = {
    "id": "warm-up", "object": "chat.completion.chunk", "created": 0, "model": "warm-up",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                 "finish_reason": None}],
}


class ChatService:
    """Streams cited answers; knows nothing of any screen.

    `db`: a `tui.db.engine.Database`; `history`: a `HistoryStore` (or anything with
    `load(cid)` and `append(cid, user, assistant)`); `search`: a `SearchService`
    (default: a new one); `llm`: a `ModelRouter` (default: from `settings`).
    """

    def __init__(self, settings, db, history, search=None, llm=None) -> None:
        self.settings = settings
        self.db = db
        self.history = history
        if search is None:
            from tui.services.search import SearchService

            search = SearchService(settings)
        self.search = search
        self.llm = llm if llm is not None else ModelRouter(settings)
        self.max_answer_chars = MAX_ANSWER_CHARS
        # Who asks: recorded in each usage row and transcript message (a team shares both).
        self.user_id = getattr(settings, "user_id", None) or None
        # Optional `(claim, passages) -> similarities` (an embedding model) for the claim check.
        self.claim_scorer = None
        self._profiles: dict[str, dict[str, Any] | None] = {}

    async def aclose(self) -> None:
        await self.llm.aclose()

    async def warm_up(self) -> None:
        """Load, in a thread, what the first question would otherwise wait for: the modules
        an answer uses that are imported on first use (the transcript archive, the usage
        log, the claim check, the OpenAI client's streaming parts), the English word list
        the answerability gate reads (wordfreq: 0.2 s) and the local embedding
        model the search's semantic side uses (WordLlama: 0.3 s on an idle machine,
        seconds on a loaded one, and on PostgreSQL the search runs on the event loop).
        Without it the first question waited 1-3.5 s longer than the next ones on a loaded
        machine (bench/team_load.py). Called once the app is up; a failure is logged and
        the first question loads what is missing, as before."""
        from tui.db import vectors
        from tui.services.search import english_zipf, semantic_enabled

        vectors.configure(self.settings)
        embed = semantic_enabled() and vectors.current_model() == vectors.LOCAL_MODEL
        gate_words = True  # the answerability gate's English word list (both gates read it)

        def load() -> None:
            import importlib

            for name in WARM_MODULES:
                importlib.import_module(name)
            if self.llm.configured:
                from openai.types.chat import ChatCompletionChunk

                ChatCompletionChunk.model_validate(_SAMPLE_CHUNK)  # builds the parser
            if embed:
                vectors.local_embedder().embed(["warm up"])
            if gate_words:
                english_zipf("warm")  # imports wordfreq and reads its list (0.2 s)

        try:
            await asyncio.to_thread(load)
        except Exception:  # noqa: BLE001 - the first question will load it
            logger.warning("chat_warm_up_failed", exc_info=True)

    # -- creators and voice --

    async def creator_profile(self, creator: str) -> dict[str, Any] | None:
        """`{"slug", "name", "profile"}` for a creator slug or name, None when unknown.

        Cached for this service's life (the voice preview calls it on every slider move).
        """
        key = (creator or "").strip()
        if not key:
            return None
        if key not in self._profiles:
            from sqlalchemy import or_, select

            from tui.db.models import Creator

            async with self.db.session() as session:
                row = (
                    await session.execute(
                        select(Creator.slug, Creator.name, Creator.personality_profile)
                        .where(or_(Creator.slug == key, Creator.name == key))
                        .limit(1)
                    )
                ).first()
            self._profiles[key] = (
                None if row is None
                else {"slug": row.slug, "name": row.name, "profile": row.personality_profile}
            )
        found = self._profiles[key]
        return dict(found) if found is not None else None

    def forget_profiles(self) -> None:
        """Drop the cached profiles: a distill run (or an import) has written new ones."""
        self._profiles.clear()

    async def voice_preview(self, creator: str | None, weight: float) -> str:
        """What the creator voice adds at `weight` (`personality.describe_voice`), or that
        the creator is unknown. ValueError for a weight outside [0, 1]."""
        w = validate_weight(weight)
        if not creator:
            return describe_voice(None, None, w)
        info = await self.creator_profile(creator)
        if info is None:
            return f"Unknown creator {creator!r}."
        return describe_voice(info["name"], info["profile"], w)

    async def system_prompt(
        self, items: Sequence[dict[str, Any]], creator: dict[str, Any] | None, weight: float
    ) -> str:
        prompt = SYSTEM_PROMPT_TEMPLATE.format(context_block=build_context_block(items))
        if creator is not None and weight > 0:
            block = build_personality_block(creator["name"], creator["profile"], weight)
            if block:
                prompt += "\n\n" + block
        return prompt

    # -- the stream --

    async def stream_response(
        self,
        query: str,
        creator: str | None = None,
        conversation_id: str | None = None,
        personality_weight: float = 0.0,
        regenerate: bool = False,
    ) -> AsyncIterator[ChatEvent]:
        """Sources · Token* · (Reset · Token*) · Done, or a final Error.

        A refused request (empty question, weight outside [0, 1] or NaN, a conversation
        id that is not a UUID, an unknown creator, nothing to regenerate) yields one
        `Error` and stores nothing. `regenerate=True` re-answers the conversation's last
        question (`query` is ignored) with the current creator and weight, adding a new
        version of the answer to that turn.
        """
        from tui.services import transcripts
        from tui.services.history import validate_conversation_id

        start = time.monotonic()
        # 1. Validate.
        try:
            weight = validate_weight(personality_weight)
            if regenerate and conversation_id is None:
                raise ValueError("regenerate needs the conversation to regenerate in")
            cid = validate_conversation_id(conversation_id)
            if not regenerate:
                if not isinstance(query, str) or not query.strip():
                    raise ValueError("the question is empty")
                query = clean_text(query).strip()
                if len(query) > MAX_QUERY_CHARS:
                    raise ValueError(f"the question is longer than {MAX_QUERY_CHARS} characters")
            creator_info = None
            if creator:
                creator_info = await self.creator_profile(creator)
                if creator_info is None:
                    raise ValueError(f"unknown creator {creator!r}")
        except ValueError as exc:
            yield Error(f"Cannot ask: {exc}")
            return
        except Exception:  # noqa: BLE001 - the creator lookup needs the database
            logger.exception("chat_creator_lookup_error creator=%r", creator)
            yield Error("Cannot ask: the knowledge base is not available")
            return
        creator_slug = creator_info["slug"] if creator_info else None

        # 2. The transcript: the question now, the answer when it ends.
        handle = None
        if regenerate:
            try:
                handle = await transcripts.start_regeneration(
                    self.db, cid, creator_slug=creator_slug, personality_weight=weight,
                    user_id=self.user_id,
                )
            except LookupError:
                yield Error("Nothing to regenerate: this conversation has no question yet")
                return
            except Exception:  # noqa: BLE001 - the archive must not break an answer
                logger.exception("chat_transcript_error cid=%s", cid)
                yield Error("Cannot regenerate: the transcript archive is not available")
                return
            query = handle.question
        else:
            try:
                handle = await transcripts.start_turn(self.db, cid, query, creator_slug, weight,
                                                      user_id=self.user_id)
            except Exception:  # noqa: BLE001
                logger.exception("chat_transcript_error cid=%s", cid)

        state = _Turn(query=query, cid=cid, creator_slug=creator_slug, handle=handle, start=start)
        state.regenerate = regenerate
        try:
            async with contextlib.aclosing(
                self._answer(state, creator_info, weight, regenerate)
            ) as events:
                async for event in events:
                    yield event
        except (asyncio.CancelledError, GeneratorExit):
            # The model's HTTP stream is already closed (aclosing above, innermost first).
            if not state.settled:
                state.status = "cancelled"
                await _shielded(self._settle(state))
            raise
        except Exception as exc:  # noqa: BLE001 - one place turns surprises into an Error event
            logger.exception("chat_unexpected_error cid=%s", cid)
            state.status = "failed"
            state.error = f"Unexpected failure ({type(exc).__name__})"
            if not state.settled:
                await _shielded(self._settle(state))
            yield Error(state.error)
            return
        if state.status == "answered":
            yield state.done
        elif state.error:
            yield Error(state.error, kind=state.error_kind)

    async def _answer(
        self, st: _Turn, creator_info: dict[str, Any] | None, weight: float, regenerate: bool
    ) -> AsyncIterator[ChatEvent]:
        # 3. Memory.
        try:
            history = await self.history.load(st.cid)
        except Exception:  # noqa: BLE001 - a lost memory must not lose the answer
            logger.warning("chat_history_load_error cid=%s", st.cid, exc_info=True)
            history = []
        if regenerate and len(history) >= 2 and history[-2].get("content") == st.query:
            history = history[:-2]  # the answer being replaced is not context for itself

        # 4. Search; the numbering is fixed here and saved with the answer.
        try:
            result = await self.search.search(
                st.query, scope="all", limit=MAX_CONTEXT_SOURCES, db=self.db,
                creator=st.creator_slug,
            )
        except Exception:  # noqa: BLE001
            logger.exception("chat_search_error cid=%s", st.cid)
            st.status, st.error = "failed", "Search failed: the knowledge base could not be searched"
            await self._settle(st)
            return
        if result.get("cascade_tier") == "none" and history:
            # a follow-up ("and the release time?") is about what the conversation is about
            previous = next((m.get("content") for m in reversed(history)
                             if m.get("role") == "user" and isinstance(m.get("content"), str)), "")
            if previous:
                try:
                    again = await self.search.search(
                        f"{previous}\n{st.query}", scope="all", limit=MAX_CONTEXT_SOURCES,
                        db=self.db, creator=st.creator_slug,
                    )
                    if again.get("cascade_tier") != "none":
                        result = again
                except Exception:  # noqa: BLE001 - the first search's answer stands
                    logger.warning("chat_followup_search_error cid=%s", st.cid, exc_info=True)
        items = list(result.get("items") or [])[:MAX_CONTEXT_SOURCES]
        st.cascade_tier = str(result.get("cascade_tier") or "")
        st.items = items  # with their section text, for the claim check
        st.sources = build_sources(items)
        yield Sources(st.sources)

        st.creator_detected = result.get("creator_detected")
        if st.cascade_tier == "none" and not getattr(
            self.settings, "answer_without_sources", False
        ):
            # Nothing in the KB is about this: say so, name what it does cover, and spend
            # no model call on an answer that would have no sources.
            st.run.model = NO_SOURCES_MODEL
            for piece in digest_tokens(no_sources_message(result.get("nearest") or [])):
                st.run.text += piece
                yield Token(piece)
            st.status = "answered"
            await self._settle(st)
            return

        # 5. Prompt.
        system_prompt = await self.system_prompt(items, creator_info, weight)
        messages = build_messages(system_prompt, history, st.query)
        st.prompt_chars = sum(len(m["content"]) for m in messages)

        # 6. Stream.
        run = st.run
        if not self.llm.configured:
            run.model = OFFLINE_MODEL
            for piece in digest_tokens(offline_digest(st.query, items)):
                run.text += piece
                yield Token(piece)
                await asyncio.sleep(0)
        else:
            run.model = self.llm.primary_model
            last_save = time.monotonic()
            try:
                async with contextlib.aclosing(
                    self.llm.stream(
                        messages,
                        temperature=temperature_for(weight),
                        max_tokens=MAX_TOKENS,
                        completion=run,
                        max_chars=self.max_answer_chars,
                    )
                ) as stream:
                    async for event in stream:
                        yield event
                        if (
                            st.handle is not None
                            and time.monotonic() - last_save >= PARTIAL_SAVE_INTERVAL
                        ):
                            last_save = time.monotonic()
                            await self._save_partial(st)
            except LLMError as exc:
                st.status, st.error = "failed", str(exc)
                st.error_kind = "setup" if exc.setup else ""
                await self._settle(st)
                return

        # 7. Settle.
        st.status = "answered"
        await self._settle(st)

    async def _save_partial(self, st: _Turn) -> None:
        """The usage row ("incomplete", estimated) and the answer so far to the archive,
        so that a process killed now still leaves both, each once.

        The usage row goes first: a kill between the two writes then leaves the request
        counted with a slightly older partial answer, never a saved answer whose
        request the usage log does not know of."""
        from tui.services import transcripts

        if st.run.reached_model:
            await self._write_usage(st, usage=None, status="incomplete",
                                    latency_ms=(time.monotonic() - st.start) * 1000)
        try:
            await transcripts.save_partial(self.db, st.handle, st.run.text)
        except Exception:  # noqa: BLE001
            logger.warning("chat_transcript_partial_error cid=%s", st.cid, exc_info=True)

    async def _write_usage(
        self, st: _Turn, *, usage: dict[str, Any] | None, status: str, latency_ms: float
    ) -> None:
        """The turn's usage row: written the first time, brought up to date after."""
        from tui.services.usage import write_usage

        st.usage_row = await write_usage(
            self.db, row_id=st.usage_row, query=st.query, creator_slug=st.creator_slug,
            conversation_id=st.cid, usage=usage, prompt_chars=st.prompt_chars,
            completion_chars=len(st.run.text), cascade_tier=st.cascade_tier,
            model=st.run.model or "", fallback_used=st.run.fallback_used,
            latency_ms=latency_ms, status=status, user_id=self.user_id,
            secrets=(getattr(self.settings, "llm_api_key", None),),
        )

    async def _settle(self, st: _Turn) -> None:
        """Memory, transcript, usage and the Done event for a finished, failed or cancelled turn."""
        from tui.services import transcripts
        from tui.services.usage import normalise_usage

        # Before `settled`: cancelled during the check, the turn is settled as cancelled.
        # The "nothing on this" reply is ours, not an answer: its topic list makes no claims.
        checked = st.status == "answered" and st.run.model != NO_SOURCES_MODEL
        claims = await self._check_claims(st) if checked else None
        st.settled = True
        run = st.run
        latency_ms = (time.monotonic() - st.start) * 1000
        model = run.model or ""
        if run.model in (OFFLINE_MODEL, NO_SOURCES_MODEL):
            tokens, estimated = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, False
        else:
            tokens, estimated = normalise_usage(run.usage, st.prompt_chars, len(run.text))
        usage = {**tokens, "estimated": estimated}
        cited, invalid = find_citations(run.text, len(st.sources))

        if st.status == "answered":
            try:
                if st.regenerate:
                    # The regenerated answer replaces the old one in what the model sees.
                    await self.history.append(st.cid, st.query, run.text, replace_last=True)
                else:
                    await self.history.append(st.cid, st.query, run.text)
            except Exception:  # noqa: BLE001
                logger.warning("chat_history_save_error cid=%s", st.cid, exc_info=True)
        if st.handle is not None:
            try:
                await transcripts.finish_turn(
                    self.db, st.handle, run.text, sources=st.sources, model=model or None,
                    cascade_tier=st.cascade_tier, usage=usage, status=st.status,
                    fallback_used=run.fallback_used, latency_ms=latency_ms, error=st.error,
                    claims=claims,
                )
            except Exception:  # noqa: BLE001
                logger.warning("chat_transcript_save_error cid=%s", st.cid, exc_info=True)
        if run.reached_model or run.failures:
            # A model that could not even be connected to still gets a "failed" row (zero
            # tokens: nothing was processed), so every attempt to use a model is counted.
            # The row written while the answer streamed, if any, is brought up to date.
            reported = run.usage if run.reached_model else {
                "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            await self._write_usage(st, usage=reported, status=st.status, latency_ms=latency_ms)
        logger.info(
            "chat_%s cid=%s tier=%s sources=%d model=%s fallback=%s latency_ms=%.1f tokens=%d",
            st.status, st.cid, st.cascade_tier, len(st.sources), model, run.fallback_used,
            latency_ms, tokens["total_tokens"],
        )
        st.done = Done(
            cascade_tier=st.cascade_tier,
            conversation_id=st.cid,
            fallback_used=run.fallback_used,
            model=model,
            usage=usage,
            latency_ms=latency_ms,
            cited=cited,
            invalid_citations=invalid,
            truncated=run.truncated,
            turn=st.handle.turn if st.handle is not None else None,
            message_id=st.handle.assistant_message_id if st.handle is not None else None,
            claims=claims,
            creator_detected=st.creator_detected,
        )

    async def _check_claims(self, st: _Turn) -> dict[str, Any] | None:
        """The finished answer's claim check, in a thread (CPU work of a few ms to tens of
        ms); None when it fails, which never fails the answer."""
        from tui.services.claims import check_claims

        try:
            report = await asyncio.to_thread(
                check_claims, st.run.text, st.items, scorer=self.claim_scorer)
        except Exception:  # noqa: BLE001
            logger.warning("chat_claims_error cid=%s", st.cid, exc_info=True)
            return None
        return report.as_dict()


class _Turn:
    """The mutable state of one request, read by `_settle` whatever way it ends."""

    def __init__(self, *, query: str, cid: str, creator_slug: str | None, handle, start: float):
        self.query = query
        self.cid = cid
        self.creator_slug = creator_slug
        self.handle = handle
        self.start = start
        self.cascade_tier = ""
        self.sources: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        self.prompt_chars = 0
        self.run = Completion()
        self.status = "failed"
        self.error: str | None = None
        self.error_kind = ""  # Error.kind
        self.done: Done | None = None
        self.settled = False
        self.regenerate = False
        self.usage_row: int | None = None  # the usage row written while streaming
        self.creator_detected: dict[str, str] | None = None


async def _shielded(coro) -> None:
    """Run bookkeeping to the end even if the consumer cancels again meanwhile."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
    except Exception:  # noqa: BLE001
        logger.exception("chat_settle_error")

