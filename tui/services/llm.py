"""Model clients: an OpenAI-compatible primary and fallback, and the offline digest.

`ModelRouter(settings).stream(messages, temperature=..., completion=run)` yields
`Token` events from the first model that answers, and a `Reset` when the primary
fails after tokens were sent and the fallback restarts the answer. `run` (a
`Completion`) is filled as it goes — text, the model serving, usage, whether a
model was reached — so the caller can account for a failed or cancelled answer.
When every model fails it raises `LLMError` with a one-line, key-free message.

Failure handling:
* both clients use `max_retries=0` and an httpx2 `Timeout` with connect =
  `settings.llm_connect_timeout` (0.4 s) and read = `settings.llm_read_timeout`:
  the openai defaults (2 retries with back-off) take ~1.4 s to give up on a
  refused port; we fall back at once instead;
* a model that sends no content within `settings.llm_first_token_timeout`
  (request, headers and first token together) has failed;
* fall back on connection errors, timeouts, HTTP 5xx and 429, a malformed chunk,
  an error object inside the stream, a stream that ends without `[DONE]`, and an
  empty answer;
  any other HTTP status (400, 401, 404 …) is a configuration problem and is
  reported without trying the fallback;
* the answer is capped at `MAX_ANSWER_CHARS`: past it the stream is closed and
  `Completion.truncated` is set, so a runaway model cannot exhaust memory;
* C0/C1 control characters except `\\n` and `\\t` (so ESC, CR, BEL, NUL …) are
  removed from every token: an escape sequence arrives as harmless text.

Cancelling the consumer closes the HTTP response (and so the connection) at
once: every generator here is closed in turn, innermost first.

One topic, where an answer's text comes from (a model server, or the offline digest that
stands in for one and streams the same way), hence its length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui.config import Settings, redact_url
from tui.services.diagnose import html_reply_problem
from tui.services.events import Reset, Token

logger = logging.getLogger("chrysopedia.llm")

MAX_TOKENS = 2048
MAX_ANSWER_CHARS = 100_000
OFFLINE_MODEL = "offline-digest"

# C0 controls except TAB and LF, DEL, and C1 controls.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Key-shaped text a server may echo back ("Incorrect API key provided: sk-…").
_SECRET_LIKE = re.compile(r"\b(?:sk-[A-Za-z0-9_\-*]{8,}|Bearer\s+[A-Za-z0-9._\-*]{8,})")


def clean_text(text: str) -> str:
    """Text without C0/C1 control characters, keeping newlines and tabs."""
    return _CONTROL_CHARS.sub("", text)


class ModelFailure(Exception):
    """One model failed. `retryable` is false for configuration errors (HTTP 4xx but 429)."""

    def __init__(self, message: str, *, retryable: bool = True, reached: bool = True,
                 status: int | None = None, setup: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.reached = reached
        self.status = status  # the HTTP status, when the server answered with one
        self.setup = setup  # the server is misconfigured (e.g. not the API), not failing


class LLMError(Exception):
    """No model produced an answer; `str(exc)` is a one-line message fit for the user.

    `setup` is true when every model tried is misconfigured rather than failing (a web
    page where the API should be): the CLI exits 2 for it, as for any bad setting."""

    def __init__(self, message: str, *, setup: bool = False) -> None:
        super().__init__(message)
        self.setup = setup


@dataclass
class Endpoint:
    role: str  # "primary" | "fallback"
    model: str
    url: str  # for messages: redacted, or "the default OpenAI API"
    client: Any  # openai.AsyncOpenAI
    structured: bool = True  # False once the server refused `response_format` json_schema


@dataclass
class Completion:
    """What one answer's streaming produced so far (read it after success, failure or cancel)."""

    text: str = ""
    model: str | None = None  # the model serving (or that served) the answer
    reached_model: bool = False  # a model server received the request
    fallback_used: bool = False
    usage: dict[str, int] | None = None  # as reported by the server, else None
    truncated: bool = False
    finish_reason: str | None = None
    failures: list[str] = field(default_factory=list)
    rate_limited: bool = False  # a model answered HTTP 429 (the caller may back off and retry)
    structured: bool = False  # `complete()`: the answer was constrained by the JSON schema


def _client(settings: Settings, url: str | None):
    import httpx2
    import openai

    return openai.AsyncOpenAI(
        base_url=url or None,
        # Local servers need no key, but the client insists on one.
        api_key=settings.llm_api_key or "unused",
        max_retries=0,
        timeout=httpx2.Timeout(settings.llm_read_timeout, connect=settings.llm_connect_timeout),
    )


class ModelRouter:
    """Primary and fallback OpenAI-compatible clients, tried in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.endpoints: list[Endpoint] = []
        if not settings.model_configured:
            return
        self.endpoints.append(
            Endpoint("primary", settings.llm_model, _shown(settings.llm_api_url),
                     _client(settings, settings.llm_api_url))
        )
        if settings.llm_fallback_url or settings.llm_fallback_model:
            url = settings.llm_fallback_url or settings.llm_api_url
            self.endpoints.append(
                Endpoint("fallback", settings.llm_fallback_model or settings.llm_model,
                         _shown(url), _client(settings, url))
            )

    @property
    def configured(self) -> bool:
        return bool(self.endpoints)

    @property
    def primary_model(self) -> str:
        return self.endpoints[0].model if self.endpoints else OFFLINE_MODEL

    @property
    def fallback_model(self) -> str | None:
        return self.endpoints[1].model if len(self.endpoints) > 1 else None

    async def aclose(self) -> None:
        for ep in self.endpoints:
            with contextlib.suppress(Exception):
                await ep.client.close()

    def scrub(self, text: str) -> str:
        """`text` without the API key (or anything shaped like one)."""
        key = self.settings.llm_api_key
        if key:
            text = text.replace(key, "***")
        return _SECRET_LIKE.sub("***", text)

    async def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float,
        completion: Completion,
        max_tokens: int = MAX_TOKENS,
        max_chars: int = MAX_ANSWER_CHARS,
    ) -> AsyncIterator[Token | Reset]:
        """Tokens from the first model that answers; `Reset` before a restarted answer."""
        if not self.endpoints:
            raise LLMError("no model is configured")
        body = {
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        setup_failures = 0
        for index, ep in enumerate(self.endpoints):
            if index > 0:
                completion.fallback_used = True
                if completion.text:
                    # The view clears the partial answer; the fallback starts afresh.
                    yield Reset(reason=completion.failures[-1], model=ep.model)
            completion.model = ep.model
            completion.text = ""
            completion.usage = None
            completion.truncated = False
            try:
                async with contextlib.aclosing(
                    self._stream_endpoint(ep, body, completion, max_chars)
                ) as pieces:
                    async for piece in pieces:
                        yield Token(piece)
                return
            except ModelFailure as failure:
                note = self.scrub(f"{ep.role} model {ep.model!r} at {ep.url}: {failure.message}")
                completion.failures.append(note)
                setup_failures += failure.setup
                logger.warning("llm_failure %s", note)
                if not failure.retryable:
                    break
        tried = "; ".join(completion.failures)
        if len(self.endpoints) == 1:
            tried += " (no fallback model is configured)"
        raise LLMError(f"No model answered — {tried}",
                       setup=setup_failures == len(completion.failures))

    async def complete(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float,
        completion: Completion,
        max_tokens: int = MAX_TOKENS,
        json_schema: dict[str, Any] | None = None,
        schema_name: str = "answer",
    ) -> str:
        """One whole (non-streamed) answer from the first model that gives one.

        With `json_schema`, the request asks for structured output
        (`response_format` json_schema); a server that refuses it with HTTP 400 is
        asked again without it, and not asked for it again by this router (the
        caller then asks for JSON in the prompt and parses tolerantly). Failures
        fall back as `stream()` does; `completion.rate_limited` tells a caller
        that HTTP 429 was among them. Raises `LLMError` when no model answers.
        """
        if not self.endpoints:
            raise LLMError("no model is configured")
        body: dict[str, Any] = {
            "messages": list(messages), "temperature": temperature, "max_tokens": max_tokens,
        }
        for index, ep in enumerate(self.endpoints):
            completion.fallback_used = index > 0
            completion.model = ep.model
            try:
                return await self._complete_endpoint(ep, body, completion, json_schema, schema_name)
            except ModelFailure as failure:
                completion.rate_limited = completion.rate_limited or failure.status == 429
                note = self.scrub(f"{ep.role} model {ep.model!r} at {ep.url}: {failure.message}")
                completion.failures.append(note)
                logger.warning("llm_failure %s", note)
                if not failure.retryable:
                    break
        tried = "; ".join(completion.failures)
        if len(self.endpoints) == 1:
            tried += " (no fallback model is configured)"
        raise LLMError(f"No model answered — {tried}")

    async def _complete_endpoint(
        self, ep: Endpoint, body: dict[str, Any], completion: Completion,
        json_schema: dict[str, Any] | None, schema_name: str,
    ) -> str:
        limit = self.settings.llm_first_token_timeout + self.settings.llm_read_timeout
        while True:
            structured = json_schema is not None and ep.structured
            extra: dict[str, Any] = {}
            if structured:
                extra["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": schema_name, "schema": json_schema, "strict": True}}
            try:
                async with asyncio.timeout(limit):
                    response = await ep.client.chat.completions.create(
                        model=ep.model, **body, **extra
                    )
            except TimeoutError:
                completion.reached_model = True
                raise ModelFailure(f"no answer within {limit:g} s") from None
            except Exception as exc:  # noqa: BLE001 - classified, never shown raw
                failure = self._classify(exc)
                completion.reached_model = completion.reached_model or failure.reached
                if structured and failure.status == 400:
                    # This server does not do structured output: ask for JSON in words.
                    ep.structured = False
                    continue
                raise failure from None
            completion.reached_model = True
            completion.structured = structured
            try:
                choice = response.choices[0]
                text = choice.message.content
            except (AttributeError, IndexError, TypeError):
                raise ModelFailure("malformed answer (no choices)") from None
            if not isinstance(text, str) or not text.strip():
                raise ModelFailure("the model returned an empty answer")
            usage = getattr(response, "usage", None)
            counts = {
                k: getattr(usage, k, None)
                for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            }
            if all(isinstance(v, int) and not isinstance(v, bool) for v in counts.values()):
                completion.usage = counts  # type: ignore[assignment]
            completion.finish_reason = getattr(choice, "finish_reason", None)
            completion.text = clean_text(text)
            return completion.text

    async def _stream_endpoint(
        self, ep: Endpoint, body: dict[str, Any], completion: Completion, max_chars: int
    ) -> AsyncIterator[str]:
        limit = self.settings.llm_first_token_timeout
        # The history goes in `extra_body`, which the SDK merges into the request as it is:
        # its typed transform of `messages` walks every message of the history before the
        # first token (docs/BENCHMARKS.md, "The history past the SDK's transform"), and
        # leaves our plain {"role", "content"} strings unchanged anyway.
        params = {key: value for key, value in body.items() if key != "messages"}
        manager = ep.client.chat.completions.with_streaming_response.create(
            model=ep.model, messages=[], extra_body={"messages": body["messages"]}, **params)
        entered = False
        try:
            try:
                async with asyncio.timeout(limit):
                    response = await manager.__aenter__()
                    entered = True
                    completion.reached_model = True
                    if "html" in response.headers.get("content-type", "").lower():
                        raise ModelFailure(html_reply_problem(self.settings, ep.role), setup=True)
                    pieces = self._content(response, completion)
                    # No yield happens inside this deadline: it bounds only our own awaits.
                    first = await anext(pieces, None)
            except TimeoutError:
                completion.reached_model = True
                raise ModelFailure(f"no token within {limit:g} s (first-token timeout)") from None
            except Exception as exc:  # noqa: BLE001 - classified, never shown raw
                failure = self._classify(exc, ep.role)
                completion.reached_model = completion.reached_model or failure.reached
                raise failure from None
            if first is None:
                # [DONE] without a word: as useless as a failure, and the fallback may do better.
                raise ModelFailure("the model returned an empty answer")
            async with contextlib.aclosing(pieces):
                piece: str | None = first
                while piece is not None:
                    room = max_chars - len(completion.text)
                    if len(piece) >= room:
                        piece = piece[:room]
                        completion.truncated = True
                    completion.text += piece
                    if piece:
                        yield piece
                    if completion.truncated:
                        return
                    piece = await anext(pieces, None)
        finally:
            if entered:
                # Closing the response closes the connection: the server sees it at once.
                with contextlib.suppress(Exception):
                    await manager.__aexit__(None, None, None)

    async def _content(self, response: Any, completion: Completion) -> AsyncIterator[str]:
        """Non-empty, cleaned content fragments of an SSE body; ModelFailure on any fault."""
        import httpx2

        data_lines: list[str] = []
        done = False
        try:
            async for line in response.iter_lines():
                if line == "":
                    if not data_lines:
                        continue
                    data, data_lines = "\n".join(data_lines), []
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    text = clean_text(self._parse_chunk(data, completion))
                    if text:
                        yield text
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                if name == "data":
                    data_lines.append(value[1:] if value.startswith(" ") else value)
        except httpx2.TimeoutException:
            raise ModelFailure(
                f"no data for {self.settings.llm_read_timeout:g} s (read timeout)"
            ) from None
        except httpx2.TransportError as exc:
            raise ModelFailure(f"the connection dropped mid-answer ({type(exc).__name__})") from None
        if not done and "\n".join(data_lines).strip() == "[DONE]":
            done = True  # a final event without its blank line
        if not done:
            raise ModelFailure("the stream ended before [DONE]")

    def _parse_chunk(self, data: str, completion: Completion) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ModelFailure("malformed chunk (not JSON)") from None
        if not isinstance(chunk, dict):
            raise ModelFailure("malformed chunk (not an object)")
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else error
            raise ModelFailure(f"the server reported an error mid-stream: {str(message)[:200]}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            counts = {
                k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            }
            if all(isinstance(v, int) and not isinstance(v, bool) for v in counts.values()):
                completion.usage = counts  # type: ignore[assignment]
        choices = chunk.get("choices")
        if choices is None:
            return ""
        if not isinstance(choices, list):
            raise ModelFailure("malformed chunk (choices is not a list)")
        if not choices:
            return ""
        choice = choices[0]
        if not isinstance(choice, dict):
            raise ModelFailure("malformed chunk (a choice is not an object)")
        if isinstance(choice.get("finish_reason"), str):
            completion.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        if delta is None:
            return ""
        if not isinstance(delta, dict):
            raise ModelFailure("malformed chunk (delta is not an object)")
        content = delta.get("content")
        if content is None:
            return ""
        if not isinstance(content, str):
            raise ModelFailure("malformed chunk (content is not text)")
        return content

    def _classify(self, exc: Exception, role: str = "primary") -> ModelFailure:
        import httpx2
        import openai

        if isinstance(exc, ModelFailure):
            return exc
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 429:
                return ModelFailure("rate limited (HTTP 429)", status=429)
            if status >= 500:
                return ModelFailure(f"server error (HTTP {status})", status=status)
            if "html" in exc.response.headers.get("content-type", "").lower():
                return ModelFailure(f"HTTP {status}: "
                                    + html_reply_problem(self.settings, role), setup=True)
            detail = self.scrub(_status_detail(exc))
            return ModelFailure(
                f"the request was refused (HTTP {status}{': ' + detail if detail else ''})",
                retryable=False, status=status,
            )
        cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc
        if isinstance(cause, httpx2.ConnectTimeout):
            return ModelFailure(
                f"could not connect within {self.settings.llm_connect_timeout:g} s", reached=False
            )
        if isinstance(cause, httpx2.ConnectError):
            return ModelFailure("could not connect (connection refused or unreachable)", reached=False)
        if isinstance(exc, openai.APITimeoutError) or isinstance(cause, httpx2.TimeoutException):
            return ModelFailure(f"no data for {self.settings.llm_read_timeout:g} s (read timeout)")
        if isinstance(exc, openai.APIConnectionError) or isinstance(cause, httpx2.TransportError):
            return ModelFailure("the connection failed")
        return ModelFailure(f"unexpected failure ({type(exc).__name__})")


def _status_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message", "") if isinstance(inner, dict) else str(inner)
    elif isinstance(body, str):
        message = body
    return clean_text(str(message)).replace("\n", " ")[:160]


def _shown(url: str | None) -> str:
    return redact_url(url) if url else "the default OpenAI API"


# -- the offline digest -----------------------------------------------------------

_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it its me my of on or "
    "so that the this to what when where which who why with you your should would "
    "use using get make there their they them about into than then also just".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[*_A-Z0-9])")
_MD_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)")


def split_sentences(text: str) -> list[str]:
    """Sentences of a Markdown body: list markers and headings become sentence breaks."""
    out: list[str] = []
    for raw_line in (text or "").splitlines():
        line = _MD_PREFIX.sub("", raw_line).strip()
        if not line:
            continue
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


_SUFFIXES = ("ations", "ation", "ness", "ings", "ing", "ers", "ies", "ied", "ed", "er", "es", "ly", "s")


def _stem(word: str) -> str:
    """A light suffix stripper: enough for "compressing" ~ "compression" ~ "compressor"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    for tail in ("ion", "or", "e"):
        if word.endswith(tail) and len(word) - len(tail) >= 4:
            return word[: -len(tail)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


_SPECIFIC = re.compile(r"\d")


def _best_sentence(sentences: list[str], weights: dict[str, float]) -> tuple[float, str] | None:
    """The sentence that covers the most (rarity-weighted) query terms; statements over
    questions, specific (with numbers) over vague, earlier over later."""
    best: tuple[float, str] | None = None
    for index, sentence in enumerate(sentences):
        if sentence.rstrip().endswith("?") or len(sentence) < 25:
            continue
        score = sum(weights.get(t, 0.0) for t in _terms(sentence))
        if score <= 0:
            continue
        score += 0.3 * bool(_SPECIFIC.search(sentence)) - 0.01 * index
        if best is None or score > best[0]:
            best = (score, sentence)
    return best


def offline_digest(query: str, items: Sequence[dict[str, Any]], *, max_sources: int = 5) -> str:
    """A short answer from the top sources' most relevant sentences, each cited [N].

    Numbering follows `items` (the same numbering as the sources list). Each of the
    top `max_sources` sources offers the statement from its section that covers the
    most query terms (rarer terms count more; questions are skipped); a source
    with no such sentence contributes its page summary's first sentence. The same
    sentence is never quoted twice.
    """
    wanted = _terms(query)
    pool = items[:max_sources]
    # Terms that few of the sources share say more about the question.
    doc_terms = [_terms(f"{i.get('section_body') or ''} {i.get('summary') or ''}") for i in pool]
    weights = {t: 1.0 / (1 + sum(t in d for d in doc_terms)) for t in wanted}
    lines: list[str] = []
    seen: set[str] = set()
    for number, item in enumerate(pool, start=1):
        found = _best_sentence(split_sentences(item.get("section_body") or ""), weights)
        if found is None:
            summary = split_sentences(item.get("summary") or "")
            if not summary:
                continue
            found = (0.0, summary[0])
        best = found[1]
        if best in seen:
            continue
        seen.add(best)
        if len(best) > 400:
            best = best[:400].rsplit(" ", 1)[0] + " …"
        title = clean_text(str(item.get("title") or "Untitled")).replace("\n", " ")
        heading = clean_text(str(item.get("section_heading") or "")).replace("\n", " ")
        label = f"{title} — {heading}" if heading else title
        lines.append(f"- **{label}**: {clean_text(best)} [{number}]")
    header = "*No model is configured — here are the most relevant passages from the knowledge base.*"
    if not lines:
        return header + "\n\nThe knowledge base has nothing on this question yet."
    footer = (
        "Configure a model (`CHRYSOPEDIA_LLM_API_URL` or `OPENAI_API_KEY`) for a written answer."
    )
    return header + "\n\n" + "\n".join(lines) + "\n\n" + footer


def digest_tokens(text: str) -> list[str]:
    """The digest cut into word-sized tokens (whitespace kept), to stream like a model."""
    return re.findall(r"\s*\S+|\s+", text)
