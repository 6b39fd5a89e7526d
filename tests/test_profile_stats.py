"""The statistical voice profile: phrases a creator really repeats, measured from transcripts."""

from __future__ import annotations

import itertools

from tui.materials.model import TimedSentence
from tui.services.personality import build_personality_block
from tui.services.profile_stats import (
    Options,
    clauses,
    energy_for,
    measure_profiles,
    normalise,
    occurs_verbatim,
)

# What every creator says: production talk with no one's habits in it.
SHARED = [
    "Now I am going to pull the low end down on the bass a little.",
    "The kick sits around sixty hertz so we leave that space open.",
    "Then we add a touch of reverb on the snare bus.",
    "You can hear how the compressor brings the transients forward.",
    "Next the hi hats get a high pass filter so they stop clashing.",
    "I usually automate the filter cutoff over eight bars.",
    "Make sure the master is not clipping before you bounce it.",
    "The vocal chain is an equaliser then a compressor then a de-esser.",
    "Sidechain the pad to the kick so the groove breathes.",
    "A little saturation on the drum bus glues everything together.",
    "Check the mix in mono every now and then.",
    "We can layer a second clap to make the snare wider.",
]

HABITS = {
    "kaito": ["Let's get into it, this part is fun.", "And honestly that's the sauce right there."],
    "mira": ["Big shout out to everyone in the comments.", "Trust your ears on this one, seriously."],
    "okon": ["Keep it simple and keep it moving.", "Alright, check this out real quick."],
}


def _transcript(creator: str, video: int, *, seconds_per_sentence: float) -> list[TimedSentence]:
    """A video's sentences: shared talk with the creator's habits every fourth sentence."""
    out: list[TimedSentence] = []
    shared = itertools.islice(itertools.cycle(SHARED), video * 5, None)
    habits = itertools.cycle(HABITS[creator])
    t = 0.0
    for i in range(48):
        text = next(habits) if i % 4 == 1 else next(shared)
        out.append(TimedSentence(t, t + seconds_per_sentence, text))
        t += seconds_per_sentence + 0.4  # a pause between sentences: not speech
    return out


def _corpus(**pace: float) -> dict[str, list[list[TimedSentence]]]:
    return {
        c: [_transcript(c, v, seconds_per_sentence=pace.get(c, 4.0)) for v in range(5)]
        for c in HABITS
    }


def test_a_creators_repeated_phrases_are_found_and_no_one_elses():
    corpus = _corpus()
    profiles = measure_profiles(corpus)
    kaito = profiles["kaito"]["vocabulary"]["signature_phrases"]
    mira = profiles["mira"]["vocabulary"]["signature_phrases"]
    okon = profiles["okon"]["vocabulary"]["signature_phrases"]
    assert "let's get into it" in kaito and "honestly that's the sauce right there" in kaito
    assert "big shout out to everyone in the comments" in mira
    assert "trust your ears on this one" in mira
    assert "keep it simple and keep it moving" in okon
    # Another creator's phrases are never theirs, and talk everyone shares is no one's.
    for slug, phrases in (("kaito", kaito), ("mira", mira), ("okon", okon)):
        others = " ".join(h for c, hs in HABITS.items() if c != slug for h in hs).lower()
        for phrase in phrases:
            assert phrase not in others, (slug, phrase)
            assert not any(phrase in s.lower() for s in SHARED), (slug, phrase)
    # A phrase inside a longer kept one is not listed again.
    assert "that's the sauce right there" not in kaito
    # Every phrase occurs verbatim in the creator's own transcripts.
    texts = [normalise(s.text) for t in corpus["kaito"] for s in t]
    assert all(occurs_verbatim(p, texts) for p in kaito)


def test_distinctive_terms_leave_stopwords_out():
    profiles = measure_profiles(_corpus())
    terms = profiles["mira"]["vocabulary"]["distinctive_terms"]
    assert {"shout", "comments", "ears", "seriously"} <= set(terms)
    assert "this" not in terms and "one" not in terms
    assert "sauce" in profiles["kaito"]["vocabulary"]["distinctive_terms"]


def test_a_phrase_from_one_video_only_is_its_topic_not_a_habit():
    corpus = _corpus()
    topic = [TimedSentence(i * 3.0, i * 3.0 + 2.5, "The granular shimmer pad is lovely here.")
             for i in range(30)]
    corpus["kaito"][0] = corpus["kaito"][0] + topic
    phrases = measure_profiles(corpus)["kaito"]["vocabulary"]["signature_phrases"]
    assert not any("granular" in p for p in phrases)
    assert "let's get into it" in phrases


def test_energy_from_the_speaking_rate_and_nothing_invented():
    # 4 s per sentence of ~9 words is ~135 wpm; 2.5 s is ~215 wpm; 6 s is ~90 wpm.
    profiles = measure_profiles(_corpus(kaito=2.5, mira=4.0, okon=6.0))
    assert profiles["kaito"]["tone"] == {"energy": "energetic"}
    assert profiles["mira"]["tone"] == {"energy": "moderate"}
    assert profiles["okon"]["tone"] == {"energy": "calm"}
    words = sum(len(c) for t in _corpus()["kaito"] for s in t for c in clauses(s.text))
    assert profiles["kaito"]["_measured"]["words_per_minute"] == round(words / (5 * 48 * 2.5 / 60), 1)
    prof = profiles["mira"]
    assert set(prof) == {"tone", "vocabulary", "_source", "_measured"}
    assert prof["_source"] == {
        "energy": "measured", "signature_phrases": "measured", "distinctive_terms": "measured",
    }
    assert energy_for(129.9) == "calm" and energy_for(170.1) == "energetic"


def test_untimed_or_short_speech_measures_no_energy():
    corpus = {
        "a": [[(None, None, s) for s in SHARED] * 3],
        "b": [[(0.0, 5.0, "Too short to time.")]],
    }
    profiles = measure_profiles(corpus)
    assert "tone" not in profiles["a"] and "tone" not in profiles["b"]
    assert "energy" not in profiles["a"]["_source"]


def test_one_creator_alone_is_measured_against_the_background():
    corpus = {"kaito": _corpus()["kaito"]}
    assert "vocabulary" not in measure_profiles(corpus)["kaito"]
    profiles = measure_profiles(corpus, background=SHARED * 20)
    assert "let's get into it" in profiles["kaito"]["vocabulary"]["signature_phrases"]


def test_the_measured_profile_drives_the_voice_block():
    prof = measure_profiles(_corpus(kaito=2.5))["kaito"]
    block = build_personality_block("Kaito", prof, 0.7)
    assert "energetic" in block and "let's get into it" in block
    assert "Teaching style" not in block  # not measured, so not claimed


def test_the_voice_block_claims_no_tone_a_measured_profile_does_not_hold():
    # Formality cannot be measured: a measured profile's block does not invent one
    # (a hand-written profile without it keeps the original defaults).
    prof = measure_profiles(_corpus(kaito=2.5))["kaito"]
    assert "formality" not in prof["tone"]
    block = build_personality_block("Kaito", prof, 0.7)
    assert "Match their energetic tone." in block and "conversational" not in block
    phrases_only = {"vocabulary": {"signature_phrases": ["let's get into it", "boom"]},
                    "_source": {"signature_phrases": "measured"}}
    block = build_personality_block("Kaito", phrases_only, 0.7)
    assert "Match their" not in block and "moderate" not in block
    assert "let's get into it" in block


def test_phrases_never_cross_punctuation():
    assert clauses("Right, so — let’s go. OK?") == [["right"], ["so"], ["let's", "go"], ["ok"]]
    assert occurs_verbatim("Let's GO", [normalise("right, so let’s   go now")])
    assert not occurs_verbatim("so let", [normalise("right, so let's go")])
    assert measure_profiles({"a": [[]], "b": []}) == {}
    assert Options().min_count == 3


def test_counting_in_many_small_buckets_gives_the_same_profiles(monkeypatch):
    # A large corpus is counted bucket by bucket (every window of a key in one bucket);
    # tiny buckets here put that path under the same corpus and must change nothing.
    import tui.services.profile_stats as stats

    corpus = _corpus(mira=2.0)
    background = ["Check the mix in mono, then bounce it.", "The kick sits around sixty hertz."]
    whole = measure_profiles(corpus, background=background)
    monkeypatch.setattr(stats, "BUCKET_WINDOWS", 7)
    bucketed = measure_profiles(corpus, background=background)
    assert bucketed == whole
    assert whole["mira"]["vocabulary"]["signature_phrases"]
    assert whole["kaito"]["vocabulary"]["distinctive_terms"]
