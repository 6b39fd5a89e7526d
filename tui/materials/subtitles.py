"""Subtitles (WebVTT, SubRip) to timed words and re-formed sentences.

WebVTT is parsed by hand: webvtt-py parses a 20-minute YouTube auto-caption file
(about 1,000 cues) in about 90 ms, several times the budget of a whole import per
video, and its `text` drops the inline word timings we need; the part of the
cue grammar subtitles use is small. SubRip goes through the `srt` library.

YouTube's auto-captions ("rolling" captions) show each line twice: once as it
is spoken, with inline word timings (`word<00:00:01.234><c> next</c>`), then
again, plain, above the next line (and alone in a 10 ms cue). A line with
word timings is new; a plain line the cue before showed is a repeat. What
is left has every spoken word once, in order; `[Music]`-style markers, tags and
entities are dropped. Without punctuation, sentences are cut at pauses between
word timings (and at a length cap), then capitalised and ended with a full stop.

A file in exactly YouTube's layout is read in bulk (`youtube_words`); any other
WebVTT, and any such file with something unexpected in it, cue by cue
(`parse_vtt`, then `rolling_words` or `cue_words`), which also names the problem.

One topic, subtitle files to sentences, hence its length: the two WebVTT readers (bulk and
cue by cue) must agree word for word, so they live side by side.
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
YOUTUBE_PAIR = re.compile(r"<(\d\d):(\d\d):(\d\d\.\d\d\d)><c> ([^\s<>&\[\]♪]+)</c>")
TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-like cue tags, and ASS overrides ({\an8}) in SRT
SRT_STRAY_INDEX = re.compile(r"\n[ \t]*\n[ \t]*\d+[ \t]*(?:\n|$)")
MARKER = re.compile(r"\[[^\]]*\]|♪+|>>")
SENTENCE_END = (".", "!", "?", "…")
ENDER_RE = re.compile(r"[.!?…][\"')\]»”’]*(?= |$)")
MAX_SENTENCE_WORDS = 40
SOFT_SENTENCE_WORDS = 28
MAX_WORD_SECONDS = 0.8


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]
    line: int  # 1-based line of the timing line, for messages


class LazyCue:
    """A cue whose times are "HH:MM:SS.mmm" strings until asked for: half the cues of
    auto-captions only repeat a line and their times are never needed."""

    __slots__ = ("_start", "_end", "lines", "line", "stamps")

    def __init__(self, stamps: str, lines: list[str], line: int) -> None:
        self.stamps = stamps  # "HH:MM:SS.mmmHH:MM:SS.mmm"
        self._start: float | None = None
        self._end: float | None = None
        self.lines = lines
        self.line = line

    @property
    def start(self) -> float:
        if self._start is None:
            s = self.stamps
            self._start = float(s[6:12]) + int(s[3:5]) * 60 + int(s[:2]) * 3600
        return self._start

    @property
    def end(self) -> float:
        if self._end is None:
            s = self.stamps
            self._end = float(s[18:24]) + int(s[15:17]) * 60 + int(s[12:14]) * 3600
        return self._end


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


def parse_vtt(text: str) -> list[Cue | LazyCue]:
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
        # The usual "HH:MM:SS.mmm --> HH:MM:SS.mmm ...": fixed-width stamps compare as
        # strings, so the order is checked without converting them.
        stamps = timing[:12] + timing[17:29]
        if (
            len(timing) >= 29 and timing[12:17] == " --> " and (len(timing) == 29 or timing[29] in " \t")
            and stamps[2] == stamps[5] == stamps[14] == stamps[17] == ":" and stamps[8] == stamps[20] == "."
            and stamps.count(":") == 4 and stamps.count(".") == 2
            and stamps.isascii() and stamps.replace(":", "").replace(".", "").isdigit()
        ):
            previous = cues[-1] if cues else None
            if stamps[12:] < stamps[:12] or (
                previous is not None and (stamps[:12] < previous.stamps[:12] if isinstance(previous, LazyCue)
                                          else float(stamps[6:12]) + int(stamps[3:5]) * 60 + int(stamps[:2]) * 3600
                                          < previous.start - 0.0005)
            ):
                cue = LazyCue(stamps, [], at)
                _check_order(cues, cue.start, cue.end, at)
            cues.append(LazyCue(stamps, lines[1:], at))
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
            if "\n\n" in sub.content and SRT_STRAY_INDEX.search(sub.content):
                # `srt` keeps a blank line and what follows in the cue; an index there is a
                # cue whose timing line is missing or cut off
                raise Refused(f"not an SRT file (cue {number + 1} has no timing line; truncated file?)")
            cues.append(Cue(start, end, sub.content.split("\n"), number))
    except Refused as exc:  # an order problem names the cue: SubRip counts cues, not lines
        reason = exc.reason
        raise Refused("cue " + reason[5:] if reason.startswith("line ") else reason) from None
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
    """YouTube's auto-captions: inline word timings in the cues, or (converted to SubRip
    by `yt-dlp --convert-subs srt`, which drops the timings) cues that mostly begin
    with the line the cue before ended with."""
    for cue in cues[:200]:
        for line in cue.lines:
            if "<" in line and INLINE_TS.search(line):
                return True
    sample = [[ln.strip() for ln in c.lines if ln.strip()] for c in cues[:200]]
    sample = [lines for lines in sample if lines]
    carried = sum(1 for a, b in zip(sample, sample[1:], strict=False) if b[0] == a[-1])
    return len(sample) >= 4 and carried >= 0.5 * (len(sample) - 1)


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


def rolling_words(cues: list[Cue]) -> Words:
    words = Words()
    starts, texts = words.starts, words.texts
    # A plain line that the cue before showed too is a repeat. After a pause YouTube
    # clears the lines (a cue of blank lines), so a word said again then is new.
    previous: list[str] = []
    last = 0.0
    last_end = 0.0
    for cue in cues:
        shown: list[str] = []
        for raw in cue.lines:
            if "<" not in raw and "&" not in raw:  # a plain line: mostly a repeat
                plain = raw.strip()
                if "  " in plain or "\t" in plain:
                    plain = " ".join(plain.split())
                if not plain:
                    continue
                shown.append(plain)
                if plain in previous:
                    continue
            if "<c> " in raw:  # YouTube's own layout, "word<HH:MM:SS.mmm><c> word</c>...", in one findall
                i = raw.find("<")
                head = raw[:i].strip()
                pairs = YOUTUBE_PAIR.findall(raw, i)
                if (
                    head and " " not in head and "[" not in head and "&" not in raw
                    and 22 * len(pairs) + sum(len(w) for _, _, _, w in pairs) == len(raw.rstrip()) - i
                ):
                    times = [cue.start]
                    times += [float(sec) + int(mi) * 60 + int(h) * 3600 for h, mi, sec, _ in pairs]
                    if last <= times[0] and times[-1] <= max(cue.end, cue.start) and times == sorted(times):
                        line_words = [head]
                        line_words += [w for _, _, _, w in pairs]
                        shown.append(" ".join(line_words))
                        starts += times
                        texts += line_words
                        last = times[-1]
                        last_end = cue.end
                        continue
            if "<" in raw:
                # YouTube's <c> tags go with str.replace, other tags with a regex; the split
                # leaves text and timestamps alternating
                line = raw.replace("<c>", "").replace("</c>", "")
                parts = INLINE_TS.split(line)
                segments = parts[0::2]
                rest = "".join(segments)
                if "<" in rest or "{" in rest:
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
            if timed or "&" in raw:
                shown.append(plain)
                if not timed and plain in previous:
                    continue
            top = max(cue.end, cue.start)
            times = [cue.start]
            times += [float(p[6:]) + int(p[3:5]) * 60 + int(p[:2]) * 3600 if len(p) == 12 else seconds(p)
                      for p in parts[1::2]]
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
            elif not timed:  # a new line without word timings: its words spread over the cue
                if "[" in plain or "♪" in plain or ">>" in plain:
                    plain = MARKER.sub(" ", plain)
                items = plain.split()
                begin = min(max(cue.start, last), top)
                step = (top - begin) / max(len(items), 1)
                for k, w in enumerate(items):
                    starts.append(begin + k * step)
                    texts.append(w)
                if items:
                    last = starts[-1]
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
        previous = shown
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


CUE_RE = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)(?:[ \t][^\n]*)?\n((?:[^\n]+(?:\n|$))*)", re.M)
YOUTUBE_WORD = re.compile(r"<(\d\d:\d\d:\d\d\.\d\d\d)><c> ([^\s<>&\[\]♪]+)</c>")


def youtube_words(text: str) -> Words | None:
    """Words of a WebVTT file in YouTube's own rolling layout, read in bulk: one regex
    pass finds every cue, times stay strings (fixed width, so they compare as strings)
    until the words are known. None as soon as the file strays from that layout (any
    other tag, a timing elsewhere, a cue out of order ...): `parse_vtt` and
    `rolling_words` then read it, and say what is wrong with it."""
    blocks = CUE_RE.findall(text)
    if not blocks or len(blocks) != text.count("-->"):
        return None
    starts_s = [b[0] for b in blocks]
    if starts_s != sorted(starts_s) or any(e < s for s, e, _ in blocks):
        return None
    stamps: list[str] = []
    texts: list[str] = []
    previous: list[str] = []
    last = "00:00:00.000"
    last_end = last
    for start, end, body in blocks:
        shown: list[str] = []
        for raw in body.split("\n"):
            if "<" in raw:
                i = raw.find("<")
                head = raw[:i].strip()
                pairs = YOUTUBE_WORD.findall(raw, i)
                if (
                    not head or " " in head or "[" in head or "&" in raw or "♪" in head
                    or 22 * len(pairs) + sum(len(w) for _, w in pairs) != len(raw.rstrip()) - i
                ):
                    return None
                line_stamps = [start]
                line_stamps += [t for t, _ in pairs]
                if start < last or line_stamps[-1] > end or line_stamps != sorted(line_stamps):
                    return None
                line_words = [head]
                line_words += [w for _, w in pairs]
                shown.append(" ".join(line_words))
                stamps += line_stamps
                texts += line_words
                last, last_end = line_stamps[-1], end
                continue
            plain = raw.strip()
            if not plain:
                continue
            if "&" in plain or "  " in plain or "\t" in plain:
                return None
            shown.append(plain)
            if plain in previous:  # shown by the cue before: a repeat
                continue
            if "[" in plain or "♪" in plain or ">>" in plain:
                plain = MARKER.sub(" ", plain)
            items = plain.split()
            if len(items) > 1:  # a new line of several words without timings: the slow path
                return None
            if items:
                stamps.append(max(start, last))
                texts.append(items[0])
                last, last_end = stamps[-1], end
        previous = shown
    words = Words()
    words.texts = texts
    starts = words.starts = [float(t[6:]) + int(t[3:5]) * 60 + int(t[:2]) * 3600 for t in stamps]
    n = len(starts)
    words.pauses = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    words.ends = [b if b - a < MAX_WORD_SECONDS else a + MAX_WORD_SECONDS
                  for a, b in zip(starts, starts[1:], strict=False)]
    if n:
        end_f = float(last_end[6:]) + int(last_end[3:5]) * 60 + int(last_end[:2]) * 3600
        words.ends.append(min(max(end_f, starts[-1]), starts[-1] + MAX_WORD_SECONDS))
        words.pauses.append(0.0)
    return words


def vtt_transcript(text: str) -> tuple[list[TimedSentence], bool]:
    """A WebVTT file's sentences, and whether they were rolling auto-captions."""
    first = text[: text.find("\n")] if "\n" in text else text
    first = first.lstrip("\ufeff")
    if not first.startswith("WEBVTT") or (len(first) > 6 and first[6] not in " \t"):
        raise Refused("not a WebVTT file (no WEBVTT header)")
    words = youtube_words(text) if "<c> " in text else None
    if words is not None:
        return sentences(words, rolling=True), True
    return transcript(parse_vtt(text))


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
    enders = len(ENDER_RE.findall(" ".join(texts)))
    punctuated = enders >= max(1, n // 40)
    if rolling:
        sample = sorted(pauses[:-1:3]) or [0.3]
        typical = sample[len(sample) // 2]
        threshold = max(0.7, 2.2 * typical)
    else:
        threshold = 0.5
    if punctuated:
        threshold = max(threshold, 2.0)
    # Hard breaks found in one pass each (comprehensions, not a loop over every word);
    # only a stretch longer than the soft cap is walked word by word.
    hard = {i for i, p in enumerate(pauses) if p >= threshold}
    if punctuated:
        hard.update(i for i, w in enumerate(texts) if w.rstrip("\"')]»”’").endswith(SENTENCE_END))
    hard.add(n - 1)
    soft = 0.6 * threshold
    cuts: list[int] = []
    begin = 0
    for i in sorted(hard):
        while i - begin + 1 > SOFT_SENTENCE_WORDS:  # too long: a shorter pause, else the cap
            j = next((k for k in range(begin + SOFT_SENTENCE_WORDS - 1, min(i, begin + MAX_SENTENCE_WORDS - 1))
                      if pauses[k] >= soft), min(i, begin + MAX_SENTENCE_WORDS - 1))
            if j >= i:
                break
            cuts.append(j)
            begin = j + 1
        cuts.append(i)
        begin = i + 1
    out: list[TimedSentence] = []
    begin = 0
    for i in cuts:
        text = " ".join(texts[begin : i + 1])
        if not punctuated and "i" in text:
            text = I_WORD.sub("I", text)
        if not text.rstrip("\"')]»”’").endswith(SENTENCE_END):  # cut at a pause or the cap
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
