"""AnswerSegmenter on the awkward shapes of a streamed answer, without a screen: where
segments end, what runs on, when the rest goes plain, and that no text is lost."""

from __future__ import annotations

import re
import subprocess
import sys

from markdown_it import MarkdownIt

from tui.answer_segmenter import (
    LONG_LINE_CHARS,
    LONG_LINE_PLAIN_CHARS,
    MARKDOWN_LINES,
    SEGMENT_CHARS,
    SEGMENT_LINES,
    AnswerSegmenter,
    Append,
    NewSegment,
    Plain,
)

PARSER = MarkdownIt("gfm-like")


def tokens_of(text: str) -> list[str]:
    """Model-like fragments: a word with its trailing space or newline."""
    return re.findall(r"\S+[ \t]*\n?|\s+", text)


def stream(fragments: list[str], sources: int = 0):
    """[(runs_on, markdown)] per segment, and the plain-text part (None: no plain part)."""
    segmenter = AnswerSegmenter(sources)
    operations = [op for fragment in fragments for op in segmenter.feed(fragment)]
    operations += segmenter.finish()
    segments: list[list] = [[False, ""]]
    plain = None
    for op in operations:
        match op:
            case Append(text):
                assert plain is None, "Markdown after the plain part began"
                segments[-1][1] += text
            case NewSegment(runs_on):
                assert plain is None
                segments.append([runs_on, ""])
            case Plain(text):
                plain = (plain or "") + text
    return [tuple(s) for s in segments], plain


def top_blocks(markdown: str) -> list[str]:
    return [t.type for t in PARSER.parse(markdown) if t.level == 0 and t.nesting >= 0]


def test_endless_list_splits_between_items_then_goes_plain():
    text = "".join(f"- item {n}\n" for n in range(1, 2001))
    segments, plain = stream(tokens_of(text))
    markdown = "".join(s for _, s in segments)
    assert markdown + plain == text  # nothing lost, nothing added
    assert markdown.count("\n") == MARKDOWN_LINES
    assert len(segments) > 5
    for n, (runs_on, segment) in enumerate(segments):
        assert segment.startswith("- item ")
        assert top_blocks(segment) == ["bullet_list_open"]  # one list, never cut in an item
        assert segment.count("\n") <= SEGMENT_LINES + 1
        assert runs_on == (n > 0)  # the same list: every half runs on from the one before


def test_one_100k_character_line_runs_on_in_cuts_at_spaces():
    words = [f"word{n % 97}" for n in range(20_000)]
    text = " ".join(words)
    assert len(text) > 100_000 and "\n" not in text
    segments, plain = stream(tokens_of(text))
    assert plain is None
    assert "".join(s for _, s in segments) == text
    assert len(segments) > 60
    for n, (runs_on, segment) in enumerate(segments):
        assert runs_on == (n > 0)
        if n < len(segments) - 1:
            assert LONG_LINE_CHARS <= len(segment) < LONG_LINE_CHARS + 20
            assert segment.endswith(" ")  # cut after a space, never inside a word


def test_a_line_that_cannot_be_cut_goes_plain():
    text = "# " + "x" * (LONG_LINE_PLAIN_CHARS + 500) + "\n\nafter\n"
    segments, plain = stream([text[i : i + 7] for i in range(0, len(text), 7)])
    assert plain is not None and plain.endswith("after\n")
    assert "".join(s for _, s in segments) + plain == text


def test_long_code_fence_is_closed_and_reopened_with_its_info_string():
    code = "".join(f"x{n} = {n}  # [1]\n" for n in range(300))
    text = "Intro [1]\n\n```python\n" + code + "```\n\nAfter [1]\n"
    segments, plain = stream(tokens_of(text), sources=1)
    assert plain is None
    fenced = [s for _, s in segments if "```" in s]
    assert len(fenced) > 3
    for segment in fenced:
        fences = [t for t in PARSER.parse(segment) if t.type == "fence"]
        assert len(fences) == 1 and fences[0].info == "python"
        assert "cite:" not in fences[0].content  # no links inside code
    body = "".join(t.content for s in fenced for t in PARSER.parse(s) if t.type == "fence")
    assert body == code
    assert "[\\[1\\]](cite:1)" in segments[0][1] and "[\\[1\\]](cite:1)" in segments[-1][1]


def test_a_long_quote_is_never_split():
    quote = "".join(f"> quoted line {n}, long enough to count\n" for n in range(80))
    text = "Before\n\n" + quote + "\nAfter the quote\n"
    segments, plain = stream(tokens_of(text))
    assert plain is None
    quoted = [s for _, s in segments if ">" in s]
    assert len(quoted) == 1 and quote in quoted[0]
    assert len(segments) == 2 and segments[1][1] == "After the quote\n"  # split after it


def test_an_ordered_list_split_between_segments_goes_on_at_its_number():
    # Every item numbered "1." (Markdown numbers them from the first): the second half
    # must say where the first one ended, or it would start again at 1.
    items = "3. step three\n" + "".join(f"1. step {n}\n" for n in range(SEGMENT_LINES + 30))
    segments, plain = stream(tokens_of(items))
    assert plain is None and len(segments) == 2
    (_, first), (runs_on, second) = segments
    assert runs_on
    shown = len(first.splitlines())  # items 3, 4, ... in the first half
    assert second.startswith(f"{3 + shown}. step ")
    opening = next(t for t in PARSER.parse(second) if t.type == "ordered_list_open")
    assert opening.attrGet("start") == 3 + shown
    assert second.count("\n1. step") == len(second.splitlines()) - 1  # the rest unchanged


def test_another_marker_starts_a_new_list_across_a_split():
    bullets = "".join(f"- b{n}\n" for n in range(1, SEGMENT_LINES + 1))
    numbers = "".join(f"{n}) n{n}\n" for n in range(7, 12))
    segments, _ = stream(tokens_of(bullets + numbers))
    starts = [(runs_on, s.split(" ", 1)[0]) for runs_on, s in segments[1:]]
    assert starts == [(False, "7)")]  # its own list, gap before, numbered from its start


def test_a_paragraph_ends_a_segment_only_at_a_block_edge():
    paragraph = "A sentence of a paragraph that goes on for a while. " * 4 + "\n"
    text = ("\n".join([paragraph] * 12)) + "\n"
    segments, plain = stream(tokens_of(text))
    assert plain is None and len(segments) > 1
    # The blank line between two paragraphs split apart is the gap between their segments.
    assert "\n".join(s for _, s in segments) == text
    for runs_on, segment in segments:
        assert not runs_on
        assert len(segment) < SEGMENT_CHARS + 2 * len(paragraph)
        assert all(b == "paragraph_open" for b in top_blocks(segment))


def test_a_citation_split_between_fragments_is_linked_once():
    segments, _ = stream(["see [", "1", "2] and [", "3", "]"], sources=12)
    assert segments == [(False, "see [\\[12\\]](cite:12) and [\\[3\\]](cite:3)")]


def test_no_textual_import():
    code = "import sys, tui.answer_segmenter; print(any(m.startswith('textual') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- claim marks ------------------------------------------------------------------------


def test_claim_marks_go_after_their_claims_and_inside_a_table_rows_last_cell():
    from tui.answer_segmenter import CLAIM_MARKS, link_citations, mark_claims

    text = "Use 4:1 [1]. Set 400 ms [2].\n\n| ratio | 10:1 [1] |\n| --- | --- |\n"
    first = text.index("Set") - 1
    second = text.index(" [2].") + len(" [2].")
    row_end = text.index("\n\n|") + len("\n\n| ratio | 10:1 [1] |")
    marked = mark_claims(text, [(2, row_end, "unsupported", True), (0, first, "misattributed", False),
                                (1, second, "unsupported", False), (3, second, "supported", False),
                                (4, len(text) + 5, "unsupported", False)])
    assert marked == ("Use 4:1 [1]. [≠](claim:0) Set 400 ms [2]. [?](claim:1)\n\n"
                      "| ratio | 10:1 [1] [?](claim:2)|\n| --- | --- |\n")
    assert CLAIM_MARKS == {"unsupported": "?", "misattributed": "≠"}
    # The marks are no citations: linking leaves them alone.
    assert link_citations(marked, 2).count("(claim:") == 3
    assert mark_claims(text, []) == text
