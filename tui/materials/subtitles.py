"""Subtitles (WebVTT, SubRip) to timed words and re-formed sentences.

WebVTT is parsed by hand: webvtt-py parses a 20-minute YouTube auto-caption file
(about 1,000 cues) in about 90 ms, several times the budget of a whole import per
video, and its `text` drops the inline word timings we need; the part of the
cue grammar subtitles use is small. SubRip goes through the `srt` library.

YouTube's auto-captions ("rolling" captions) show each line twice: once as it
is spoken, with inline word timings (`word<00:00:01.234><c> next</c>`), then
again, plain, above the next line (and alone in a 10 ms cue). A line with
word timings is new; a plain line equal to one just shown is a repeat. What
is left has every spoken word once, in order; `[Music]`-style markers, tags and
entities are dropped. Without punctuation, sentences are cut at pauses between
word timings (and at a length cap), then capitalised and ended with a full stop.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from tui.materials.model import TimedSentence
from tui.materials.textio import Refused, cut

TIMING_RE = re.compile(
    r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})[ \t]+-->[ \t]+((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})(?:[ \t].*)?$"
)
INLINE_TS = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>")
TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-like cue tags, and ASS overrides ({\an8}) in SRT
MARKER = re.compile(r"\[[^\]]*\]|♪+|>>")
SENTENCE_END = (".", "!", "?", "…")
MAX_SENTENCE_WORDS = 40
SOFT_SENTENCE_WORDS = 28
MAX_WORD_SECONDS = 0.8


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]
    line: int  # 1-based line of the timing line, for messages


def seconds(stamp: str) -> float:
    if len(stamp) == 12 and stamp[2] == ":" and stamp[5] == ":":  # HH:MM:SS.mmm, the usual form
        return int(stamp[:2]) * 3600 + int(stamp[3:5]) * 60 + float(stamp[6:].replace(",", "."))
    parts = stamp.replace(",", ".").split(":")
    value = float(parts[-1])
    if len(parts) >= 2:
        value += int(parts[-2]) * 60
    if len(parts) == 3:
        value += int(parts[0]) * 3600
    return value


def clock(t: float) -> str:
    ms = int(round(t * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _check_order(cues: list[Cue], start: float, end: float, line: int) -> None:
    if end < start:
        raise Refused(f"line {line}: cue ends at {clock(end)}, before it starts ({clock(start)})")
    if cues and start < cues[-1].start - 0.0005:
        raise Refused(f"line {line}: cue starts at {clock(start)}, before the previous cue "
                      f"({clock(cues[-1].start)}); times go backwards")


def parse_vtt(text: str) -> list[Cue]:
    """The cues of a WebVTT file (text with LF line ends). Raises Refused."""
    first = text[: text.find("\n")] if "\n" in text else text
    first = first.lstrip("\ufeff")
    if not first.startswith("WEBVTT") or (len(first) > 6 and first[6] not in " \t"):
        raise Refused("not a WebVTT file (no WEBVTT header)")
    cues: list[Cue] = []
    line_no = 1
    # Blocks are separated by empty lines (a line holding a space, as YouTube writes
    # under a finished line, is cue text, not a separator).
    for index, block in enumerate(text.split("\n\n")):
        at = line_no
        line_no += block.count("\n") + 2
        if index == 0:  # the header: WEBVTT, Kind:, Language: (a cue may follow without a gap)
            if "-->" not in block:
                continue
            block = block[block.index("\n", 0, block.index("-->")) + 1 :] if "\n" in block[: block.index("-->")] else block
        stripped = block.lstrip("\n")
        at += len(block) - len(stripped)
        if not stripped:
            continue
        lines = stripped.split("\n")
        timing = lines[0]
        if "-->" not in timing:
            if len(lines) > 1 and "-->" in lines[1] and not timing.startswith(("NOTE", "STYLE", "REGION")):
                lines = lines[1:]  # a cue identifier
                timing = lines[0]
                at += 1
            else:  # NOTE, STYLE, REGION, or text outside a cue: skipped as the spec says
                continue
        m = TIMING_RE.match(timing)
        if not m:
            raise Refused(f"line {at}: malformed cue timing {cut(timing, 40)!r} (truncated file?)")
        start, end = seconds(m.group(1)), seconds(m.group(2))
        if end < start or (cues and start < cues[-1].start - 0.0005):
            _check_order(cues, start, end, at)
        cues.append(Cue(start, end, lines[1:], at))
    if not cues:
        raise Refused("no cues (an empty WebVTT file)")
    return cues


def parse_srt(text: str) -> list[Cue]:
    """The cues of a SubRip file, through the `srt` library. Raises Refused."""
    import srt

    cues: list[Cue] = []
    try:
        for number, sub in enumerate(srt.parse(text.lstrip("\ufeff")), 1):
            start, end = sub.start.total_seconds(), sub.end.total_seconds()
            _check_order(cues, start, end, number)
            cues.append(Cue(start, end, sub.content.split("\n"), number))
    except Refused as exc:
        raise Refused(exc.reason.replace("line ", "cue ", 1)) from None
    except (srt.SRTParseError, ValueError) as exc:
        where = ""
        m = re.search(r"at char (\d+)", str(exc))
        if m:
            where = f" at line {text.count(chr(10), 0, int(m.group(1))) + 1}"
        raise Refused(f"not an SRT file (unreadable cue{where})") from None
    if not cues:
        raise Refused("not an SRT file (no cues)")
    return cues


def is_rolling(cues: list[Cue]) -> bool:
    """YouTube's auto-captions: inline word timings in the cues."""
    for cue in cues[:200]:
        for line in cue.lines:
            if "<" in line and INLINE_TS.search(line):
                return True
    return False


def _plain(segment: str) -> str:
    if "<" in segment or "{" in segment:
        segment = TAG.sub("", segment)
    if "&" in segment:
        segment = html.unescape(segment)
    return segment


class Words:
    """Timed words, in three parallel lists (fast to build for 3,500 words)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.texts: list[str] = []
        self.pauses: list[float] = []


def _stamp(stamp: str) -> float:
    if len(stamp) == 12:
        return int(stamp[:2]) * 3600 + int(stamp[3:5]) * 60 + float(stamp[6:])
    return seconds(stamp)


def rolling_words(cues: list[Cue]) -> Words:
    words = Words()
    starts, texts = words.starts, words.texts
    recent: list[str] = []  # the last two lines shown: their plain repeats are skipped
    last = 0.0
    last_end = 0.0
    for cue in cues:
        for raw in cue.lines:
            if "<" in raw:
                # YouTube's <c> tags go with str.replace, other tags with a regex; the split
                # leaves text and timestamps alternating
                line = raw.replace("<c>", "").replace("</c>", "")
                parts = INLINE_TS.split(line)
                segments = parts[0::2]
                if any("<" in p or "{" in p for p in segments):
                    segments = [TAG.sub("", p) for p in segments]
            else:
                segments = [raw]
                parts = segments
            if "&" in raw:
                segments = [html.unescape(p) for p in segments]
            plain = " ".join(" ".join(segments).split())
            if not plain:
                continue
            timed = len(parts) > 1
            if not timed and plain in recent:
                continue
            recent.append(plain)
            if len(recent) > 2:
                del recent[0]
            top = max(cue.end, cue.start)
            times = [cue.start]
            times += [_stamp(p) for p in parts[1::2]]
            split = [p.split() for p in segments]
            simple = (
                all(len(ws) == 1 for ws in split)
                and "[" not in plain and "♪" not in plain and ">>" not in plain
                and last <= times[0] and times[-1] <= top
                and all(a <= b for a, b in zip(times, times[1:], strict=False))
            )
            if simple:  # one word per timing, in order: the usual line
                starts += times
                texts += [ws[0] for ws in split]
                last = times[-1]
            else:
                for t, segment in zip(times, segments, strict=False):
                    if "[" in segment or "♪" in segment or ">>" in segment:
                        segment = MARKER.sub(" ", segment)
                    t = min(max(t, cue.start, last), top)
                    for w in segment.split():
                        starts.append(t)
                        texts.append(w)
                    last = t
            last_end = cue.end
    n = len(starts)
    ends = words.ends
    pauses = words.pauses
    for i in range(n - 1):
        a, b = starts[i], starts[i + 1]
        ends.append(b if b - a < MAX_WORD_SECONDS else a + MAX_WORD_SECONDS)
        pauses.append(b - a)
    if n:
        ends.append(min(max(last_end, starts[-1]), starts[-1] + MAX_WORD_SECONDS))
        pauses.append(0.0)
    return words


def cue_words(cues: list[Cue]) -> Words:
    """Words of normal (non-rolling) cues, spread evenly over each cue; a cue equal to the
    one before it and continuing it is a repeat."""
    words = Words()
    previous = None
    previous_end = -1.0
    for index, cue in enumerate(cues):
        text = " ".join(MARKER.sub(" ", _plain(" ".join(cue.lines))).split())
        if not text:
            continue
        if text == previous and cue.start - previous_end < 0.05:
            previous_end = cue.end
            continue
        previous, previous_end = text, cue.end
        items = text.split()
        step = (cue.end - cue.start) / len(items)
        for k, w in enumerate(items):
            words.starts.append(cue.start + k * step)
            words.ends.append(cue.start + (k + 1) * step)
            words.texts.append(w)
            words.pauses.append(0.0)
        nxt = next((c.start for c in cues[index + 1 :] if c.lines), cue.end)
        words.pauses[-1] = max(0.0, nxt - cue.end)
    return words


I_WORD = re.compile(r"\bi\b")


def sentences(words: Words, *, rolling: bool) -> list[TimedSentence]:
    """Words re-formed into sentences.

    Punctuated text (most manual subtitles) is cut after sentence-ending
    punctuation; unpunctuated text (auto-captions) at pauses: a gap between word
    starts well above the speaker's usual one (rolling), or between cues
    (normal subtitles). Both are cut at a length cap too.
    """
    texts, starts, ends, pauses = words.texts, words.starts, words.ends, words.pauses
    n = len(texts)
    if not n:
        return []
    enders = sum(1 for w in texts if w.rstrip("\"')]»”’").endswith(SENTENCE_END))
    punctuated = enders >= max(1, n // 40)
    if rolling:
        sample = sorted(pauses[:-1:3]) or [0.3]
        typical = sample[len(sample) // 2]
        threshold = max(0.7, 2.2 * typical)
    else:
        threshold = 0.5
    if punctuated:
        threshold = max(threshold, 2.0)
    out: list[TimedSentence] = []
    begin = 0
    for i in range(n):
        size = i - begin + 1
        end_here = (
            i == n - 1
            or pauses[i] >= threshold
            or size >= MAX_SENTENCE_WORDS
            or (size >= SOFT_SENTENCE_WORDS and pauses[i] >= 0.6 * threshold)
            or (punctuated and texts[i].rstrip("\"')]»”’").endswith(SENTENCE_END))
        )
        if not end_here:
            continue
        text = " ".join(texts[begin : i + 1])
        if not punctuated:
            text = I_WORD.sub("I", text)
            if not text.endswith(SENTENCE_END):
                text += "."
        text = text[0].upper() + text[1:]
        out.append(TimedSentence(round(starts[begin], 3), round(max(ends[i], starts[begin]), 3), text))
        begin = i + 1
    return out


def transcript(cues: list[Cue]) -> tuple[list[TimedSentence], bool]:
    """The cues' sentences, and whether they were rolling auto-captions."""
    rolling = is_rolling(cues)
    words = rolling_words(cues) if rolling else cue_words(cues)
    return sentences(words, rolling=rolling), rolling
