"""The claim check: which sentences of an answer its cited sources support.

`check_claims(answer, sources, scorer=None) -> ClaimReport`. `sources` are the
answer's numbered sources in order (number N is `sources[N-1]`), each a dict
with the section text the answer was written from: `section_body`, and
`summary`, `title`, `section_heading` when known (a search item has them all).

1. The answer is split into claims: the sentences of its paragraphs, list items
   and table rows. Code blocks, headings and HTML are not claims; neither are
   questions, greetings, transitions ("Here is how:"), statements about the
   sources or the app ("The sources do not say"), reference lists ("Sources:",
   "[2] Title — Section"), and fragments too short to state anything. markdown-it finds the blocks (the parser the answer view
   renders with, so a claim is what the user sees as a sentence).
2. Each claim's citations `[N]` (a sentence that opens with a citation gives
   it to the sentence before: "... sustain. [2] Next"); in a list item a
   sentence without one takes the item's.
3. Each source gets a support score against the claim: the share of the
   claim's content words (rarer words across this answer's sources weigh more)
   found in the best window of the source (one sentence or two in a row; the
   page summary is one more window), with the page title and section heading
   counted in every window. Words match by Snowball stem and by the plainer
   forms search knows (punchy ~ punch). A claim's numbers must all be in the
   source (`2k` = `2 kHz` = `2,000 Hz`, `0.5 s` = `500 ms`, `-14 LUFS` = `14
   LUFS`; ratios keep their order, since FM's 1:2 and 2:1 differ; `4 to 1` =
   `4:1`); a source without one of them does not support the claim.
   An optional `scorer(claim, passages) -> [similarity 0..1]` (an embedding
   model) is averaged with the lexical score of each source's best window.
4. The class: `supported` (a cited source supports it), `misattributed` (none
   of the cited sources does, another source of the answer does: `source`
   names it), `unsupported` (no source does), `uncited` (no citation; a
   factual sentence).

Offsets: a claim's `start`/`end` index the answer text as given; a source span
indexes that source's `section_body` (or its `summary` when `field` says so),
so the source view can light exactly those characters.

One topic, the claim check, hence its length: splitting, number equivalences, windows
and scoring are its steps and are tuned together (tests/claims_eval.py).
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import snowballstemmer
from markdown_it import MarkdownIt

from tui.db.search_index import _WORD, fold  # words(): _WORD.findall, each folded
from tui.services.search import STOPWORDS, variants

__all__ = [
    "CLASSES",
    "SUPPORT_THRESHOLD",
    "Claim",
    "ClaimReport",
    "Quantity",
    "Scorer",
    "Support",
    "QUESTIONABLE",
    "check_claims",
    "check_saved_answer",
    "citation_span",
    "next_questionable",
    "next_questionable_across",
    "PreparedSource",
    "prepare_source",
    "source_part",
    "summary_line",
    "claim_segments",
    "quantities",
    "same_quantity",
    "spoken_value",
    "written_quantities",
]

CLASSES = ("supported", "misattributed", "unsupported", "uncited")
# A source supports a claim when this share of the claim's (weighted) content
# words is in one window of it and every number of the claim is in it.
SUPPORT_THRESHOLD = 0.6
# A number counts as this many content words in a window's score, so the span
# lands on the sentence holding the figure.
NUMBER_WEIGHT = 2.0
# A whole section's share of the claim counts this much against one window's.
SECTION_FACTOR = 0.85
# The check reads an answer up to MAX_CHECK_CHARS (cut at a blank line; a model's answer of
# MAX_TOKENS is about half that), at most MAX_CLAIMS claims, and a claim's text up to
# MAX_CLAIM_CHARS, so its cost stays bounded whatever a model sends; `unchecked_from` says
# where the check stopped.
MAX_CHECK_CHARS = 20_000
MAX_CLAIMS = 400
MAX_CLAIM_CHARS = 1500
# Weight of an embedding scorer's similarity against the lexical score.
SCORER_BLEND = 0.5

Scorer = Callable[[str, Sequence[str]], Sequence[float]]


# ── results ───────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Support:
    """How well source `number` supports a claim, and where."""

    number: int
    score: float
    numbers_ok: bool
    span: tuple[int, int] | None  # into the source's `field`
    field: str = "section_body"  # section_body | summary

    @property
    def supports(self) -> bool:
        return self.numbers_ok and self.score >= SUPPORT_THRESHOLD

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "score": round(self.score, 3),
            "numbers_ok": self.numbers_ok,
            "span": list(self.span) if self.span else None,
            "field": self.field,
        }


@dataclass(frozen=True)
class Claim:
    """One checked claim: where it is in the answer, what it cites, what backs it."""

    start: int
    end: int
    text: str
    kind: str  # sentence | item | row
    cited: tuple[int, ...]
    invalid: tuple[int, ...]
    status: str
    source: int | None  # the supporting source (for misattributed: the right one)
    span: tuple[int, int] | None  # the supporting words in that source's `field`
    field: str
    score: float
    reason: str
    support: tuple[Support, ...] = ()  # the cited sources, and the offered one

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "status": self.status,
            "cited": list(self.cited),
            "invalid_citations": list(self.invalid),
            "source": self.source,
            "source_span": list(self.span) if self.span else None,
            "source_field": self.field,
            "score": round(self.score, 3),
            "reason": self.reason,
            "support": [s.as_dict() for s in self.support],
        }


@dataclass(frozen=True)
class ClaimReport:
    claims: tuple[Claim, ...] = ()
    unchecked_from: int | None = None  # offset in the answer where the check stopped
    n_sources: int = 0

    def count(self, status: str) -> int:
        return sum(1 for c in self.claims if c.status == status)

    def summary(self) -> dict[str, int]:
        out = {"total": len(self.claims)}
        out.update({status: self.count(status) for status in CLASSES})
        return out

    def backed_by_source(self) -> list[int]:
        """Per source (index N-1), how many claims it backs: claims that cite it and that
        it supports, and claims it is offered for (misattributed or uncited)."""
        counts = [0] * self.n_sources
        for claim in self.claims:
            backing = {s.number for s in claim.support if s.supports and s.number in claim.cited}
            if claim.source is not None:
                backing.add(claim.source)
            for number in backing:
                if 1 <= number <= self.n_sources:
                    counts[number - 1] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The `claims` field of the `done` event and of a stored answer."""
        return {**self.summary(), "unchecked_from": self.unchecked_from,
                "backed_by_source": self.backed_by_source(),
                "items": [c.as_dict() for c in self.claims]}


# ── words and numbers ─────────────────────────────────────────────────────

_STEMMER = snowballstemmer.stemmer("english")
# The check runs in threads (`asyncio.to_thread`: answers, saved answers, distilled pages),
# possibly several at once.
_STEMMER_LOCK = threading.Lock()
# Words that say nothing about a technique on their own; left out of the score.
_FILLER = frozenset(
    """
    around about roughly approximately usually often typically generally always never
    sometimes simply actually basically instead rather quite much many lot lots every
    give gives giving keep keeps take takes try start starts end ends put puts set sets
    """.split()
)


@lru_cache(maxsize=8192)
def _stems(word: str) -> frozenset[str]:
    """The stems a word matches by: its own, and those of its plainer forms."""
    forms = [word, *variants(word)]
    out = set()
    for form in forms:
        with _STEMMER_LOCK:  # a Snowball stemmer keeps its word in itself: one thread at a time
            stem = _STEMMER.stemWord(form)
        # Snowball keeps agent nouns: compressor ~ compress, oscillator ~ oscill.
        if stem.endswith("or") and len(stem) > 6:
            stem = stem[:-2]
        out.add(stem)
    return frozenset(out)


_HAS_DIGIT = re.compile(r"\d")


def _content_words(text: str) -> list[str]:
    """The words a claim is scored by: no stopwords, no filler, no numbers (numbers,
    "three" as well as "3", are checked as numbers or not at all). (`words(text)` filtered,
    each distinct word of the text judged once: `_content_word`.)"""
    out = []
    for raw in _WORD.findall(text):
        w = _content_word(raw)
        if w:
            out.append(w)
    return out


@lru_cache(maxsize=65536)
def _content_word(raw: str) -> str:
    """A word as `words` gives it (folded) when it is a content word, else ""."""
    w = fold(raw)
    if (len(w) > 1 and w not in STOPWORDS and w not in _FILLER and not _HAS_DIGIT.search(w)
            and w not in _NUMBER_WORDS and w not in _TENS and w not in _SCALE_WORDS):
        return w
    return ""


@lru_cache(maxsize=16384)
def _stem_set(text: str) -> frozenset[str]:
    """(Cached: a transcript's sentences are read again for each distilled section's range.)"""
    out: set[str] = set()
    for w in _content_words(text):
        out |= _stems(w)
    return frozenset(out)


@dataclass(frozen=True)
class Quantity:
    """A number as a claim states it: its value in base units, its dimension
    (None for a bare number or a `2k`, which match any unit), a ratio's terms."""

    value: float
    dim: str | None = None
    ratio: tuple[float, float] | None = None
    raw: float | None = None  # the number as written, before the unit's scale

    def key(self) -> tuple[Any, ...]:
        if self.ratio is not None:
            return ("ratio", _r(self.ratio[0]), _r(self.ratio[1]))
        return (self.dim, _r(self.value))


def _r(x: float) -> float:
    return float(f"{abs(x):.6g}")


# unit text (lower case) -> (dimension, scale to the base unit)
_UNITS: dict[str, tuple[str | None, float]] = {
    "khz": ("hz", 1000.0), "hz": ("hz", 1.0), "mhz": ("hz", 1e6), "k": (None, 1000.0),
    "hertz": ("hz", 1.0), "kilohertz": ("hz", 1000.0), "kilo hertz": ("hz", 1000.0),
    "decibel": ("db", 1.0),
    "ms": ("s", 0.001), "msec": ("s", 0.001), "millisecond": ("s", 0.001),
    "milliseconds": ("s", 0.001), "us": ("s", 1e-6), "µs": ("s", 1e-6),
    "s": ("s", 1.0), "sec": ("s", 1.0), "secs": ("s", 1.0), "second": ("s", 1.0),
    "seconds": ("s", 1.0), "min": ("s", 60.0), "mins": ("s", 60.0), "minute": ("s", 60.0),
    "minutes": ("s", 60.0),
    "db/oct": ("db/oct", 1.0), "db/octave": ("db/oct", 1.0), "db per octave": ("db/oct", 1.0),
    "dbfs": ("db", 1.0), "dbtp": ("db", 1.0), "dbu": ("db", 1.0), "dbv": ("db", 1.0),
    "db": ("db", 1.0), "decibels": ("db", 1.0), "lufs": ("lufs", 1.0), "lu": ("lufs", 1.0),
    "%": ("pct", 1.0), "percent": ("pct", 1.0), "bpm": ("bpm", 1.0),
    "bar": ("bar", 1.0), "bars": ("bar", 1.0), "beat": ("beat", 1.0), "beats": ("beat", 1.0),
    "st": ("st", 1.0), "semitone": ("st", 1.0), "semitones": ("st", 1.0),
    "cent": ("cent", 1.0), "cents": ("cent", 1.0), "ct": ("cent", 1.0),
    "octave": ("oct", 1.0), "octaves": ("oct", 1.0), "oct": ("oct", 1.0),
    "bit": ("bit", 1.0), "bits": ("bit", 1.0), "x": ("x", 1.0), "×": ("x", 1.0),
    "voice": ("voice", 1.0), "voices": ("voice", 1.0), "pole": ("pole", 1.0),
    "poles": ("pole", 1.0), "step": ("step", 1.0), "steps": ("step", 1.0),
}
_UNIT_RE = "|".join(
    re.escape(u).replace(r"\ ", r"\s+") for u in sorted(_UNITS, key=len, reverse=True)
)
_NUMBER_WORDS = {
    w: float(i) for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30.0, "forty": 40.0, "fifty": 50.0, "sixty": 60.0, "hundred": 100.0}
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
# 4:1, and "4 to 1" (a range such as "10 to 40 ms" is not a ratio).
_RATIO = re.compile(
    rf"(?<![\w.:])({_NUM})(?:\s*:\s*({_NUM})|(?:\s+to\s+|-to-)(1))(?![\w:]|\.\d|\s*(?:{_UNIT_RE})\b)",
    re.IGNORECASE,
)
_QUANTITY = re.compile(
    rf"(?<![\w.])(?<!\d[.,])(?P<minus>[-−](?=\d))?(?P<num>{_NUM})"
    rf"(?:\s*-?\s*(?P<unit>{_UNIT_RE})(?![a-z]))?",
    re.IGNORECASE,
)
_TENS = {"twenty": 20.0, "thirty": 30.0, "forty": 40.0, "fifty": 50.0, "sixty": 60.0,
         "seventy": 70.0, "eighty": 80.0, "ninety": 90.0}
_SCALE_WORDS = {"hundred": 100.0, "thousand": 1000.0}
# A number said in words, as transcripts of speech have them: "eighty", "forty-eight",
# "two hundred and fifty", "one point two", "five thousand".
_SPOKEN = "|".join(sorted([*_NUMBER_WORDS, *_TENS, *_SCALE_WORDS], key=len, reverse=True))
_SPOKEN_NUMBER = (
    rf"(?:{_SPOKEN})(?:(?:[\s-]+and)?[\s-]+(?:{_SPOKEN}))*(?:\s+point(?:\s+(?:{'|'.join(list(_NUMBER_WORDS)[:10])}))+)?"
)
# A number said in words before a unit, or as a ratio ("eight to one"), in one pass; run
# only on a text holding a number word (the alternation is costly at every word).
_WORD_NUMBER = re.compile(
    rf"\b(?P<number>{_SPOKEN_NUMBER})(?:[\s-]+(?P<unit>{_UNIT_RE})(?![a-z])"
    rf"|(?P<ratio>\s+to\s+one\b)(?!\s*(?:{_UNIT_RE})\b))",
    re.IGNORECASE,
)
_SPOKEN_WORDS = frozenset([*_NUMBER_WORDS, *_TENS, *_SCALE_WORDS])
_LETTERS = re.compile(r"[a-z]+")


def spoken_value(text: str) -> float:
    """The value of a number said in words ("two hundred and fifty" = 250, "one point two"
    = 1.2); the words are those `_SPOKEN_NUMBER` matches."""
    whole, _, fraction = text.lower().partition(" point ")
    total = current = 0.0
    for word in re.split(r"[\s-]+", whole.strip()):
        if word in _NUMBER_WORDS and word != "hundred":
            current += _NUMBER_WORDS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = (current or 1.0) * 100.0
        elif word == "thousand":
            total += (current or 1.0) * 1000.0
            current = 0.0
    value = total + current
    digits = "".join(str(int(_NUMBER_WORDS[w])) for w in fraction.split() if w in _NUMBER_WORDS)
    return value + (float("0." + digits) if digits else 0.0)


_ENDS_IN_NUMBER = re.compile(r"\d[.,]?\s*$")
_CLOCK = re.compile(r"(?<![\w.:])\d{1,2}:\d\d(?::\d\d)?(?![\w:]|\.\d)")
_RANGE_GAP = re.compile(r"^\s*(?:[-–—]|to|and|or)\s*$", re.IGNORECASE)
_CITATION_TEXT = re.compile(r"\[\s*\d{1,4}(?:\s*[,;–-]\s*\d{1,4})*\s*\](?:\([^)]*\))?")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")


def _float(text: str) -> float:
    return float(text.replace(",", ""))


def quantities(text: str) -> list[Quantity]:
    """The numbers a text states, with their units (see `Quantity`).

    A range takes its unit from its last number (`10–40 ms` is 10 ms and 40 ms).
    Citation markers are not numbers. Numbers said in words count before a unit
    ("eighty hertz", "two hundred and fifty milliseconds") and in a ratio ("eight to one").
    """
    return list(_quantities(text))


def written_quantities(text: str) -> list[tuple[Quantity, str]]:
    """`quantities(text)`, each with the words that state it ("18 dB", "8:1")."""
    return [(q, text[s:e]) for q, s, e in _quantity_spans(text)]


@lru_cache(maxsize=4096)
def _quantities(text: str) -> tuple[Quantity, ...]:
    return tuple(q for q, _s, _e in _quantity_spans(text))


@lru_cache(maxsize=8192)
def _quantity_spans(text: str) -> tuple[tuple[Quantity, int, int], ...]:
    digits = _HAS_DIGIT.search(text) is not None
    spoken = not _SPOKEN_WORDS.isdisjoint(_LETTERS.findall(text.lower()))
    if not digits and not spoken:
        return ()  # most sentences of a transcript: no pattern need run
    # Citations blanked to spaces of their length: offsets stay those of `text`.
    text = _CITATION_TEXT.sub(lambda m: " " * len(m.group()), text)
    out: list[tuple[Quantity, int, int]] = []
    # A clock time (1:05, 12:30:15) is a moment of a video, not a ratio or a number.
    taken: list[tuple[int, int]] = [m.span() for m in _CLOCK.finditer(text)]
    for m in _RATIO.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        a, b = _float(m.group(1)), _float(m.group(2) or m.group(3))
        out.append((Quantity(a / b if b else math.inf, "ratio", (a, b), a), *m.span()))
        taken.append(m.span())
    said = list(_WORD_NUMBER.finditer(text)) if spoken else []
    for m in said:
        if m.group("ratio") and not any(s <= m.start() < e for s, e in taken):
            a = spoken_value(m.group("number"))
            out.append((Quantity(a, "ratio", (a, 1.0), a), *m.span()))
            taken.append(m.span())
    found: list[tuple[int, int, float, str | None, float, bool]] = []
    for m in _QUANTITY.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        raw = _float(m.group("num"))
        unit = m.group("unit")
        if unit:
            dim, scale = _UNITS[" ".join(unit.lower().split())]
        else:
            dim, scale = None, 1.0
        found.append((m.start(), m.end(), raw, dim, scale, bool(unit)))
    for m in said:
        if m.group("ratio") or any(s <= m.start() < e for s, e in taken):
            continue
        dim, scale = _UNITS[" ".join(m.group("unit").lower().split())]
        raw = spoken_value(m.group("number"))
        found.append((m.start(), m.end(), raw, dim, scale, True))
    found.sort()
    # A bare number before a number with a unit, joined as a range, takes that unit.
    for i in range(len(found) - 1, -1, -1):
        start, end, raw, dim, scale, has_unit = found[i]
        if not has_unit and i + 1 < len(found):
            nxt = found[i + 1]
            if nxt[5] and _RANGE_GAP.match(text[end:nxt[0]]):
                found[i] = (start, end, raw, nxt[3], nxt[4], True)
    for s, e, raw, dim, scale, _u in found:
        out.append((Quantity(raw * scale, dim, None, raw), s, e))
    return tuple(out)


def same_quantity(claim: Quantity, source: Quantity) -> bool:
    """Whether a source's number states the claim's number (units converted, sign
    ignored). A claim's unit must be the source's; a bare number or a `2k` in a claim
    matches the source's number in any unit ("4" matches "4:1")."""
    if claim.ratio is not None:
        return source.ratio is not None and claim.key() == source.key()
    if claim.dim is not None:
        return source.ratio is None and claim.dim == source.dim and (
            _r(claim.value) == _r(source.value))
    if source.ratio is not None:
        return _r(source.ratio[1]) == 1.0 and _r(source.ratio[0]) == _r(claim.value)
    values = {_r(source.value), _r(source.raw if source.raw is not None else source.value)}
    return _r(claim.value) in values


# ── splitting text into sentences, with offsets ───────────────────────────

_ABBREVIATIONS = frozenset(
    "e.g i.e vs etc approx ca cf fig no nr mr mrs dr st eq ex incl resp".split()
)
# (Patterns used with .match(text, pos) have no "^": it would only match at 0.)
# A sentence ends at . ! ? (closing quotes, brackets, emphasis and citations after
# it stay with it) before white space and what can open a sentence.
_SENTENCE_END = re.compile(
    r"[.!?](?P<tail>[*_\"'”’)\]]*(?:\s*\[\s*\d{1,4}(?:\s*[,;–-]\s*\d{1,4})*\s*\])*)"
    r"(?=\s+[\"'“‘(\[*_`A-Z0-9])"
)
_LEADING_CITATIONS = re.compile(r"(?:\s*\[\s*\d{1,4}(?:\s*[,;–-]\s*\d{1,4})*\s*\])+[.,;:]?")
_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?")
_SOURCE_PREFIX = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|(?:>[ \t]?)+|(?:[-*+]|\d{1,9}[.)])[ \t]+)?")


_LAST_WORD = re.compile(r"([A-Za-z](?:\.[A-Za-z])*|[A-Za-z]+)$")


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans of text[start:end] (already masked: markers blanked out)."""
    spans: list[tuple[int, int]] = []
    pos = start
    chunk = text[start:end]
    for m in _SENTENCE_END.finditer(chunk):
        stop = start + m.end()
        # Only the last few characters decide (a search over all of `head` would make a
        # long run of "A. A. A." quadratic).
        head = chunk[max(0, m.start() - 12): m.start()]
        word = _LAST_WORD.search(head)
        if word and (word.group(1).lower() in _ABBREVIATIONS or len(word.group(1)) == 1):
            if m.group(0)[0] == ".":
                continue
        spans.append((pos, stop))
        pos = stop
    spans.append((pos, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e and any(ch.isalnum() for ch in text[s:e]):
            out.append((s, e))
    return out


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    kind: str  # sentence | item | row
    block: int  # claims of one paragraph / list item share it


# Blocks only: the inline rules (emphasis, links) say nothing about where claims are.
_MD = MarkdownIt("commonmark").enable("table").disable("inline")


def _line_starts(text: str) -> list[int]:
    """Where each line begins, plus one past the end (so line i is starts[i]:starts[i+1]-1)."""
    return [0, *(m.end() for m in re.finditer("\n", text)), len(text) + 1]


def claim_segments(answer: str) -> list[Segment]:
    """The candidate claims of a Markdown answer: sentences of paragraphs (in list
    items and quotes too) and table body rows; never code, headings or HTML."""
    starts = _line_starts(answer)
    n_lines = len(starts) - 1
    masked = list(answer)
    regions: list[tuple[int, int, str, int]] = []
    depth = 0
    item_first = False
    in_tbody = False
    block = 0
    for tok in _MD.parse(answer):
        if tok.type == "list_item_open":
            depth += 1
            item_first = True
        elif tok.type == "list_item_close":
            depth -= 1
        elif tok.type == "tbody_open":
            in_tbody = True
        elif tok.type == "tbody_close":
            in_tbody = False
        elif tok.type == "paragraph_open" and tok.map:
            kind = "item" if depth and item_first else "sentence"
            item_first = False
            a, b = tok.map
            block += 1
            for line in range(a, min(b, n_lines)):
                s = starts[line]
                e = min(starts[line + 1] - 1, len(answer))
                prefix = _PREFIX.match(answer, s, e)
                for i in range(s, prefix.end() if prefix else s):
                    masked[i] = " "
            regions.append((starts[a], min(starts[min(b, n_lines)] - 1, len(answer)), kind, block))
        elif tok.type == "tr_open" and in_tbody and tok.map:
            a = tok.map[0]
            block += 1
            s, e = starts[a], min(starts[a + 1] - 1, len(answer))
            for i in range(s, e):
                if answer[i] == "|":
                    masked[i] = " "
            regions.append((s, e, "row", block))
    text = "".join(masked)
    out: list[Segment] = []
    for s, e, kind, blk in regions:
        spans = [(s, e)] if kind == "row" else _sentences(text, s, e)
        for a, b in spans:
            lead = _LEADING_CITATIONS.match(text, a, b)
            if lead and out and out[-1].block == blk:
                # "... sustain. [2] Next": the citation closes the sentence before.
                prev = out[-1]
                out[-1] = Segment(prev.start, lead.end(), prev.kind, blk)
                a = lead.end()
                while a < b and text[a].isspace():
                    a += 1
                if a >= b or not any(ch.isalnum() for ch in text[a:b]):
                    continue
            out.append(Segment(a, b, kind, blk))
    return out


# ── what is not a claim ───────────────────────────────────────────────────

_NOT_A_CLAIM = re.compile(
    r"""^\W*(?:
        (?:hi|hello|hey|thanks|thank\s+you|great\s+question|good\s+question|sure|of\s+course
           |certainly|absolutely|happy\s+to\s+help|glad\s+to\s+help|hope\s+this\s+helps
           |good\s+luck|have\s+fun|happy\s+producing|enjoy|cheers)\b
      | (?:let\s+me\s+know|feel\s+free|let'?s|let\s+us|here(?:'s|\s+is|\s+are)|below\s+(?:is|are)
           |to\s+(?:sum|summari[sz]e|recap)|in\s+(?:short|summary|conclusion)|next|first|finally
           |that\s+said|with\s+that\s+in\s+mind|now|so)\b[^.!?]*:\s*$
      | (?:in\s+short|in\s+summary|to\s+sum\s+up|overall)[.!]?\s*$
      | (?:sources?|references?|see\s+also|further\s+reading|citations?)\s*:
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_NO_INFORMATION = re.compile(
    r"""(?:
        \b(?:the\s+|these\s+|my\s+|provided\s+|available\s+)?(?:sources?|knowledge\s+base|
             passages?|material|documents?|context)\b[^.!?]{0,60}?
          \b(?:do(?:es)?\s*n[o']t|doesn'?t|don'?t|say\s+nothing|says\s+nothing|has\s+nothing
             |have\s+nothing|lacks?|are\s+silent|is\s+silent|never\s+(?:say|mention)|cannot
             |can'?t|only\s+cover)\b
      | \bnot\s+(?:covered|mentioned|specified|stated|addressed|discussed)\s+(?:in|by)\s+
          (?:the\s+|these\s+|my\s+)?(?:sources?|knowledge\s+base|passages?)\b
      | \b(?:i|we)\s+(?:do\s*n[o']t|don'?t|cannot|can'?t|could\s*n[o']t|couldn'?t)\s+
          (?:know|have|find|see)\b
      | \bno\s+(?:source|passage)\s+(?:says|covers|mentions|gives)\b
      | \b(?:no|a)\s+model\b | \bmodel\s+is\s+configured\b | \bknowledge\s+base\s+has\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)


# Openers of sentences about the answer itself rather than the subject.
_ABOUT_THE_ANSWER = re.compile(
    r"^\W*(?:let'?s|let\s+(?:me|us)|here(?:'s|\s+is|\s+are)|below|i\s+hope|hope\s+(?:this|that))\b",
    re.IGNORECASE,
)


def _is_claim(plain: str, has_citation: bool) -> bool:
    """Whether a sentence (its citations taken out) states something checkable (a
    citation makes a claim of a sentence unless it is plainly not one: a question, a
    greeting, a transition)."""
    plain = plain.strip()
    if not plain or plain.rstrip("*_ )\"'").endswith("?"):
        return False
    if _NOT_A_CLAIM.search(plain):
        return False
    if _NO_INFORMATION.search(plain) and not quantities(plain):
        return False
    if has_citation:
        return True
    if _ABOUT_THE_ANSWER.search(plain) and not quantities(plain):
        return False
    if plain.rstrip("*_ ").endswith(":") and not quantities(plain):
        return False  # introduces a list
    return len(_content_words(plain)) >= 3 or (bool(quantities(plain)) and len(_content_words(plain)) >= 1)


# ── sources ───────────────────────────────────────────────────────────────


@dataclass
class _Window:
    field: str
    start: int
    end: int


class _NumberIndex:
    """Where a source states each number: a bit mask of its windows per normalised form,
    so matching a claim's number is a lookup (the same rules as `same_quantity`)."""

    def __init__(self) -> None:
        self.ratios: dict[tuple[Any, ...], int] = {}
        self.ratio_to_one: dict[float, int] = {}
        self.with_unit: dict[tuple[str, float], int] = {}
        self.values: dict[float, int] = {}

    def add(self, q: Quantity, bit: int) -> None:
        if q.ratio is not None:
            key = q.key()
            self.ratios[key] = self.ratios.get(key, 0) | bit
            if _r(q.ratio[1]) == 1.0:
                v = _r(q.ratio[0])
                self.ratio_to_one[v] = self.ratio_to_one.get(v, 0) | bit
            return
        if q.dim is not None:
            key2 = (q.dim, _r(q.value))
            self.with_unit[key2] = self.with_unit.get(key2, 0) | bit
        for v in {_r(q.value), _r(q.raw if q.raw is not None else q.value)}:
            self.values[v] = self.values.get(v, 0) | bit

    @staticmethod
    def probe(q: Quantity) -> tuple[str, Any]:
        """What `match` looks up for a claim's number (computed once per claim)."""
        if q.ratio is not None:
            return ("ratio", q.key())
        if q.dim is not None:
            return ("unit", (q.dim, _r(q.value)))
        return ("bare", _r(q.value))

    def match(self, q: Quantity | tuple[str, Any]) -> int:
        kind, key = q if isinstance(q, tuple) else self.probe(q)
        if kind == "ratio":
            return self.ratios.get(key, 0)
        if kind == "unit":
            return self.with_unit.get(key, 0)
        return self.values.get(key, 0) | self.ratio_to_one.get(key, 0)


@dataclass
class _Source:
    number: int
    frame: frozenset[str]  # title and heading: they frame every window
    frame_numbers: _NumberIndex
    windows: list[_Window] = field(default_factory=list)
    stems: frozenset[str] = frozenset()
    index: dict[str, int] = field(default_factory=dict)  # stem -> mask of windows
    numbers: _NumberIndex = field(default_factory=_NumberIndex)
    texts: dict[str, str] = field(default_factory=dict)
    body_sentences: int = 0  # the body's windows are the first 2 * body_sentences - 1
    # A part of a prepared source (`source_part`) shares its index and numbers: a mask of
    # them is shifted right by `shift` and kept to `limit` (-1: all of it).
    shift: int = 0
    limit: int = -1
    _own_starts: list[int] | None = None

    def bits(self, mask: int) -> int:
        return (mask >> self.shift) & self.limit


PreparedSource = _Source


def _field_sentences(body: str) -> tuple[list[tuple[int, int]], str]:
    """Sentence spans of a source field, and the field with list and heading markers blanked."""
    starts = _line_starts(body)
    masked: list[str] | None = None  # copied only when a line has a marker to blank
    spans: list[tuple[int, int]] = []
    for line in range(len(starts) - 1):
        s, e = starts[line], min(starts[line + 1] - 1, len(body))
        prefix = _SOURCE_PREFIX.match(body, s, e)
        if prefix and prefix.end() > s:
            if masked is None:
                masked = list(body)
            for i in range(s, prefix.end()):
                masked[i] = " "
    text = "".join(masked) if masked is not None else body
    for line in range(len(starts) - 1):
        s, e = starts[line], min(starts[line + 1] - 1, len(body))
        if s < e:
            spans.extend(_sentences(text, s, e))
    return spans, text


@lru_cache(maxsize=512)
def _prepare(number: int, title: str, heading: str, summary: str, body: str) -> _Source:
    """A source cut into windows (each sentence, each two neighbouring sentences of the
    body, each sentence of the summary), with its words and numbers indexed by window."""
    frame_numbers = _NumberIndex()
    for q in quantities(f"{title} {heading}"):
        frame_numbers.add(q, 1)
    src = _Source(number, frozenset(_stem_set(f"{title} {heading}")), frame_numbers,
                  texts={"section_body": body, "summary": summary})
    all_stems: set[str] = set(src.frame)

    index = src.index

    def window(fld: str, start: int, end: int, nums: list[Quantity]) -> int:
        bit = 1 << len(src.windows)
        src.windows.append(_Window(fld, start, end))
        for q in nums:
            src.numbers.add(q, bit)
        return bit

    for fld, text in (("section_body", body), ("summary", summary)):
        sentences, masked = _field_sentences(text)
        per = [(s, e, _stem_set(masked[s:e]), quantities(masked[s:e])) for s, e in sentences]
        # Windows in order: each sentence, then (in the body) it and the next one. A
        # sentence's words go in once, with the bits of every window holding it.
        bits = []
        for i, (s, e, _stems, nums) in enumerate(per):
            own = window(fld, s, e, nums)
            pair = 0
            if i + 1 < len(per) and fld == "section_body":
                _s2, e2, _stems2, nums2 = per[i + 1]
                # A sentence ending in a number is read again across the break: a caption's
                # pause can part a number from its unit ("to 10" / "milliseconds so").
                both = (quantities(masked[s:e2]) if _ENDS_IN_NUMBER.search(masked, s, e)
                        else nums + nums2)
                pair = window(fld, s, e2, both)
            bits.append((own, pair))
        for i, (_s, _e, stems, _nums) in enumerate(per):
            mask = bits[i][0] | bits[i][1] | (bits[i - 1][1] if i else 0)
            for stem in stems:
                index[stem] = index.get(stem, 0) | mask
            all_stems |= stems
        if fld == "section_body":
            src.body_sentences = len(per)
    src.stems = frozenset(all_stems)
    return src


def prepare_source(title: str, body: str, heading: str = "", summary: str = "") -> PreparedSource:
    """A source prepared for `check_claims(..., prepared=[...])` (cached by its texts): a
    caller checking many answers against one long text prepares it once."""
    return _prepare(1, title, heading, summary, body)


def source_part(src: PreparedSource, start: int, end: int, number: int = 1) -> PreparedSource:
    """The sentences of a prepared source's body that lie in body[start:end], as a source of
    their own: the same windows, words, numbers and scores as `prepare_source(title,
    body[start:end], heading)` (no summary), when body[start:end] is whole lines of the body
    (sentences never span a line; offsets index body[start:end]). Made in time proportional
    to its windows, the index being shared: one transcript prepared once serves every range
    of it."""
    if src.shift or src.limit != -1:
        raise ValueError("source_part: a part of a part")
    owns = src._own_starts
    if owns is None:
        owns = [src.windows[2 * k].start for k in range(src.body_sentences)]
        src._own_starts = owns
    first = bisect.bisect_left(owns, start)
    last = bisect.bisect_left(owns, end) - 1
    body = src.texts.get("section_body", "")
    part = _Source(number, src.frame, src.frame_numbers, stems=src.stems, index=src.index,
                   numbers=src.numbers, texts={"section_body": body[start:end], "summary": ""})
    if last < first:
        part.limit = 0
        return part
    lo, hi = 2 * first, 2 * last
    part.windows = [_Window(w.field, w.start - start, w.end - start) for w in src.windows[lo:hi + 1]]
    part.body_sentences = last - first + 1
    part.shift = lo
    part.limit = (1 << (hi - lo + 1)) - 1
    return part


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _prepare_sources(sources: Sequence[dict[str, Any]]) -> list[_Source]:
    return [
        _prepare(n, _text(s, "title"), _text(s, "section_heading"), _text(s, "summary"),
                 _text(s, "section_body"))
        for n, s in enumerate(sources, start=1)
    ]


# ── the check ─────────────────────────────────────────────────────────────


def _cited(text: str, n_sources: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    from tui.services.chat import find_citations

    cited, invalid = find_citations(text, n_sources)
    return tuple(cited), tuple(invalid)


def _score(
    hits: list[tuple[int, float]], framed: float, total: float, numbers_ok: bool, src: _Source
) -> Support:
    """A source's support for a claim from where its words and numbers are: `hits` are
    (mask of windows, weight), `framed` the weight found in the title or heading."""
    if total <= 0:
        return Support(src.number, 0.0, numbers_ok, None)
    gains = [0.0] * len(src.windows)
    elsewhere = 0.0
    for mask, w in hits:
        elsewhere += w
        while mask:
            low = mask & -mask
            gains[low.bit_length() - 1] += w
            mask ^= low
    best_gain = max(gains, default=0.0)
    win = src.windows[gains.index(best_gain)] if best_gain > 0 else None
    # A claim may join two sentences of its source that are not neighbours: the whole
    # section counts too, a little less than one window.
    score = max((framed + best_gain) / total, SECTION_FACTOR * (framed + elsewhere) / total)
    return Support(
        src.number, min(1.0, score), numbers_ok,
        (win.start, win.end) if win else None, win.field if win else "section_body",
    )


def _supports(forms: list[frozenset[str]], numbers: list[Quantity], srcs: list[_Source]) -> list[Support]:
    """Every source's support for a claim with these content words and numbers. A word's
    weight is 1 + log((n + 1) / (df + 1)) over this answer's n sources: a word every
    source has says little; one that none has counts most against them all."""
    n = len(srcs)
    where: list[list[tuple[int, bool]]] = []  # per word: per source (mask, in the frame)
    weights: list[float] = []
    for f in forms:
        row = []
        df = 0
        for src in srcs:
            framed = not src.frame.isdisjoint(f)
            mask = 0
            if not framed:
                index = src.index
                for form in f:
                    mask |= index.get(form, 0)
                mask = (mask >> src.shift) & src.limit
            df += framed or bool(mask)
            row.append((mask, framed))
        where.append(row)
        weights.append(1.0 + math.log((n + 1) / (df + 1)))
    total = sum(weights) + NUMBER_WEIGHT * len(numbers)
    probes = [_NumberIndex.probe(q) for q in numbers]
    out = []
    for k, src in enumerate(srcs):
        hits: list[tuple[int, float]] = []
        framed_w = 0.0
        for row, w in zip(where, weights, strict=True):
            mask, framed = row[k]
            if framed:
                framed_w += w
            elif mask:
                hits.append((mask, w))
        numbers_ok = True
        for q in probes:
            if src.frame_numbers.match(q):
                framed_w += NUMBER_WEIGHT
                continue
            mask = src.bits(src.numbers.match(q))
            if mask:
                hits.append((mask, NUMBER_WEIGHT))
            else:
                numbers_ok = False
        out.append(_score(hits, framed_w, total, numbers_ok, src))
    return out


def check_claims(
    answer: str, sources: Sequence[dict[str, Any]] = (), *, scorer: Scorer | None = None,
    cite: Sequence[int] = (), prepared: Sequence[PreparedSource] | None = None,
) -> ClaimReport:
    """Split `answer` into claims and check each against `sources` (see the module doc).
    `cite`: the sources a sentence without a citation of its own cites (a distilled
    section's sentences all cite the transcript range it was written from). `prepared`:
    the sources already prepared (`prepare_source`, `source_part`), numbered in order,
    instead of `sources`."""
    if not answer:
        return ClaimReport(n_sources=len(prepared if prepared is not None else sources))
    srcs = list(prepared) if prepared is not None else _prepare_sources(sources)
    unchecked_from = None
    if len(answer) > MAX_CHECK_CHARS:
        cut = answer.rfind("\n\n", 0, MAX_CHECK_CHARS)
        unchecked_from = cut if cut > 0 else MAX_CHECK_CHARS
    segments = claim_segments(answer[:unchecked_from] if unchecked_from else answer)
    # A list item's citation covers its sentences that have none of their own.
    item_cites: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for seg in segments:
        if seg.kind != "sentence":
            cites = _cited(answer[seg.start:seg.end], len(srcs))
            if cites[0] or cites[1]:
                item_cites[seg.block] = cites
    claims: list[Claim] = []
    first_of_block: set[int] = set()
    for seg in segments:
        if len(claims) >= MAX_CLAIMS:
            unchecked_from = seg.start
            break
        text = answer[seg.start:seg.end]
        opens_block = seg.block not in first_of_block
        first_of_block.add(seg.block)
        if opens_block and _LEADING_CITATIONS.match(text):
            continue  # "[2] Title — Section": an entry of a reference list
        cited, invalid = _cited(text, len(srcs))
        if not cited and not invalid and seg.block in item_cites:
            cited, invalid = item_cites[seg.block]
        if not cited and not invalid and cite:
            cited = tuple(n for n in cite if 1 <= n <= len(srcs))
        plain = _LINK_TARGET.sub("]", _CITATION_TEXT.sub(" ", text[:MAX_CLAIM_CHARS]))
        if not _is_claim(plain, bool(cited or invalid)):
            continue
        claims.append(_classify(seg, text, plain, cited, invalid, srcs, scorer))
    return ClaimReport(tuple(claims), unchecked_from, len(srcs))


def _classify(seg, text, plain, cited, invalid, srcs, scorer) -> Claim:
    forms: list[frozenset[str]] = []
    seen: set[frozenset[str]] = set()
    for w in _content_words(plain):
        f = _stems(w)
        if f not in seen:
            seen.add(f)
            forms.append(f)
    numbers = quantities(plain)
    supports = _supports(forms, numbers, srcs)
    if scorer is not None and supports:
        supports = _blend(plain, supports, srcs, scorer)

    def best(pool: list[Support]) -> Support | None:
        ok = [s for s in pool if s.supports]
        return max(ok, key=lambda s: (s.score, -s.number)) if ok else None

    cited_support = [supports[n - 1] for n in cited]
    others = [s for s in supports if s.number not in cited]
    in_cited, in_other = best(cited_support), best(others)
    if not cited and not invalid:
        status, chosen = "uncited", in_other
        reason = (f"no citation; [{in_other.number}] supports it" if in_other
                  else "no citation, and no source supports it")
    elif in_cited is not None:
        status, chosen = "supported", in_cited
        reason = f"[{in_cited.number}] supports it ({in_cited.score:.2f})"
    elif in_other is not None:
        status, chosen = "misattributed", in_other
        reason = f"{_why_not(cited_support, invalid, numbers)}; [{in_other.number}] supports it"
    else:
        status = "unsupported"
        chosen = max(cited_support, key=lambda s: s.score) if cited_support else None
        reason = _why_not(cited_support, invalid, numbers) + "; no other source supports it"
    shown = list(cited_support)
    if chosen is not None and chosen.number not in cited:
        shown.append(chosen)
    return Claim(
        start=seg.start, end=seg.end, text=text, kind=seg.kind, cited=cited, invalid=invalid,
        status=status, source=chosen.number if chosen and status != "unsupported" else None,
        span=chosen.span if chosen else None,
        field=chosen.field if chosen else "section_body",
        score=chosen.score if chosen else 0.0, reason=reason, support=tuple(shown),
    )


def _why_not(cited: list[Support], invalid: tuple[int, ...], numbers: list[Quantity]) -> str:
    parts = []
    for s in cited:
        if not s.numbers_ok:
            parts.append(f"[{s.number}] does not state its numbers")
        else:
            parts.append(f"[{s.number}] shares too little of it ({s.score:.2f})")
    if invalid:
        parts.append("cites no such source " + ", ".join(f"[{n}]" for n in invalid))
    return "; ".join(parts) or "no source cited"


def _blend(plain: str, supports: list[Support], srcs: list[_Source], scorer: Scorer) -> list[Support]:
    """Average each source's lexical score with the scorer's similarity of its best window."""
    passages = []
    for sup, src in zip(supports, srcs, strict=True):
        if sup.span is None:
            passages.append("")
        else:
            passages.append(src.texts[sup.field][sup.span[0]:sup.span[1]])
    try:
        sims = list(scorer(plain, passages))
    except Exception:  # noqa: BLE001 - a failing model leaves the lexical check standing
        return supports
    if len(sims) != len(supports):
        return supports
    out = []
    for sup, sim in zip(supports, sims, strict=True):
        try:
            value = float(sim)
        except (TypeError, ValueError):
            value = sup.score
        if not math.isfinite(value):
            value = sup.score
        value = min(1.0, max(0.0, value))
        score = (1 - SCORER_BLEND) * sup.score + SCORER_BLEND * value
        out.append(Support(sup.number, score, sup.numbers_ok, sup.span, sup.field))
    return out


def summary_line(claims: dict[str, Any]) -> str:
    """One line for an answer's meta line, from a `claims` payload:
    `14 claims · 12 supported · 1 misattributed → [3] · 1 without support · 1 uncited`
    (classes with no claim left out; → the sources the misattributed claims belong to)."""
    total = int(claims.get("total") or 0)
    parts = [f"{total} claim{'s' if total != 1 else ''}", f"{int(claims.get('supported') or 0)} supported"]
    if claims.get("misattributed"):
        offered = sorted({i["source"] for i in claims.get("items") or []
                          if i.get("status") == "misattributed" and isinstance(i.get("source"), int)})
        parts.append(f"{claims['misattributed']} misattributed"
                     + (" → " + " ".join(f"[{n}]" for n in offered) if offered else ""))
    if claims.get("unsupported"):
        parts.append(f"{claims['unsupported']} without support")
    if claims.get("uncited"):
        parts.append(f"{claims['uncited']} uncited")
    return " · ".join(parts)


async def check_saved_answer(
    db, content: str, sources: Sequence[dict[str, Any]], *, scorer: Scorer | None = None
) -> dict[str, Any]:
    """The claim check (`ClaimReport.as_dict()`) of a saved answer that has none stored:
    each source's section is read again from the knowledge base by its slug and anchor
    (a source whose page is gone counts as an empty one), and the check runs in a thread."""
    import asyncio

    from tui.services.sources import source_detail

    items: list[dict[str, Any]] = []
    for source in sources:
        slug = source.get("slug") if isinstance(source, dict) else None
        detail = None
        if isinstance(slug, str) and slug:
            detail = await source_detail(db, slug, source.get("section_anchor") or None)
        items.append(detail or {})
    report = await asyncio.to_thread(check_claims, content or "", items, scorer=scorer)
    return report.as_dict()


# ── for the view (pure functions over a `claims` payload) ─────────────────

QUESTIONABLE = ("misattributed", "unsupported")


def citation_span(
    claims: dict[str, Any] | None, offset: int, number: int
) -> tuple[str, int, int] | None:
    """What to light in source `number` when the citation at `offset` of the answer is
    selected: `(field, start, end)` in that source's `field` ("section_body" or
    "summary"), from the claim holding the citation; None when no claim holds it or
    no window of the source matched."""
    for item in (claims or {}).get("items") or []:
        if not item.get("start", 0) <= offset < item.get("end", 0):
            continue
        for support in item.get("support") or []:
            span = support.get("span")
            if support.get("number") == number and span:
                return (support.get("field") or "section_body", span[0], span[1])
        return None
    return None


def next_questionable(claims: dict[str, Any] | None, after: int = -1) -> dict[str, Any] | None:
    """The first misattributed or unsupported claim starting after `after` (wrapping
    around to the first one), or None when the answer has none: the jump key's target."""
    items = [i for i in (claims or {}).get("items") or [] if i.get("status") in QUESTIONABLE]
    if not items:
        return None
    later = [i for i in items if i.get("start", 0) > after]
    return min(later or items, key=lambda i: i.get("start", 0))


def next_questionable_across(
    answers: Sequence[dict[str, Any] | None], current: int, after: int = -1
) -> tuple[int, dict[str, Any]] | None:
    """The jump key's target over a whole conversation: `answers` are the answers' claim
    checks in order (None: not checked), `current` the answer the jump starts from and
    `after` the offset in it of the claim last jumped to. The next questionable claim of
    that answer after `after`; else the first of the next answer that has one (wrapping
    around the conversation, back to the start of `current`). (answer index, item), or
    None when no answer has a questionable claim."""
    n = len(answers)
    if not n:
        return None
    current = min(max(current, 0), n - 1)

    def questionable(claims: dict[str, Any] | None) -> list[dict[str, Any]]:
        items = [i for i in (claims or {}).get("items") or [] if i.get("status") in QUESTIONABLE]
        return sorted(items, key=lambda i: i.get("start", 0))

    later = [i for i in questionable(answers[current]) if i.get("start", 0) > after]
    if later:
        return current, later[0]
    for step in range(1, n + 1):
        k = (current + step) % n
        found = questionable(answers[k])
        if found:
            return k, found[0]
    return None
