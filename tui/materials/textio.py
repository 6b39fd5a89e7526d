"""Bounded reading, decoding and the small text helpers every reader shares.

A file is read only after its size is checked against its kind's limit, and a
text file line by line with each line's length bounded, so a hostile file costs
at most the limit in memory and never a traceback: problems come back as a
`Refusal` with one line of reason.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path

from tui.text import CONTROL_CHARS, clean, one_line

MiB = 1024 * 1024
MAX_TEXT_BYTES = 16 * MiB  # subtitles, notes, info.json
MAX_PDF_BYTES = 64 * MiB
MAX_LINE_CHARS = 64 * 1024  # no subtitle or note line is anywhere near this long
READ_CHUNK = 1024 * 1024
SLUG_MAX = 64


class Refused(Exception):
    """Raised inside a reader to end it with a Refusal (`read` turns it into one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def size_problem(size: int, limit: int, what: str) -> str | None:
    if size > limit:
        return f"file is {size / MiB:.0f} MiB, over the {limit // MiB} MiB limit for {what}"
    return None


def read_bytes(path: Path, limit: int, what: str, *, max_line: int | None = None) -> bytes:
    """The file's bytes, at most `limit` of them, each line at most `max_line` bytes.

    The size is checked with fstat before reading and again while reading (the
    file may grow); lines are measured chunk by chunk, so a 2 MB line ends the
    read at the chunk that shows it.
    """
    try:
        with open(path, "rb") as f:
            problem = size_problem(os.fstat(f.fileno()).st_size, limit, what)
            if problem:
                raise Refused(problem)
            if max_line is None:
                data = f.read(limit + 1)
            else:
                data = _read_lines_bounded(f, limit, max_line)
    except Refused:
        raise
    except IsADirectoryError:
        raise Refused("is a folder, not a file") from None
    except OSError as exc:
        raise Refused(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise Refused(size_problem(len(data), limit, what) or "file grew while reading")
    return data


def _read_lines_bounded(f, limit: int, max_line: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    run = 0  # length of the line still open at the end of the last chunk
    newlines = 0
    while chunk := f.read(READ_CHUNK):
        total += len(chunk)
        if total > limit:
            return b"".join(chunks) + chunk
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            run += len(chunk)
        else:
            run += len(pieces[0])
            longest = max(map(len, pieces[1:-1]), default=0)
            if run > max_line or longest > max_line:
                at = 0 if run > max_line else next(i for i, p in enumerate(pieces) if i and len(p) > max_line)
                raise Refused(f"line {newlines + at + 1} is longer than {max_line} characters")
            newlines += len(pieces) - 1
            run = len(pieces[-1])
        if run > max_line:
            raise Refused(f"line {newlines + 1} is longer than {max_line} characters")
        chunks.append(chunk)
    return b"".join(chunks)


def is_webvtt(head: bytes) -> bool:
    """The first bytes of a file say WEBVTT (after a UTF-8 BOM, or in UTF-16 with a BOM)."""
    head = head[:64]  # a whole file may be passed: only its start is looked at
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM
        head = head.decode("utf-16", "ignore").encode()
    return head.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT")


def decode(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), UTF-16 with a BOM, else cp1252, else latin-1 (never fails)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# Control characters a text file does not hold (tab, line ends, form feed and ESC, which
# starts the escape sequences `clean()` strips, are left out): a few are stripped, more
# mean binary data.
BINARY_CHARS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
BINARY_SHARE = 0.01


def clean_text(data: bytes, *, what: str = "a text file") -> str:
    """A file's text: decoded, LF line ends, passed through `clean()`.

    Every escape sequence starts with a character `CONTROL_CHARS` matches, so a text
    without any (nearly all) is left as it is after one search instead of two rewrites.
    Binary data behind a text header (a NUL, or control characters in more than 1% of
    the text once decoded) raises Refused: `not {what} (binary data)`.
    """
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n")
    if not CONTROL_CHARS.search(text):
        return text
    if "\x00" in text or len(BINARY_CHARS.findall(text)) > max(4, BINARY_SHARE * len(text)):
        raise Refused(f"not {what} (binary data)")
    return clean(text)


def sha256_hex(chunks: list[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def slugify(text: str, fallback: str = "") -> str:
    """A slug matching the KB format's SLUG_RE (`[a-z0-9][a-z0-9-]{0,63}`), or `fallback`."""
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")[:SLUG_MAX].rstrip("-")
    return s or fallback


def creator_slug(name: str) -> str:
    """The creator's slug; a name with no ASCII letters (say, in Japanese) gets a stable one."""
    return slugify(name) or "creator-" + hashlib.sha1(name.encode()).hexdigest()[:10]


def anchors(headings: list[str]) -> list[str]:
    """A slug per heading, unique within the page (-2, -3 ... for repeats)."""
    seen: Counter[str] = Counter()
    out = []
    for heading in headings:
        base = slugify(heading)[:56].rstrip("-") or "section"
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def cut(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (with …)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if " " in head[limit // 2 :]:
        head = head[: head.rfind(" ")]
    return head.rstrip(" ,;:-") + "…"


def fallback_title(path: Path) -> str:
    """A title from a file name: no extensions or language code, underscores as spaces."""
    name = path.name
    for suffix in (".info.json", ".markdown", ".md", ".vtt", ".srt", ".pdf"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = LANG_SUFFIX.sub("", name)
    name = re.sub(r"[_]+", " ", name)
    name = re.sub(r"\s+\[[A-Za-z0-9_-]{11}\]$", "", name)  # yt-dlp's " [ID]"
    name = one_line(name) or one_line(path.name) or "Untitled"
    return name[0].upper() + name[1:]


# A language code as yt-dlp names subtitle files (`en`, `en-GB`, `en-orig`, `zh-Hans`, `fil`):
# two letters, or two or three with a region, or one of YouTube's few three-letter codes, so
# `drums.mix.srt` keeps its ".mix".
LANG_SUFFIX = re.compile(
    r"\.(?:[a-z]{2}|fil|haw|hmn|ceb|bho|kri|nso|yue|ckb|[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})+)$")

STOPWORDS = frozenset(
    """a about above after again against all almost also alright am an and any are around as at
    back basically be because been before being below between both but by can can't come could
    did didn't do does doesn't doing don't down during each even every few for from get gets
    getting give go goes going gonna got gotta had has have having he her here hers him his how
    i i'd i'll i'm i've if in into is isn't it it's its itself just kind know let let's like
    little lot lots make makes making maybe me more most much my need no nor not now of off
    okay ok on once one only or other our out over own pretty put quite really right same see
    she should so some something sort still such sure take than that that's the their them then
    there there's these they they're thing things think this those though through to too try
    um uh under until up us use used using very want wanna was way we we'll we're we've well
    were what when where which while who why will with without won't would yeah yes you you'll
    you're you've your actually always another anything because bit different does done
    everything first good great here's honestly instead keep look looking mean new next people
    probably start stuff sound sounds sounding where's whatever two three four five six
    usually touch listen listening hear hearing happens happen compare clearer clear character
    breathes works work working matters matter forget forgot talk talking show showing today
    going call called bring brings bringing turn turning pull pulling push pushing set setting
    add adding help helps trick tricks place part parts point end ends less many least
    someone everyone anyone always never often sometimes already around across along
    enough far fine free full high higher low lower big bigger small smaller long longer
    short shorter next last time times real whole kinda sorta able tell says said say
    gives comes sits takes puts starts gets goes makes fighting bury moving changes behind""".split()
)
WORD_RE = re.compile(r"[a-z][a-z0-9'-]*[a-z0-9]|[a-z]")


def content_words(text: str) -> list[str]:
    return [w for w in WORD_RE.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS]


def distinctive_terms(parts: list[str], limit: int = 3, *, min_count: int = 2) -> list[list[str]]:
    """For each text in `parts`, its `limit` most distinctive terms (tf x idf over the parts).

    Terms are content words and pairs of adjacent content words ("pitch shift", "warp
    marker"); a pair that is chosen hides its own words.
    """
    counts = []
    for text in parts:
        tokens = WORD_RE.findall(text.lower())
        keep = [len(w) > 2 and w not in STOPWORDS for w in tokens]
        c: Counter[str] = Counter(w for w, k in zip(tokens, keep, strict=True) if k)
        c.update(f"{a} {b}" for a, b, ka, kb in zip(tokens, tokens[1:], keep, keep[1:], strict=False) if ka and kb)
        counts.append(c)
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    n = len(parts)
    out = []
    for c in counts:
        scored = sorted(
            ((tf * (math.log((1 + n) / (1 + df[w])) + 1.0) * (1.5 if " " in w else 1.0), w)
             for w, tf in c.items() if tf >= min_count),
            key=lambda x: (-x[0], x[1]),
        )
        chosen: list[str] = []
        hidden: set[str] = set()
        for _, w in scored:
            if w in hidden or any(w in t.split() for t in chosen if " " in t):
                continue
            if " " in w:
                if any(part in chosen for part in w.split()):
                    continue
                hidden.update(w.split())
            chosen.append(w)
            if len(chosen) == limit:
                break
        out.append(chosen)
    return out


def word_counts(text: str) -> Counter[str]:
    """Every word of `text`, lower-cased, counted (shared by `top_terms` and `topic_category`)."""
    return Counter(WORD_RE.findall(text.lower()))


def top_terms(text: str | Counter[str], limit: int = 5) -> list[str]:
    """The most frequent content words of `text` (or of its `word_counts`), ties alphabetical."""
    counts = word_counts(text) if isinstance(text, str) else text
    items = [(w, c) for w, c in counts.items() if len(w) > 2 and w not in STOPWORDS]
    return [w for w, _ in sorted(items, key=lambda x: (-x[1], x[0]))[:limit]]


# Keywords for the bundled topic categories (tests check the names against tui/data/kb).
CATEGORY_KEYWORDS: dict[str, frozenset[str]] = {
    "Synthesis": frozenset("synth synths synthesis synthesizer oscillator oscillators wavetable "
                           "envelope envelopes lfo unison detune serum vital fm operator supersaw "
                           "pluck pad pads patch patches modulation cutoff resonance saw".split()),
    "Mixing": frozenset("mix mixing eq equalizer compressor compression sidechain reverb delay "
                        "panning bus gain staging headroom vocal vocals de-esser stereo "
                        "parallel send sends kick snare mud".split()),
    "Sampling": frozenset("sample samples sampling sampler chop chops chopping vinyl loop loops "
                          "slice slices mpc break breaks resample resampling warp crate flip "
                          "one-shot record".split()),
    "Mastering": frozenset("master mastering limiter limiting loudness lufs peak multiband dither "
                           "clipper clipping ceiling reference streaming meter".split()),
    "Arrangement": frozenset("arrangement arrange arranging drop breakdown buildup build verse "
                             "chorus transition transitions intro outro structure hook song "
                             "energy riser fill fills bars tension".split()),
    "Sound Design": frozenset("foley texture textures granular noise impact impacts whoosh layer "
                              "layering field recording recordings drone atmosphere cinematic "
                              "grain grains spectral ambience bitcrusher formant".split()),
    "Audio Processing": frozenset("saturation saturator exciter transient transients dynamics "
                                  "processing vocoder autotune pitch convolution phase harmonic "
                                  "harmonics distortion plugin plugins".split()),
}


def topic_category(title: str, tags: list[str], body: str | Counter[str], *, hint: str | None = None) -> str:
    """The bundled category whose keywords the material uses most, else "General".

    The title counts three times, each tag twice, and the body by its rate of
    keywords per hundred words, so a long transcript does not drown the title.
    """
    if hint:
        for name in CATEGORY_KEYWORDS:
            if name.lower() == one_line(hint).lower():
                return name
    title_words = WORD_RE.findall(title.lower())
    tag_words = [w for t in tags for w in WORD_RE.findall(str(t).lower())]
    body_words = word_counts(body) if isinstance(body, str) else body
    per = 100.0 / max(sum(body_words.values()), 1)
    best, best_score = "General", 0.0
    for name, keys in CATEGORY_KEYWORDS.items():
        score = 3 * sum(w in keys for w in title_words) + 2 * sum(w in keys for w in tag_words)
        score += per * sum(body_words[k] for k in keys) * 3
        if score > best_score:
            best, best_score = name, score
    return best if best_score >= 2.0 else "General"


def summary_from(paragraphs: list[str], limit: int = 300) -> str:
    """The first paragraph that is more than links and hashtags, cut to `limit` characters."""
    for p in paragraphs:
        text = one_line(p)
        words = [w for w in text.split() if not w.startswith(("http://", "https://", "#", "@"))]
        if len(words) >= 4:
            return cut(text, limit)
    return ""


__all__ = ["clean", "one_line"]
