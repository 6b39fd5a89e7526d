"""A transcript's sentences grouped into sections: one per chapter, else topic-sized parts.

A section always holds whole sentences. Without chapters a section runs about
1-4 minutes: it ends at the sentence boundary with the longest pause in that
window (a change of topic is usually a breath), and its heading comes from its
own most distinctive words, or its first sentence cut short.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui.materials.model import MaterialSection, TimedSentence
from tui.materials.textio import anchors, cut, distinctive_terms

MIN_SECONDS = 60.0
TARGET_SECONDS = 150.0
MAX_SECONDS = 240.0
PARAGRAPH_SENTENCES = 5


@dataclass
class Chapter:
    start: float
    end: float
    title: str


def body_of(sentences: list[TimedSentence]) -> str:
    """Sentences as paragraphs of a few sentences each."""
    paras = [
        " ".join(s.text for s in sentences[i : i + PARAGRAPH_SENTENCES])
        for i in range(0, len(sentences), PARAGRAPH_SENTENCES)
    ]
    return "\n\n".join(paras)


def by_chapters(sentences: list[TimedSentence], chapters: list[Chapter]) -> list[MaterialSection]:
    """One section per chapter holding the sentences that start in it (chapters without
    speech are left out: there is nothing in them to find)."""
    groups: list[list[TimedSentence]] = [[] for _ in chapters]
    k = 0
    for s in sentences:
        while k + 1 < len(chapters) and s.start >= chapters[k + 1].start:
            k += 1
        groups[k].append(s)
    kept = [(c, g) for c, g in zip(chapters, groups, strict=False) if g]
    names = anchors([c.title for c, _ in kept])
    return [
        MaterialSection(anchor=a, heading=c.title, body=body_of(g), locator="video",
                        start_time=round(c.start, 3), end_time=round(c.end, 3))
        for a, (c, g) in zip(names, kept, strict=False)
    ]


def split_points(sentences: list[TimedSentence]) -> list[int]:
    """Indices where sections start (0 first)."""
    points = [0]
    n = len(sentences)
    i = 0
    while True:
        start = sentences[i].start
        best, best_key = None, None
        j = i + 1
        while j < n and sentences[j].start - start <= MAX_SECONDS:
            if sentences[j].start - start >= MIN_SECONDS:
                pause = sentences[j].start - sentences[j - 1].end
                key = (round(pause, 1), -abs(sentences[j].start - start - TARGET_SECONDS))
                if best_key is None or key > best_key:
                    best, best_key = j, key
            j += 1
        if j >= n:  # the rest fits in one section
            break
        if best is None:  # one sentence longer than the window: cut after it
            best = i + 1
        points.append(best)
        i = best
    if len(points) > 1 and sentences[-1].end - sentences[points[-1]].start < MIN_SECONDS:
        # a short tail joins the section before it unless that makes it far too long
        if sentences[-1].end - sentences[points[-2]].start <= MAX_SECONDS + MIN_SECONDS:
            points.pop()
    return points


def by_topic(sentences: list[TimedSentence]) -> list[MaterialSection]:
    """Topic-sized sections at sentence boundaries, each with a heading of its own words."""
    if not sentences:
        return []
    points = split_points(sentences) + [len(sentences)]
    groups = [sentences[a:b] for a, b in zip(points, points[1:], strict=False)]
    bodies = [" ".join(s.text for s in g) for g in groups]
    terms = distinctive_terms(bodies, 3)
    headings = []
    for g, t in zip(groups, terms, strict=False):
        if len(t) >= 2:
            words = [w.replace("-", " ") if w.count("-") > 1 else w for w in t]
            head = ", ".join(words[:-1]) + " and " + words[-1]
            headings.append(head[0].upper() + head[1:])
        else:
            headings.append(cut(g[0].text.rstrip("."), 60))
    names = anchors(headings)
    return [
        MaterialSection(anchor=a, heading=h, body=body_of(g), locator="video",
                        start_time=g[0].start, end_time=g[-1].end)
        for a, h, g in zip(names, headings, groups, strict=False)
    ]
