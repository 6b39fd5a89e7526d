"""A part of a prepared source (`claims.source_part`, what distill checks each section's
range with) gives exactly the claim check of that text prepared on its own: the same
statuses, scores, spans and reasons, for every run of lines of a transcript; and distill
finds a range's sentences by bisect as its scan did."""

from __future__ import annotations

import random

from test_distill import VALID, transcript

from tui.materials.model import TimedSentence
from tui.services.claims import check_claims, prepare_source, source_part
from tui.services.distill import Transcript, _range_sentences, _said, _SaidTranscript

TITLE = "Parallel compression on a drum bus"
# Lines as `_said` gives them: several sentences on a line, list and heading markers at a
# line's start, a number cut from its unit at a line break, a line with no word, repeats.
LINES = [
    "Set the ratio to 4:1 on the bus compressor. Then the attack to 10",
    "milliseconds so the transient gets through",
    "- the release follows the groove at 80 ms",
    "# blend the crushed bus under the dry drums",
    "...",
    "1. high-pass the compressed copy at 100 Hz. The low end stays clean",
    "the ratio of eight to one crushes the room",
    "Saturation after the compressor adds two kHz of bite",
    "the bus compressor glues the kick and the snare",
    "Parallel compression keeps the transient of the dry drums",
    "set the attack to 10 milliseconds again on the second bus",
]
CLAIMS = (
    "Set the ratio to 4:1 on the bus compressor. The attack is 10 ms so the transient gets "
    "through. The release follows the groove at 80 ms. Blend the crushed bus under the dry "
    "drums. High-pass the compressed copy at 100 Hz. An 8:1 ratio crushes the room. "
    "Saturation adds 2 kHz of bite. The bus compressor glues the kick and the snare. "
    "A vocal de-esser tames the sibilance at 6 kHz. Parallel compression keeps the transient."
)


def test_every_run_of_lines_checks_as_its_own_text() -> None:
    whole = "\n".join(LINES)
    starts = [0]
    for line in LINES:
        starts.append(starts[-1] + len(line) + 1)
    prepared = prepare_source(TITLE, whole)
    compared = 0
    for a in range(len(LINES)):
        for b in range(a + 1, len(LINES) + 1):
            text = "\n".join(LINES[a:b])
            first, stop = starts[a], starts[b] - 1
            assert whole[first:stop] == text
            alone = check_claims(CLAIMS, [{"title": TITLE, "section_body": text}], cite=(1,))
            part = check_claims(CLAIMS, prepared=[source_part(prepared, first, stop)], cite=(1,))
            assert part.as_dict() == alone.as_dict(), (a, b)
            compared += 1
    assert compared == len(LINES) * (len(LINES) + 1) // 2
    # The check is not blind: the ranges differ in what they support.
    whole_report = check_claims(CLAIMS, prepared=[prepared], cite=(1,))
    one_line = check_claims(CLAIMS, prepared=[source_part(prepared, 0, starts[1] - 1)], cite=(1,))
    assert whole_report.count("supported") > one_line.count("supported") >= 1


def test_a_range_with_no_sentence_checks_as_an_empty_text() -> None:
    whole = "\n".join(LINES)
    at = whole.index("...")
    prepared = prepare_source(TITLE, whole)
    alone = check_claims(CLAIMS, [{"title": TITLE, "section_body": "..."}], cite=(1,))
    part = check_claims(CLAIMS, prepared=[source_part(prepared, at, at + 3)], cite=(1,))
    assert part.as_dict() == alone.as_dict()
    assert part.count("supported") == 0


def test_range_lines_by_bisect_match_the_scan() -> None:
    t = transcript()
    said_t = _SaidTranscript(t)
    assert said_t.ordered
    last = t.sentences[-1].end
    for start in [x / 2 for x in range(-10, int(last * 2) + 10, 3)]:
        for length in (0.5, 7.0, 40.0, 300.0):
            a, b = said_t.lines(start, start + length)
            assert t.sentences[a:b] == _range_sentences(t, start, start + length)
            if a < b:
                assert said_t.part(a, b)[0] == _said(t.sentences[a:b])[0]


def test_sentences_out_of_time_order_fall_back_to_the_scan() -> None:
    rng = random.Random(3)
    sentences = [TimedSentence(start=i * 5.0, end=i * 5.0 + 4.0, text=f"line {i} of it")
                 for i in range(30)]
    rng.shuffle(sentences)
    t = Transcript(key="k", creator_slug="c", creator_name="C", title="T", sentences=sentences)
    said_t = _SaidTranscript(t)
    assert not said_t.ordered
    for start in range(-5, 160, 7):
        lines = said_t.lines(float(start), start + 20.0)
        if lines is not None:
            a, b = lines
            assert t.sentences[a:b] == _range_sentences(t, float(start), start + 20.0)


def test_the_valid_page_keeps_its_verdicts() -> None:
    """check_page (a transcript read once) and check_section alone (read per section) agree."""
    from tui.services.distill import check_page, check_section

    t = transcript()
    _page, reasons, checks = check_page(VALID, t)
    assert reasons == []
    for sec, check in zip(VALID["sections"], checks, strict=True):
        alone = check_section(t, sec["heading"], sec["body"], sec["start_time"], sec["end_time"])
        assert alone.as_dict() == check.as_dict()
