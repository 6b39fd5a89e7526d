"""The creator-voice block: five tiers at every boundary, weights refused, bad profiles skipped."""

from __future__ import annotations

import math

import pytest

from tui.services.personality import (
    build_personality_block,
    temperature_for,
    tier_name,
    validate_weight,
)

PROFILE = {
    "summary": "Ada talks in short, exact sentences.",
    "tone": {
        "teaching_style": "step by step",
        "energy": "low",
        "formality": "formal",
        "descriptors": ["precise", "dry", "calm", "exact", "patient", "sixth", "seventh"],
    },
    "vocabulary": {
        "signature_phrases": ["measure twice", "trust the meter", "less is more", "check mono",
                              "gain first"],
        "distinctive_terms": ["headroom"],
        "sound_descriptions": ["glassy"],
    },
    "style_markers": {
        "explanation_approach": "numbers first",
        "uses_analogies": True,
        "audience_engagement": "rhetorical questions",
        "sound_words": ["thwack"],
        "self_references": "rarely",
        "pacing": "slow",
    },
}

SUBTLE = "When relevant, subtly reference Ada's communication style."
ADOPT = "Adopt Ada's tone and communication style."
RESPOND = "Respond as Ada would, using their voice and manner."
EMBODY = "Fully embody Ada — use their exact phrases, energy, and teaching approach."
TONE = "Teaching style: step by step. Match their formal low tone."
TIER2 = ("Tone: precise, dry, calm, exact, patient. Explanation approach: numbers first. "
         "Use analogies when helpful. Audience engagement: rhetorical questions.")
TIER4 = ("Distinctive terms: headroom. Sound descriptions: glassy. Sound words: thwack. "
         "Self-references: rarely. Pacing: slow.")
SUMMARY = "Ada talks in short, exact sentences."


def phrases(n: int) -> str:
    return "Use their signature phrases: " + ", ".join(
        PROFILE["vocabulary"]["signature_phrases"][:n]) + "."


EXPECTED = {
    0.0: ("off", ""),
    0.19: ("off", ""),
    0.2: ("subtle", f"{SUBTLE} {TONE}"),
    0.39: ("subtle", f"{SUBTLE} {TONE}"),
    0.4: ("adopt", f"{ADOPT} {TONE} {TIER2}"),
    0.59: ("adopt", f"{ADOPT} {TONE} {TIER2}"),
    # max(2, round(w * 5)): 0.6 -> 3, 0.79 -> 4, 0.8 -> 4, 0.89 -> 4, 0.9 -> 4 (round half even), 1.0 -> 5
    0.6: ("respond as", f"{RESPOND} {TONE} {TIER2} {phrases(3)}"),
    0.79: ("respond as", f"{RESPOND} {TONE} {TIER2} {phrases(4)}"),
    0.8: ("embody", f"{EMBODY} {TONE} {TIER2} {phrases(4)} {TIER4}"),
    0.89: ("embody", f"{EMBODY} {TONE} {TIER2} {phrases(4)} {TIER4}"),
    0.9: ("full", f"{EMBODY} {TONE} {TIER2} {phrases(4)} {TIER4} {SUMMARY}"),
    1.0: ("full", f"{EMBODY} {TONE} {TIER2} {phrases(5)} {TIER4} {SUMMARY}"),
}


@pytest.mark.parametrize("weight", sorted(EXPECTED))
def test_tier_boundaries(weight):
    tier, block = EXPECTED[weight]
    assert tier_name(weight) == tier
    assert build_personality_block("Ada", PROFILE, weight) == block


@pytest.mark.parametrize("weight", sorted(EXPECTED))
def test_temperature_scales_with_weight(weight):
    assert temperature_for(weight) == pytest.approx(0.3 + 0.2 * weight)


def test_signature_phrase_count_has_a_floor_of_two():
    profile = {"vocabulary": {"signature_phrases": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]}}
    block = build_personality_block("X", profile, 0.6)
    assert "Use their signature phrases: a, b, c, d, e, f." in block  # round(0.6*10) = 6
    small = {"vocabulary": {"signature_phrases": ["a", "b", "c"]}}
    assert "Use their signature phrases: a, b." in build_personality_block("X", small, 0.6)  # max(2, 2)


def test_defaults_when_tone_is_missing():
    assert build_personality_block("X", {}, 0.3) == (
        "When relevant, subtly reference X's communication style. Match their conversational moderate tone."
    )


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, -math.inf, "high", None, True, [0.5]])
def test_bad_weights_are_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="personality weight must be a number from 0 to 1"):
        validate_weight(bad)
    with pytest.raises(ValueError):
        build_personality_block("Ada", PROFILE, bad)
    with pytest.raises(ValueError):
        tier_name(bad)


def test_numeric_strings_and_ints_are_accepted():
    assert validate_weight("0.5") == 0.5
    assert validate_weight(1) == 1.0


WRONG_TYPES = [
    None,
    "a string",
    42,
    [],
    {"tone": "loud", "vocabulary": None, "style_markers": 7, "summary": ["not", "text"]},
    {"tone": {"teaching_style": 5, "energy": None, "formality": ["x"], "descriptors": "precise"},
     "vocabulary": {"signature_phrases": "measure twice", "distinctive_terms": 3,
                    "sound_descriptions": {"a": 1}},
     "style_markers": {"explanation_approach": [], "uses_analogies": "yes",
                       "audience_engagement": 1, "sound_words": "thwack",
                       "self_references": None, "pacing": 2.5},
     "summary": 17},
    {"vocabulary": {"signature_phrases": ["ok", None, 3, {"x": 1}, "fine"]},
     "tone": {"descriptors": [None, "dry", 5]}},
]


@pytest.mark.parametrize("profile", WRONG_TYPES)
@pytest.mark.parametrize("weight", [0.2, 0.5, 0.7, 0.85, 1.0])
def test_wrong_types_never_raise(profile, weight):
    block = build_personality_block("Ada", profile, weight)
    assert isinstance(block, str)
    for junk in ("None", "measure twice", "thwack", "17", "2.5", "yes"):
        assert junk not in block


def test_wrong_typed_fields_are_skipped_and_good_ones_kept():
    block = build_personality_block("Ada", WRONG_TYPES[-1], 1.0)
    assert "Use their signature phrases: ok, fine." in block
    assert "Tone: dry." in block
    profile = WRONG_TYPES[-2]
    block = build_personality_block("Ada", profile, 1.0)
    assert block == f"{EMBODY} Match their conversational moderate tone."


# -- fields that already end a sentence -----------------------------------------------
PUNCTUATED = {
    "summary": "Ada talks in short, exact sentences.",
    "tone": {"teaching_style": "explained along the way.", "energy": "high!",
             "formality": "casual.", "descriptors": ["warm", "dry?"]},
    "vocabulary": {"signature_phrases": ["trust the meter!", "check mono…"],
                   "distinctive_terms": ["headroom."], "sound_descriptions": ["glassy?"]},
    "style_markers": {"explanation_approach": "numbers first…",
                      "audience_engagement": "rhetorical questions?",
                      "sound_words": ["thwack!"], "self_references": "rarely.",
                      "pacing": "slow…"},
}


@pytest.mark.parametrize("weight", [0.2, 0.45, 0.7, 0.85, 1.0])
def test_no_doubled_punctuation_whatever_the_fields_end_with(weight):
    block = build_personality_block("Ada", PUNCTUATED, weight)
    for doubled in ("..", "!.", "?.", "….", ". .", "! tone", ". tone"):
        assert doubled not in block, (doubled, block)
    assert "Teaching style: explained along the way. Match their casual high tone." in block


# Fields ending in a quote or bracket after their end mark, or in a mark that leaves the
# clause open (what a hand-written KB document or a model may well write).
OPEN_ENDED = {
    "tone": {"teaching_style": 'says "go."', "energy": "high;", "formality": "casual,",
             "descriptors": ["warm", "dry:"]},
    "vocabulary": {"signature_phrases": ["(check it!)", "nice,"], "distinctive_terms": ["a", "b;"],
                   "sound_descriptions": ["glassy —"]},
    "style_markers": {"explanation_approach": "by example:", "audience_engagement": "asks (often)",
                      "sound_words": ["thwack'"], "self_references": "I, me!”",
                      "pacing": "fast ,"},
}


@pytest.mark.parametrize("weight", [0.2, 0.45, 0.7, 0.85, 1.0])
def test_no_doubled_punctuation_after_quotes_brackets_or_open_clauses(weight):
    import re

    block = build_personality_block("Ada", OPEN_ENDED, weight)
    # No end mark after an end mark (closing quotes and brackets between them allowed),
    # no full stop after a comma, semicolon, colon or dash.
    assert not re.search(r"[.!?…][\"'”’)\]»]*\.", block), block
    assert not re.search(r"[,;:–—-]\s*\.", block), block
    assert not re.search(r"[,;:] tone", block), block
    assert 'Teaching style: says "go." Match their casual high tone.' in block
    if weight >= 0.4:
        assert "Explanation approach: by example. " in block
        assert "Audience engagement: asks (often)." in block
    if weight >= 0.8:
        assert "Distinctive terms: a, b. Sound descriptions: glassy." in block
        assert "Self-references: I, me!” Pacing: fast." in block


def test_plain_fields_still_end_with_a_full_stop():
    block = build_personality_block("Ada", PROFILE, 1.0)
    assert "Teaching style: step by step. Match their formal low tone." in block
    assert "Pacing: slow." in block


def test_describe_voice_is_the_one_voice_text():
    from tui.services.personality import describe_voice

    assert describe_voice(None, None, 0.5).startswith("No creator chosen")
    assert "has no voice profile" in describe_voice("Bo", None, 0.5)
    assert "has no voice profile" in describe_voice("Bo", {}, 0.5)
    hand = "Written by hand in a knowledge-base document."
    assert describe_voice("Ada", PROFILE, 0.1).startswith("Voice off (weight 0.10")
    assert describe_voice("Ada", PROFILE, 0.1).endswith("\n\n" + hand)
    assert describe_voice("Ada", PROFILE, 0.95) == (
        build_personality_block("Ada", PROFILE, 0.95) + "\n\n" + hand)
    with pytest.raises(ValueError):
        describe_voice("Ada", PROFILE, 2)


def test_describe_voice_says_where_the_profile_came_from_at_every_weight():
    """The note the app's preview shows is describe_voice's own, so `ask --voice` and the
    service print it too: per field when the profile says, else by kind."""
    from tui.services.personality import describe_voice

    measured_nothing = {**PROFILE, "_source": {"tone": "default"}}
    measured = {**PROFILE, "_source": {"signature_phrases": "measured", "summary": "model"},
                "_model": {"model": "m1"}}
    for weight in (0.0, 0.1, 0.5, 1.0):
        text = describe_voice("Ada", measured_nothing, weight)
        assert text.endswith("\n\nMeasured from their transcripts: nothing distinctive found yet.")
        text = describe_voice("Ada", measured, weight)
        assert text.endswith("\n\nMeasured from their transcripts: signature phrases. "
                             "Written by a model (m1) from their transcripts: summary.")
        assert text.count("Measured from") == 1


def test_one_tier_table_for_the_slider_and_the_prompt():
    from tui.voice_tiers import TIERS, reaches
    from tui.widgets.voice_slider import VoiceSlider

    slider = VoiceSlider()
    for tier in TIERS:
        assert tier_name(tier.min_weight) == tier.name
        assert slider.tier_name(tier.min_weight) == tier.name
        assert reaches(tier.min_weight, tier.name)
