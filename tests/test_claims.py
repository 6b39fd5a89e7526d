"""The claim check (tui/services/claims.py): the hand-labelled set, numbers, Markdown, offsets,
the scorer hook, and the offline digest checked by it."""

from __future__ import annotations

import pytest
from claims_eval import CLASSES, accuracy, bundled_sections, confusion_table, run_eval

from tui.db.importer import bundled_kb_path, import_path
from tui.services.claims import (
    Quantity,
    check_claims,
    claim_segments,
    quantities,
    same_quantity,
)
from tui.services.llm import offline_digest
from tui.services.search import SearchService

SECTIONS = bundled_sections()


def section(page: str, anchor: str) -> dict:
    return SECTIONS[(page, anchor)]


# ── the labelled set ──────────────────────────────────────────────────────


def test_labelled_set_accuracy_per_class(capsys):
    confusion, wrong = run_eval()
    table = confusion_table(confusion)
    held_out, _ = run_eval(held_out=True)
    with capsys.disabled():
        print("\n" + table)
        print("held out (written after the thresholds were set):\n" + confusion_table(held_out))
        for case in wrong:
            print(f"  {case['label']} -> {case['predicted']}: {case['text']}")
    counts = {label: sum(n for (lab, _), n in confusion.items() if lab == label)
              for label in CLASSES}
    assert sum(counts.values()) >= 60 and all(counts.values()), counts
    for label in (*CLASSES, "none"):
        assert accuracy(confusion, label) >= 0.9, (label, table)


# ── numbers ───────────────────────────────────────────────────────────────


def _same(claim: str, source: str) -> bool:
    (c,), found = quantities(claim), quantities(source)
    return any(same_quantity(c, s) for s in found)


EQUIVALENT = [
    ("boost 2k", "a bell at 2 kHz"),
    ("boost 2k", "a bell at 2,000 Hz"),
    ("a bell at 2 kHz", "a bell at 2,000 Hz"),
    ("a bell at 2,000 Hz", "a bell at 2kHz"),
    ("a 0.5 s tail", "a 500 ms tail"),
    ("a 500 ms tail", "a tail of 0.5 seconds"),
    ("aim for -14 LUFS", "Spotify plays at −14 LUFS"),
    ("aim for 14 LUFS", "Spotify plays at −14 LUFS"),
    ("a 4 to 1 ratio", "ratio 4:1"),
    ("a ratio of 4", "ratio 4:1"),
    ("eight bars", "every 8 bars"),
    ("24 dB per octave", "a 24 dB/oct slope"),
    ("a 40 ms attack", "attack 10–40 ms"),  # a range takes its unit from its end
    ("cut 3 dB", "a cut of -3 dB"),
    ("1.5 kHz", "around 1,500 Hz"),
    ("4× oversampling", "oversampling, 4x to 16x"),
]
DIFFERENT = [
    ("a 2:1 ratio", "a 1:2 ratio"),  # FM: carrier and modulator swap places
    ("3 Hz", "3. Low-pass the return"),  # a bare number is not a frequency
    ("3 Hz", "3 dB of drive"),
    ("2 kHz", "2 ms"),
    ("200 Hz", "2,000 Hz"),
    ("a 3:1 ratio", "every third harmonic is missing at 3 semitones"),
    ("10 ms", "10 Hz"),
]


@pytest.mark.parametrize("claim, source", EQUIVALENT)
def test_equivalent_numbers_match(claim, source):
    assert _same(claim, source)


@pytest.mark.parametrize("claim, source", DIFFERENT)
def test_different_numbers_do_not_match(claim, source):
    assert not _same(claim, source)


def test_number_words_before_a_unit():
    assert _same("forty-eight semitones", "+24 to +48 semitones")
    assert _same("eight bars", "8 bars")
    assert not _same("forty-eight semitones", "8 semitones")


def test_numbers_said_in_words_as_transcripts_have_them():
    assert _same("cut below 80 Hz", "cut everything below eighty hertz")
    assert _same("a 250 ms release", "a release of two hundred and fifty milliseconds")
    assert _same("a decay of 1.2 s", "set the decay to one point two seconds")
    assert _same("boost 5 kHz", "boost at five thousand hertz")
    assert _same("a ratio of 8:1", "with the ratio at eight to one")
    assert not _same("a ratio of 8:1", "with the ratio at four to one")
    assert not _same("cut below 90 Hz", "cut everything below eighty hertz")
    assert quantities("two to one voice") != quantities("2:1")  # a count, not a ratio


def test_clock_times_are_not_numbers():
    assert quantities("at 1:05 and again at 12:30, or 1:02:45 in") == []
    assert [q.ratio for q in quantities("a 4:1 ratio, or 16:9, or 1:1.41")] == [
        (4.0, 1.0), (16.0, 9.0), (1.0, 1.41)]


def test_a_number_parted_from_its_unit_by_a_line_break_is_read_whole():
    source = {"section_body": "put a compressor on the return and set the attack to 10\n"
                              "milliseconds so the transients still come through"}
    (claim,) = check_claims("Set the attack to 10 ms so the transients come through.", [source],
                            cite=(1,)).claims
    assert claim.status == "supported" and claim.cited == (1,)


def test_the_source_index_matches_as_same_quantity_does():
    """Sources are matched through an index of their numbers; it must agree with
    `same_quantity` on every pair the tests above use."""
    from tui.services.claims import _NumberIndex

    texts = [c for pair in EQUIVALENT + DIFFERENT for c in pair] + [
        "4:1", "a ratio of 4", "1:1.41", "44.1 kHz", "−1 dBTP", "2x", "16th notes"]
    for claim_text in texts:
        for source_text in texts:
            for q in quantities(claim_text):
                index = _NumberIndex()
                found = quantities(source_text)
                for s in found:
                    index.add(s, 1)
                assert bool(index.match(q)) == any(same_quantity(q, s) for s in found), (
                    claim_text, source_text)


def test_a_range_with_to_is_not_a_ratio():
    assert quantities("10 to 40 ms") == [
        Quantity(0.01, "s", None, 10.0), Quantity(0.04, "s", None, 40.0)]
    assert quantities("4 to 1")[0].ratio == (4.0, 1.0)


def test_citations_are_not_numbers():
    assert quantities("Cut the mud [3].") == []
    assert quantities("Cut the mud [2, 3] at 300 Hz.") == [Quantity(300.0, "hz", None, 300.0)]


def test_a_claim_with_a_number_its_source_lacks_is_not_supported():
    src = {"title": "EQ", "section_body": "Boost the snap with 2 dB at 5 kHz on the snare."}
    assert check_claims("Boost the snap with 2 dB at 5k on the snare [1].", [src]).claims[0].status \
        == "supported"
    wrong = check_claims("Boost the snap with 2 dB at 8 kHz on the snare [1].", [src]).claims[0]
    assert wrong.status == "unsupported"
    assert "does not state its numbers" in wrong.reason


# ── Markdown, citations and offsets ───────────────────────────────────────

ANSWER = """\
## Settings for the crushed copy [1]

Go heavy on the return [1]. Use a ratio of 8:1 to 20:1. [1] Soloed, it should sound awful.

```python
# Use a ratio of 50:1 [1].
print("not a claim")
```

    indented code with a ratio of 50:1 [2]

- **Attack**: fast, 0.1–1 ms, so the transients get flattened too [1]
- **Release**: 50–150 ms. The gain recovers just before the next hit.

> A low-pass around 8–10 kHz keeps the crushed copy from getting brittle [2].

| Setting | Value |
| --- | --- |
| Ratio | 8:1 to 20:1 [1] |
"""


def test_code_blocks_and_headings_are_not_claims():
    texts = [ANSWER[s.start:s.end] for s in claim_segments(ANSWER)]
    assert texts == [
        "Go heavy on the return [1].",
        "Use a ratio of 8:1 to 20:1. [1]",
        "Soloed, it should sound awful.",
        "**Attack**: fast, 0.1–1 ms, so the transients get flattened too [1]",
        "**Release**: 50–150 ms.",
        "The gain recovers just before the next hit.",
        "A low-pass around 8–10 kHz keeps the crushed copy from getting brittle [2].",
        "| Ratio | 8:1 to 20:1 [1] |",
    ]
    assert not any("50:1" in t or "Settings for" in t for t in texts)


def test_claims_carry_offsets_citations_and_source_spans():
    sources = [section("parallel-compression-drums", "crush-settings"),
               section("parallel-compression-drums", "eq-and-blend")]
    report = check_claims(ANSWER, sources)
    by_text = {c.text: c for c in report.claims}
    for claim in report.claims:
        assert ANSWER[claim.start:claim.end] == claim.text
    moved = by_text["Use a ratio of 8:1 to 20:1. [1]"]
    assert moved.cited == (1,) and moved.status == "supported" and moved.source == 1
    body = sources[0]["section_body"]
    assert "8:1 to 20:1" in body[moved.span[0]:moved.span[1]]
    # A list item's citation covers its sentences; the second item has none.
    assert by_text["The gain recovers just before the next hit."].status == "uncited"
    assert by_text["The gain recovers just before the next hit."].source == 1
    quote = by_text["A low-pass around 8–10 kHz keeps the crushed copy from getting brittle [2]."]
    assert quote.status == "supported" and quote.source == 2
    assert "8–10 kHz" in sources[1]["section_body"][quote.span[0]:quote.span[1]]
    # "Soloed, it should sound awful." is a claim without a citation.
    assert by_text["Soloed, it should sound awful."].status == "uncited"
    summary = report.summary()
    assert summary["total"] == len(report.claims) == sum(summary[k] for k in CLASSES)
    # Source 1 backs the claims it supports (and the uncited one it is offered for);
    # source 2 the quote, and the table row's 8:1 to 20:1 is source 1's.
    backed = report.as_dict()["backed_by_source"]
    assert backed == [
        sum(1 for c in report.claims if c.source == 1), sum(1 for c in report.claims if c.source == 2)]
    assert backed[1] >= 1 and backed[0] >= 4


def test_misattributed_names_the_right_source_and_its_span():
    sources = [section("sidechain-compression-ducking", "compressor-settings"),
               section("parallel-compression-drums", "crush-settings")]
    answer = "Aim for 10–20 dB of gain reduction on the crushed copy [1]."
    (claim,) = check_claims(answer, sources).claims
    assert claim.status == "misattributed" and claim.source == 2 and claim.cited == (1,)
    assert "10–20 dB" in sources[1]["section_body"][claim.span[0]:claim.span[1]]
    payload = check_claims(answer, sources).as_dict()
    assert payload["misattributed"] == 1 and payload["items"][0]["source"] == 2
    assert [s["number"] for s in payload["items"][0]["support"]] == [1, 2]


def test_a_citation_to_no_such_source():
    sources = [section("parallel-compression-drums", "crush-settings")]
    (claim,) = check_claims("Aim for 10–20 dB of gain reduction [7].", sources).claims
    assert claim.invalid == (7,) and claim.status == "misattributed" and claim.source == 1


@pytest.mark.parametrize("text", [
    "Hi! Great question.",
    "Here's how it works:",
    "The sources do not say which compressor to use.",
    "The knowledge base doesn't cover tape machines.",
    "What ratio should you use?",
    "Let me know if that helps!",
    "In short:",
])
def test_greetings_transitions_and_gaps_are_not_claims(text):
    sources = [section("parallel-compression-drums", "crush-settings")]
    assert check_claims(text, sources).claims == ()


def test_empty_and_sourceless_answers():
    assert check_claims("", []).summary() == {
        "total": 0, "supported": 0, "misattributed": 0, "unsupported": 0, "uncited": 0}
    (claim,) = check_claims("Use a ratio of 8:1 on the bus [1].", []).claims
    assert claim.status == "unsupported" and claim.invalid == (1,)


# ── the embedding scorer hook ─────────────────────────────────────────────


def test_a_scorer_is_blended_with_the_lexical_score():
    sources = [section("reverb-sends-and-pre-delay", "pre-delay-explained")]
    paraphrase = "A gap before the tail keeps spoken words clear [1]."
    (lexical,) = check_claims(paraphrase, sources).claims
    assert lexical.status == "unsupported"
    seen = []

    def scorer(claim, passages):
        seen.append((claim, list(passages)))
        return [1.0 for _ in passages]

    (blended,) = check_claims(paraphrase, sources, scorer=scorer).claims
    assert blended.status == "supported" and blended.score > lexical.score
    assert seen and "gap" in seen[0][0] and seen[0][1][0]  # the best window's text


def test_a_failing_scorer_leaves_the_lexical_check():
    sources = [section("parallel-compression-drums", "crush-settings")]
    text = "For the crushed copy, set the ratio somewhere between 8:1 and 20:1 [1]."

    def broken(claim, passages):
        raise RuntimeError("model not loaded")

    assert check_claims(text, sources, scorer=broken) == check_claims(text, sources)
    assert check_claims(text, sources, scorer=lambda c, p: [float("nan")]) \
        == check_claims(text, sources)


# ── the offline digest states only what its sources support ───────────────

DIGEST_QUESTIONS = [
    "how do I set up parallel compression on drums",
    "what LUFS should I master to for streaming",
    "pre-delay on reverb for vocals",
    "kick drum pitch envelope decay",
    "fm bass ratios",
    "de-esser placement in a vocal chain",
    "sidechain ducking settings for bass",
    "bitcrushing and aliasing",
]


async def test_the_offline_digest_is_fully_supported(db):
    await import_path(db, bundled_kb_path())
    search = SearchService(None)
    checked = 0
    for question in DIGEST_QUESTIONS:
        items = (await search.search(question, limit=10, db=db))["items"]
        assert items, question
        digest = offline_digest(question, items)
        report = check_claims(digest, items)
        summary = report.summary()
        assert summary["total"] >= 1, digest
        assert summary["supported"] == summary["total"], (question, [
            (c.text, c.status, c.reason) for c in report.claims if c.status != "supported"])
        checked += summary["total"]
    assert checked >= len(DIGEST_QUESTIONS) * 3


def test_a_huge_answer_is_checked_up_to_a_bound():
    from tui.services.claims import MAX_CHECK_CHARS, MAX_CLAIMS

    sources = [section("parallel-compression-drums", "crush-settings")]
    normal = check_claims("Aim for 10–20 dB of gain reduction [1].", sources).as_dict()
    assert normal["unchecked_from"] is None
    many = "Aim for 10–20 dB of gain reduction [1]. " * 1000
    report = check_claims(many, sources)
    assert len(report.claims) == MAX_CLAIMS
    assert report.unchecked_from == report.claims[-1].end + 1
    long = ("A paragraph about the crushed copy [1].\n\n" * 2000)
    report = check_claims(long, sources)
    assert report.unchecked_from is not None and report.unchecked_from <= MAX_CHECK_CHARS
    assert all(c.end <= report.unchecked_from for c in report.claims)
    # A run of abbreviation-like "A. A. A." and a sentence of 50,000 numbers stay cheap
    # (they are bounded, not timed, here: see bench/claims.py).
    assert check_claims("A. " * 30000, sources).claims == ()
    assert check_claims("1 " * 50000, sources).claims == ()


def test_a_reference_list_is_not_claims():
    sources = [section("parallel-compression-drums", "crush-settings"),
               section("parallel-compression-drums", "eq-and-blend")]
    answer = ("Aim for 10–20 dB of gain reduction on the crushed copy [1].\n\n"
              "**Sources:** [1], [2]\n\n"
              "- [1] Parallel Compression on Drums — Settings for the Crushed Copy\n"
              "- [2] Parallel Compression on Drums — EQ and Blending\n")
    report = check_claims(answer, sources)
    assert [c.text for c in report.claims] == [
        "Aim for 10–20 dB of gain reduction on the crushed copy [1]."]


def test_the_view_helpers_find_the_span_of_a_citation_and_the_next_questionable_claim():
    from tui.services.claims import citation_span, next_questionable

    sources = [section("sidechain-compression-ducking", "compressor-settings"),
               section("parallel-compression-drums", "crush-settings")]
    answer = ("Aim for 10–20 dB of gain reduction on the crushed copy [1]. "
              "For ducking, use an attack of 0.1–5 ms [1]. "
              "Use a release of 900 ms on the crushed copy [2]. "
              "Hope this helps [1]!")
    payload = check_claims(answer, sources).as_dict()
    statuses = [i["status"] for i in payload["items"]]
    assert statuses == ["misattributed", "supported", "unsupported"]
    # The misattributed claim's [1]: the closest words in source 1; the right source's span.
    at = answer.index("[1]")
    field, s, e = citation_span(payload, at, 1)
    assert field == "section_body" and sources[0]["section_body"][s:e]
    field, s, e = citation_span(payload, at, 2)
    assert "10–20 dB" in sources[1]["section_body"][s:e]
    at = answer.index("[1]", answer.index("ducking"))
    field, s, e = citation_span(payload, at, 1)
    assert "0.1–5 ms" in sources[0]["section_body"][s:e]
    assert citation_span(payload, answer.rindex("[1]"), 1) is None  # not a claim
    assert citation_span(None, 0, 1) is None
    # The jump key: misattributed, then unsupported, then around again.
    first = next_questionable(payload)
    assert first["status"] == "misattributed"
    second = next_questionable(payload, first["start"])
    assert second["status"] == "unsupported"
    assert next_questionable(payload, second["start"]) == first
    assert next_questionable({"items": []}) is None


def test_checks_in_several_threads_at_once_do_not_share_a_stemmer_mid_word():
    """The check runs in threads (answers, saved answers, distilled pages at once); the
    Snowball stemmer keeps the word it works on in itself (without the lock, 3 runs of 3
    broke with IndexError on this machine)."""
    import threading

    from tui.services import claims as claims_mod

    errors = []

    def stem(k):
        try:
            for i in range(k, 3000, 4):
                claims_mod._stems(f"compressing{i}threaded{k}")
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=stem, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
