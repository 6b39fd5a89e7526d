"""Distillation: a model turns a transcript page into a technique page, checked before it is kept.

`Distiller(settings, cache=..., db=...)` sends each `Transcript` (one imported
video: its timed sentences and the video's length) to the configured model
through `ModelRouter.complete()` — primary, then fallback — asking for a page
that matches `PAGE_SCHEMA` (structured output where the server supports it,
else JSON asked for in words and parsed tolerantly: fenced, or with prose
around it). Nothing the model writes is trusted; `validate_page` checks:

* the JSON matches the schema (jsonschema);
* every section's time range lies inside the video and inside the span of the
  transcript, start before end;
* support, by the claim check of `tui/services/claims.py` (the one the answers get):
  each sentence of a section is a claim citing the transcript sentences of its range
  (widened by `RANGE_SLACK_S`), the rest of the transcript being a second source; at
  least `SECTION_SUPPORT_MIN` of a section's sentences must be supported by the range
  (a sentence said elsewhere in the video is reported with the time it is said), and
  every number of the section must be said in the range, with the claim check's
  equivalences (2k = 2 kHz = 2,000 Hz = "two thousand hertz", 8:1 = "eight to one").
  `check_section` gives the result per sentence (`SectionCheck`), which the report shows.

A page that fails is asked for once more, with the reasons; if it fails again
it is reported and the transcript stays as it is (the caller stores nothing).
A creator profile written by a model keeps only the signature phrases that
occur verbatim (case-insensitive) in the creator's transcripts; the others are
dropped and reported.

Each result (accepted or rejected) is cached by (transcript hash, model,
`PROMPT_VERSION`) in `DistillCache`, one file per key written atomically, so a
re-run asks the model nothing and a run killed halfway resumes where it
stopped. `distill_pages()` keeps `concurrency` requests in flight (a page's check and
storing run outside those slots, so they overlap the next request) and backs off
(exponentially, with jitter) when every model answers HTTP 429. Each model call
is one usage row with purpose "distill".

One topic, a transcript page to a checked technique page (prompt, schema, the model's
JSON, the check, the cache, the concurrent run), hence its length; the claim scoring is
claims.py's and the storing tui/db/distill_store.py's.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui.config import Settings
from tui.materials.model import TimedSentence
from tui.services.profile_stats import normalise

logger = logging.getLogger("chrysopedia.distill")

PROMPT_VERSION = "distill-page-1"
PROFILE_PROMPT_VERSION = "distill-profile-1"
CATEGORIES = (
    "Synthesis", "Sound Design", "Mixing", "Arrangement", "Mastering", "Sampling",
    "Audio Processing", "General",
)
SUMMARY_CHARS = 300
# A section is kept when at least this share of its sentences are supported by its range
# (the claim check's rule: bench/distill_check.py measures it), and all its numbers are said there.
SECTION_SUPPORT_MIN = 0.8
# What a cached verdict was checked by: a cached page of another check is asked for again.
CHECK_VERSION = "claims-1"
RANGE_SLACK_S = 2.0
EDGE_SLACK_S = 1.0
TRANSCRIPT_CHARS = 60_000  # the transcript sent to the model, at most (about 15k tokens)
MAX_BACKOFF_TRIES = 6

PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "summary", "tags", "topic_category", "sections"],
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 200},
        "summary": {"type": "string", "minLength": 10, "maxLength": SUMMARY_CHARS},
        "tags": {"type": "array", "maxItems": 12,
                 "items": {"type": "string", "minLength": 1, "maxLength": 40}},
        "topic_category": {"type": "string", "enum": list(CATEGORIES)},
        "sections": {
            "type": "array", "minItems": 1, "maxItems": 30,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["heading", "body", "start_time", "end_time"],
                "properties": {
                    "heading": {"type": "string", "minLength": 1, "maxLength": 200},
                    "body": {"type": "string", "minLength": 20, "maxLength": 6000},
                    "start_time": {"type": "number", "minimum": 0},
                    "end_time": {"type": "number", "minimum": 0},
                },
            },
        },
    },
}

PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "tone", "vocabulary", "style_markers"],
    "properties": {
        "summary": {"type": "string", "maxLength": 1200},
        "tone": {
            "type": "object", "additionalProperties": False,
            "required": ["teaching_style", "energy", "formality", "descriptors"],
            "properties": {
                "teaching_style": {"type": "string", "maxLength": 400},
                "energy": {"type": "string", "maxLength": 60},
                "formality": {"type": "string", "maxLength": 60},
                "descriptors": {"type": "array", "maxItems": 8,
                                "items": {"type": "string", "maxLength": 40}},
            },
        },
        "vocabulary": {
            "type": "object", "additionalProperties": False,
            "required": ["signature_phrases", "distinctive_terms", "sound_descriptions"],
            "properties": {
                key: {"type": "array", "maxItems": 15, "items": {"type": "string", "maxLength": 120}}
                for key in ("signature_phrases", "distinctive_terms", "sound_descriptions")
            },
        },
        "style_markers": {
            "type": "object", "additionalProperties": False,
            "required": ["explanation_approach", "uses_analogies", "audience_engagement", "pacing"],
            "properties": {
                "explanation_approach": {"type": "string", "maxLength": 400},
                "uses_analogies": {"type": "boolean"},
                "audience_engagement": {"type": "string", "maxLength": 400},
                "pacing": {"type": "string", "maxLength": 200},
            },
        },
    },
}

_LIMIT_KEYWORDS = {"minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"}


def wire_schema(schema: Any) -> Any:
    """The schema as sent to a server: without length and range keywords, which strict
    structured output does not accept everywhere (they are checked here instead)."""
    if isinstance(schema, dict):
        return {k: wire_schema(v) for k, v in schema.items() if k not in _LIMIT_KEYWORDS}
    if isinstance(schema, list):
        return [wire_schema(v) for v in schema]
    return schema


# -- what is distilled -------------------------------------------------------------


@dataclass
class Transcript:
    """One imported transcript page, as distillation needs it."""

    key: str  # the page's slug: what the result is stored under
    creator_slug: str
    creator_name: str
    title: str
    sentences: list[TimedSentence]
    duration: float | None = None  # the video's length, when known
    # What the sentences were read from, when that names them exactly (an imported file's
    # content hash): the hash is then known without reading them.
    identity: str | None = None

    @property
    def content_hash(self) -> str:
        """What a distilled page records it was made from: the identity when there is one
        (known without reading the sentences), else `text_hash`."""
        if self.identity is None:
            return self.text_hash
        h = hashlib.sha256()
        h.update(self.title.encode("utf-8", "replace") + b"\0")
        h.update(repr(self.duration).encode() + b"\0")
        h.update(b"identity\0" + self.identity.encode("utf-8", "replace"))
        return h.hexdigest()

    @property
    def text_hash(self) -> str:
        """The transcript as the model reads it (the cache key): title, length, sentences."""
        h = hashlib.sha256()
        h.update(self.title.encode("utf-8", "replace") + b"\0")
        h.update(repr(self.duration).encode() + b"\0")
        for s in self.sentences:
            h.update(f"{s.start:.3f}\t{s.end:.3f}\t{s.text}\n".encode("utf-8", "replace"))
        return h.hexdigest()

    @property
    def span(self) -> tuple[float, float]:
        if not self.sentences:
            return (0.0, 0.0)
        return (min(s.start for s in self.sentences), max(s.end for s in self.sentences))


@dataclass
class DistilledSection:
    heading: str
    body: str
    start_time: float
    end_time: float


@dataclass
class DistilledPage:
    title: str
    summary: str
    tags: list[str]
    topic_category: str
    sections: list[DistilledSection]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistilledPage:
        return cls(
            title=data["title"], summary=data["summary"], tags=list(data["tags"]),
            topic_category=data["topic_category"],
            sections=[DistilledSection(**s) for s in data["sections"]],
        )


@dataclass
class Outcome:
    """What became of one transcript."""

    key: str
    status: str  # "distilled" | "rejected" (kept raw, reasons given) | "failed" (no model answered)
    page: DistilledPage | None = None
    reasons: list[str] = field(default_factory=list)
    attempts: int = 0  # model calls made for it in this run (0: from the cache)
    cached: bool = False
    model: str | None = None
    tokens: int = 0
    raw: str | None = None  # the model's last answer, when it was rejected
    # each section's claim check (`SectionCheck.as_dict()`) of the page last checked
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = {"key": self.key, "status": self.status, "reasons": self.reasons,
               "attempts": self.attempts, "cached": self.cached, "model": self.model,
               "tokens": self.tokens}
        out["checks"] = self.checks
        if self.page is not None:
            out["page"] = asdict(self.page)
        return out


# -- prompt ------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def transcript_text(t: Transcript, limit: int = TRANSCRIPT_CHARS) -> str:
    """The transcript as the model reads it: one sentence a line, `[start-end]` in seconds."""
    lines: list[str] = []
    used = 0
    for s in t.sentences:
        line = f"[{s.start:.1f}-{s.end:.1f}] {s.text}"
        used += len(line) + 1
        if used > limit:
            break
        lines.append(line)
    return "\n".join(lines)


SYSTEM_PROMPT = (
    "You turn a music-production video's transcript into a technique page for a knowledge "
    "base. Write only what the creator says in the transcript: keep their numbers, settings, "
    "plugin and parameter names and the order of steps; invent nothing, add no advice of your "
    "own. Each section covers one part of the video and gives the time range (in seconds, "
    "from the transcript's [start-end] marks) that its body is written from; write its body "
    "mostly in the creator's own words, as clear instructions, without filler."
)


def page_messages(t: Transcript) -> list[dict[str, str]]:
    duration = f"{t.duration:.0f} s" if t.duration else "unknown"
    spec = (
        f"Answer with one JSON object: title (the technique, not the video's clickbait), "
        f"summary (at most {SUMMARY_CHARS} characters), tags (up to 12 short lower-case "
        f"terms), topic_category (one of: {', '.join(CATEGORIES)}), sections (a list of "
        "objects with heading, body, start_time, end_time; times in seconds). Answer with "
        "the JSON object only, no prose around it."
    )
    user = (
        f"Video: {t.title}\nCreator: {t.creator_name}\nLength: {duration}\n\n"
        f"{spec}\n\nTranscript:\n{transcript_text(t)}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def retry_messages(first: list[dict[str, str]], answer: str, reasons: list[str]) -> list[dict[str, str]]:
    listed = "\n".join(f"- {r}" for r in reasons)
    return [*first, {"role": "assistant", "content": answer[:20_000]}, {"role": "user", "content": (
        "That page was rejected by the checks before storing:\n"
        f"{listed}\nWrite the whole page again, fixing these: every section's body only from "
        "the transcript sentences inside its time range, numbers exactly as said there, "
        "times inside the video."
    )}]


# -- parsing -----------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n\s*```", re.S)


def parse_json_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in a model's answer: the whole text, a fenced block, or the first
    balanced {...} with prose around it. (object, None) or (None, reason)."""
    candidates = [text.strip()]
    candidates += [m.group(1) for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        with contextlib.suppress(ValueError):
            obj, _end = json.JSONDecoder().raw_decode(text[start:])
            if isinstance(obj, dict):
                return obj, None
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj, None
        return None, f"the answer is JSON but not an object ({type(obj).__name__})"
    return None, "the answer is not JSON (no parsable object found)"


# -- validation --------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def _range_sentences(t: Transcript, start: float, end: float) -> list[TimedSentence]:
    lo, hi = start - RANGE_SLACK_S, end + RANGE_SLACK_S
    return [s for s in t.sentences if s.end >= lo and s.start <= hi]


def _said(sentences: Sequence[TimedSentence]) -> tuple[str, list[int]]:
    """Sentences as a claim-check source: one a line, and where each line starts. The
    full stop a caption reader adds at a pause goes: a line break parts sentences anyway,
    and a number cut from its unit by the pause ("set the attack to 10." / "Milliseconds
    so...") is read whole again in the window of the two lines."""
    starts, lines, at = [], [], 0
    for s in sentences:
        text = " ".join(s.text.split())
        if text.endswith(".") and not text.endswith(".."):
            text = text[:-1]
        starts.append(at)
        lines.append(text)
        at += len(text) + 1
    return "\n".join(lines), starts


class _SaidTranscript:
    """A transcript read once for the checks of all its sections: its `_said` text and line
    starts, its sentences' times for finding a range by bisect, and (on first need) the
    whole text prepared as one claim-check source, of which each range is a part (its
    sentences' words, numbers and windows are not read again for each section)."""

    def __init__(self, t: Transcript) -> None:
        self.t = t
        self.text, self.starts = _said(t.sentences)
        self.begins = [s.start for s in t.sentences]
        self.ends = [s.end for s in t.sentences]
        self.ordered = all(a <= b for a, b in zip(self.begins, self.begins[1:], strict=False)) and all(
            a <= b for a, b in zip(self.ends, self.ends[1:], strict=False))
        self._source: Any = None

    def source(self) -> Any:
        if self._source is None:
            from tui.services.claims import prepare_source

            self._source = prepare_source(self.t.title, self.text)
        return self._source

    def lines(self, start: float, end: float) -> tuple[int, int] | None:
        """The range's sentences as lines [a, b) of the text, or None when they are not a
        run of lines (sentences out of time order)."""
        lo, hi = start - RANGE_SLACK_S, end + RANGE_SLACK_S
        if self.ordered:
            return bisect.bisect_left(self.ends, lo), max(
                bisect.bisect_left(self.ends, lo), bisect.bisect_right(self.begins, hi))
        picked = [i for i, s in enumerate(self.t.sentences) if s.end >= lo and s.start <= hi]
        if picked and picked[-1] - picked[0] + 1 != len(picked):
            return None
        return (picked[0], picked[-1] + 1) if picked else (0, 0)

    def part(self, a: int, b: int) -> tuple[str, Any]:
        """Lines [a, b) (a < b): their text and the claim-check source of it."""
        from tui.services.claims import source_part

        first = self.starts[a]
        stop = self.starts[b] - 1 if b < len(self.starts) else len(self.text)
        return self.text[first:stop], source_part(self.source(), first, stop)


def _said_at(sentences: Sequence[TimedSentence], starts: list[int], span: Any) -> str | None:
    """When the words of a span of `_said` text are said: "2:44-3:41" (the sentences it
    covers: one, or two in a row)."""
    if not span or not sentences:
        return None
    i = max(0, bisect.bisect_right(starts, span[0]) - 1)
    j = max(i, bisect.bisect_right(starts, max(span[0], span[1] - 1)) - 1)
    return f"{_clock(sentences[i].start)}-{_clock(sentences[j].end)}"


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class SectionCheck:
    """The claim check of one distilled section against its range (`tui/services/claims.py`):
    its sentences are claims citing the transcript sentences of its range; the whole
    transcript is a second source, so a sentence said elsewhere in the video is told apart
    from one said nowhere."""

    heading: str
    start_time: float
    end_time: float
    claims: int = 0
    supported: int = 0
    numbers_missing: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)  # per claim, see `check_section`
    problems: list[str] = field(default_factory=list)  # why it is rejected: empty when kept

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def share(self) -> float:
        return self.supported / self.claims if self.claims else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"heading": self.heading, "start_time": self.start_time, "end_time": self.end_time,
                "claims": self.claims, "supported": self.supported, "ok": self.ok,
                "numbers_missing": self.numbers_missing, "problems": self.problems,
                "items": self.items}


def check_section(t: Transcript, heading: str, body: str, start: float, end: float,
                  label: str = "section", *, said_t: _SaidTranscript | None = None) -> SectionCheck:
    """Check a section's body against the transcript sentences of its range (widened by
    RANGE_SLACK_S) with the claim check. Rejected (problems given) when a number of it is
    not said in the range (2k = 2 kHz = 2,000 Hz = "two thousand hertz"), or when fewer
    than SECTION_SUPPORT_MIN of its sentences are supported by the range. Each item:
    `{"start", "end"}` of the sentence in the body, `status` ("supported": said in the
    range; "outside": said elsewhere in the video, `said_at` the time; "unsupported"),
    `score`, `span` (`[start, end]` of the supporting words in `range_text`), `said_at`.
    `said_t`: the transcript as read for an earlier section (`check_page` reads it once)."""
    from tui.services.claims import check_claims, same_quantity, written_quantities

    said_t = said_t if said_t is not None and said_t.t is t else _SaidTranscript(t)
    lines = said_t.lines(start, end)
    if lines is not None and lines[0] < lines[1]:
        a, b = lines
        said = t.sentences[a:b]
        range_text, source = said_t.part(a, b)
        range_starts = [x - said_t.starts[a] for x in said_t.starts[a:b]]
        report = check_claims(body, prepared=[source], cite=(1,))
    else:  # no sentence in the range, or its sentences are not a run of the transcript
        said = _range_sentences(t, start, end)
        range_text, range_starts = _said(said)
        report = check_claims(body, [{"title": t.title, "section_body": range_text}], cite=(1,))
    out = SectionCheck(heading, start, end)
    said_numbers: list[Any] | None = None  # read only for a claim whose number is missing
    unsupported = []
    for claim in report.claims:
        own = next((s for s in claim.support if s.number == 1), None)
        at = None
        if claim.status == "supported":
            status = "supported"
            at = _said_at(said, range_starts, own.span if own else None)
        else:
            # Said elsewhere in the video? The claim against the whole transcript (only
            # for the sentences the range does not support: the few, on a faithful page).
            status, at = _elsewhere(said_t, claim.text)
        out.claims += 1
        out.supported += status == "supported"
        if own is not None and not own.numbers_ok:
            if said_numbers is None:
                said_numbers = [q for q, _w in written_quantities(f"{t.title}\n{range_text}")]
            for q, written in written_quantities(claim.text):
                if not any(same_quantity(q, s) for s in said_numbers) and written not in out.numbers_missing:
                    out.numbers_missing.append(written)
        out.items.append({"start": claim.start, "end": claim.end, "status": status,
                          "score": round(own.score if own else 0.0, 3),
                          "span": list(own.span) if own and own.span and status == "supported" else None,
                          "said_at": at})
        if status != "supported":
            numbers_off = own is not None and not own.numbers_ok
            unsupported.append((claim, "number" if numbers_off and status != "outside" else status, at))
    for written in out.numbers_missing:
        out.problems.append(f"{label}: the number {written!r} is not said in its range")
    if out.claims and out.share < SECTION_SUPPORT_MIN:
        why = []
        for claim, status, at in unsupported[:3]:
            where = {"outside": f"said at {at}, outside its range",
                     "number": "a number of it is not said there"}.get(status, "not said in the transcript")
            why.append(f"“{_short(claim.text)}”: {where}")
        out.problems.append(
            f"{label}: not supported by its range: {out.supported} of its {out.claims} sentences "
            f"are said there (at least {SECTION_SUPPORT_MIN:.0%} needed); " + "; ".join(why))
    return out


def _elsewhere(said_t: _SaidTranscript, text: str) -> tuple[str, str | None]:
    """("outside", when it is said) when the whole transcript supports `text`, else
    ("unsupported", None)."""
    from tui.services.claims import check_claims

    found = check_claims(text, prepared=[said_t.source()], cite=(1,)).claims
    if found and found[0].status == "supported":
        return "outside", _said_at(said_t.t.sentences, said_t.starts, found[0].span)
    return "unsupported", None


def validate_page(data: Any, t: Transcript) -> tuple[DistilledPage | None, list[str]]:
    """(page, []) when every check passes, else (None, reasons): one line each."""
    page, reasons, _checks = check_page(data, t)
    return page, reasons


def check_page(data: Any, t: Transcript) -> tuple[DistilledPage | None, list[str], list[SectionCheck]]:
    """`validate_page`, with each section's claim check (`SectionCheck`: for the report,
    and stored with the page)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(PAGE_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        reasons = []
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.absolute_path) or "page"
            reasons.append(f"schema: {where}: {e.message[:200]}")
        return None, reasons, []
    reasons: list[str] = []
    checks: list[SectionCheck] = []
    first, last = t.span
    said_t: _SaidTranscript | None = None
    for i, sec in enumerate(data["sections"], start=1):
        start, end = float(sec["start_time"]), float(sec["end_time"])
        label = f"section {i} ({sec['heading'][:60]!r}, {_clock(start)}-{_clock(end)})"
        if end <= start:
            reasons.append(f"{label}: ends before it starts")
            continue
        if t.duration is not None and end > t.duration + EDGE_SLACK_S:
            reasons.append(f"{label}: ends after the video ({_clock(t.duration)})")
            continue
        if start < first - EDGE_SLACK_S or end > last + EDGE_SLACK_S:
            reasons.append(
                f"{label}: outside the transcript ({_clock(first)}-{_clock(last)})")
            continue
        said_t = said_t or _SaidTranscript(t)
        check = check_section(t, sec["heading"], sec["body"], start, end, label, said_t=said_t)
        checks.append(check)
        reasons.extend(check.problems)
    if reasons:
        return None, reasons, checks
    return DistilledPage.from_dict(data), [], checks


def check_profile(
    profile: dict[str, Any], transcripts: Iterable[Iterable[TimedSentence]]
) -> tuple[dict[str, Any], list[str]]:
    """The model's profile with only the signature phrases said verbatim in `transcripts`
    (case-insensitive); the reasons for each phrase dropped."""
    # Word for word, punctuation aside (auto-captions have none, and their sentence
    # breaks are guessed), so each transcript is one run of words.
    said = [f" {_spoken_words(' '.join(s.text for s in t))} " for t in transcripts]
    vocab = dict(profile.get("vocabulary") or {})
    kept, dropped = [], []
    for phrase in vocab.get("signature_phrases") or []:
        words = _spoken_words(phrase) if isinstance(phrase, str) else ""
        if words and any(f" {words} " in text for text in said):
            kept.append(phrase.strip())
        else:
            dropped.append(f"signature phrase {phrase!r} is not said in the transcripts: dropped")
    out = dict(profile)
    vocab["signature_phrases"] = kept
    out["vocabulary"] = vocab
    return out, dropped


def _spoken_words(text: str) -> str:
    return " ".join(_WORD.findall(normalise(text)))


def merge_profiles(measured: dict[str, Any] | None, written: dict[str, Any], model: str) -> dict[str, Any]:
    """The model's fields over the measured ones; `_source` says which is which."""
    out: dict[str, Any] = json.loads(json.dumps(measured or {}))
    source = dict(out.get("_source") or {})
    if isinstance(written.get("summary"), str) and written["summary"].strip():
        out["summary"] = written["summary"].strip()
        source["summary"] = "model"
    for section in ("tone", "vocabulary", "style_markers"):
        part = written.get(section)
        if not isinstance(part, dict):
            continue
        merged = dict(out.get(section) or {})
        for key, value in part.items():
            if value in ("", [], None):
                continue  # the model had nothing: a measured value stays
            merged[key] = value
            source[key] = "model"
        out[section] = merged
    out["_source"] = source
    out["_model"] = {"model": model, "prompt_version": PROFILE_PROMPT_VERSION}
    return out


# -- cache -------------------------------------------------------------------------


class DistillCache:
    """One JSON file per (transcript hash, model, prompt version), written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(content_hash: str, model: str, prompt_version: str = PROMPT_VERSION) -> str:
        return hashlib.sha256(f"{content_hash}\0{model}\0{prompt_version}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        os.replace(tmp, path)  # a kill leaves the old file or the new one, never half of one


# -- the distiller -----------------------------------------------------------------


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    tokens: int = 0
    distilled: int = 0
    rejected: int = 0
    failed: int = 0
    cached: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def tokens_left_estimate(self) -> int | None:
        asked = self.done - self.cached
        if asked <= 0:
            return None
        return round(self.tokens / asked * (self.total - self.done))


class Distiller:
    def __init__(
        self,
        settings: Settings,
        *,
        cache: DistillCache,
        db: Any = None,
        router: Any = None,
        concurrency: int = 4,
        backoff_base: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        from tui.services.llm import ModelRouter

        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings = settings
        self.cache = cache
        self.db = db
        self.router = router or ModelRouter(settings)
        self._own_router = router is None
        self.concurrency = concurrency
        self.backoff_base = backoff_base
        self._sleep = sleep
        # The model requests in flight: `concurrency` at most. A page's check, cache file and
        # storing run outside it, so the next page's request goes out meanwhile.
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def model(self) -> str:
        return self.router.primary_model

    async def aclose(self) -> None:
        if self._own_router:
            await self.router.aclose()

    async def _call(self, messages: list[dict[str, str]], *, creator: str, what: str,
                    schema: dict[str, Any], name: str) -> tuple[str | None, Any, str | None]:
        """(answer, completion, failure): one model call, retried with back-off on HTTP 429;
        each attempt is one usage row with purpose "distill". At most `concurrency` calls
        at a time; the back-off waits inside the slot (429s slow the whole run), the last
        attempt's usage row is written after it (a database write, tens of ms)."""
        async with self._slots:
            text, run, failure, last = await self._call_in_slot(
                messages, creator=creator, what=what, schema=schema, name=name)
        if last is not None:
            await self._usage(messages, run, what, creator, *last)
        return text, run, failure

    async def _call_in_slot(self, messages: list[dict[str, str]], *, creator: str, what: str,
                            schema: dict[str, Any], name: str) -> tuple[str | None, Any, str | None, Any]:
        """`_call`'s attempts; the last one's (latency_ms, status) is returned for its row."""
        from tui.services.llm import Completion, LLMError

        for attempt in range(MAX_BACKOFF_TRIES):
            run = Completion()
            began = time.monotonic()
            try:
                text = await self.router.complete(
                    messages, temperature=0.2, completion=run, max_tokens=4096,
                    json_schema=wire_schema(schema), schema_name=name)
            except LLMError as exc:
                latency = (time.monotonic() - began) * 1000
                if run.rate_limited and attempt + 1 < MAX_BACKOFF_TRIES:
                    await self._usage(messages, run, what, creator, latency, "failed")
                    delay = self.backoff_base * 2 ** attempt
                    await self._sleep(delay * random.uniform(1.0, 1.5))
                    continue
                return None, run, str(exc), (latency, "failed")
            return text, run, None, ((time.monotonic() - began) * 1000, "answered")
        return None, None, "rate limited", None  # pragma: no cover - the loop returns

    async def _usage(self, messages, run, what: str, creator: str, latency_ms: float,
                     status: str) -> None:
        if self.db is None or not run.reached_model:
            return
        from tui.services.usage import write_usage

        await write_usage(
            self.db, query=f"distill {what}", creator_slug=creator, usage=run.usage,
            prompt_chars=sum(len(m["content"]) for m in messages),
            completion_chars=len(run.text or ""), model=run.model or "",
            fallback_used=run.fallback_used, latency_ms=latency_ms,
            status=status, purpose="distill", secrets=(self.settings.llm_api_key,),
        )

    async def distill_one(self, t: Transcript) -> Outcome:
        key = DistillCache.key(t.text_hash, self.model)
        hit = self.cache.get(key)
        if hit is not None and hit.get("check") == CHECK_VERSION:
            page = DistilledPage.from_dict(hit["page"]) if hit.get("page") else None
            return Outcome(t.key, hit["status"], page, list(hit.get("reasons") or []), 0, True,
                           hit.get("model"), 0, checks=list(hit.get("checks") or []))
        # (a verdict of another check is asked again: the check decides what is kept)
        first = page_messages(t)
        messages = first
        outcome = Outcome(t.key, "failed")
        for attempt in (1, 2):
            text, run, failure = await self._call(
                messages, creator=t.creator_slug, what=t.key, schema=PAGE_SCHEMA,
                name="technique_page")
            outcome.attempts = attempt
            if run is not None:
                outcome.tokens += _total_tokens(run)
                outcome.model = run.model
            if text is None:
                outcome.status, outcome.reasons = "failed", [failure or "no answer"]
                return outcome  # not cached: a model that did not answer may answer next time
            data, problem = parse_json_object(text)
            # The check is pure Python (tens of ms a section): in a thread, so the other
            # pages' requests go on meanwhile.
            page, reasons, checks = ((None, [problem], []) if data is None
                                     else await asyncio.to_thread(check_page, data, t))
            outcome.checks = [c.as_dict() for c in checks]
            if page is not None:
                outcome.status, outcome.page, outcome.reasons = "distilled", page, []
                break
            outcome.status, outcome.reasons, outcome.raw = "rejected", reasons, text
            if attempt == 1:
                messages = retry_messages(first, text, reasons)
        self.cache.put(key, {
            "status": outcome.status, "reasons": outcome.reasons, "model": outcome.model,
            "page": asdict(outcome.page) if outcome.page else None,
            "prompt_version": PROMPT_VERSION, "transcript": t.key,
            "check": CHECK_VERSION, "checks": outcome.checks,
        })
        return outcome

    async def distill_pages(
        self,
        transcripts: Sequence[Transcript],
        *,
        on_done: Callable[[Outcome, Progress], Awaitable[None] | None] | None = None,
    ) -> list[Outcome]:
        """Every transcript distilled, `concurrency` model requests at a time; `on_done`
        after each one (where the caller stores the page: a page is finished when its call
        returns). A page's check and `on_done` run outside the request slots, so the model
        is kept busy meanwhile."""
        progress = Progress(total=len(transcripts))
        results: list[Outcome | None] = [None] * len(transcripts)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(transcripts)):
            queue.put_nowait(i)

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcome = await self.distill_one(transcripts[i])
                results[i] = outcome
                progress.done += 1
                progress.tokens += outcome.tokens
                progress.cached += outcome.cached
                setattr(progress, outcome.status, getattr(progress, outcome.status) + 1)
                if on_done is not None:
                    maybe = on_done(outcome, progress)
                    if asyncio.iscoroutine(maybe):
                        await maybe

        # Twice as many workers as model requests at a time: while one worker checks and
        # stores the page it got, another holds its request slot (the check is CPU, tens of
        # ms a page; without this every page's check added to the run's wall time).
        workers = [asyncio.create_task(worker())
                   for _ in range(min(2 * self.concurrency, len(transcripts)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return [r for r in results if r is not None]

    async def distill_profile(
        self, creator_slug: str, creator_name: str, transcripts: Sequence[Sequence[TimedSentence]],
        measured: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """(profile, reasons): the model's profile over the measured one, with every
        signature phrase checked against the transcripts; (None, reasons) when the model
        gave nothing usable (the measured profile stays)."""
        import jsonschema

        sample: list[str] = []
        budget = TRANSCRIPT_CHARS
        per = max(1, budget // max(1, len(transcripts)))
        for t in transcripts:
            text = " ".join(s.text for s in t)[:per]
            sample.append(text)
        h = hashlib.sha256("\n\n".join(sample).encode("utf-8", "replace")).hexdigest()
        key = DistillCache.key(h, self.model, PROFILE_PROMPT_VERSION)
        hit = self.cache.get(key)
        if hit is not None:
            return hit.get("profile"), list(hit.get("reasons") or [])
        messages = [
            {"role": "system", "content": (
                "You describe a music-production creator's voice from their own words, for "
                "an assistant that imitates it. Signature phrases must be copied exactly "
                "from the transcripts; describe only what the transcripts show.")},
            {"role": "user", "content": (
                f"Creator: {creator_name}\nAnswer with one JSON object: summary, tone "
                "(teaching_style, energy, formality, descriptors), vocabulary "
                "(signature_phrases, distinctive_terms, sound_descriptions), style_markers "
                "(explanation_approach, uses_analogies, audience_engagement, pacing).\n\n"
                "Transcripts:\n" + "\n\n".join(sample))},
        ]
        text, run, failure = await self._call(
            messages, creator=creator_slug, what=f"profile {creator_slug}", schema=PROFILE_SCHEMA,
            name="creator_profile")
        if text is None:
            return None, [failure or "no answer"]
        data, problem = parse_json_object(text)
        reasons: list[str] = []
        profile = None
        if data is None:
            reasons = [problem or "not JSON"]
        else:
            errors = list(jsonschema.Draft202012Validator(PROFILE_SCHEMA).iter_errors(data))
            if errors:
                reasons = [f"schema: {'/'.join(map(str, e.absolute_path)) or 'profile'}: "
                           f"{e.message[:200]}" for e in errors[:5]]
            else:
                checked, reasons = check_profile(data, transcripts)
                profile = merge_profiles(measured, checked, run.model or self.model)
        self.cache.put(key, {"profile": profile, "reasons": reasons})
        return profile, reasons


def _total_tokens(run: Any) -> int:
    from tui.services.usage import normalise_usage

    tokens, _estimated = normalise_usage(run.usage, 0, len(run.text or ""))
    return tokens["total_tokens"]
