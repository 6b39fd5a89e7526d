"""The creator-voice block appended to the system prompt, by tier (tui/voice_tiers.py):

| weight      | tier         | adds |
| ----------- | ------------ | ---- |
| < 0.2       | off          | nothing (empty block) |
| 0.2 – 0.39  | subtle       | "subtly reference", teaching style, formality + energy |
| 0.4 – 0.59  | adopt        | + descriptors (≤ 5), explanation approach, analogies, audience engagement |
| 0.6 – 0.79  | respond as   | + signature phrases: max(2, round(w · len)) of them |
| 0.8 – 0.89  | embody       | + distinctive terms, sound descriptions, sound words, self references, pacing |
| ≥ 0.9       | full         | + the profile's summary paragraph |

A profile is data from a file: any field of the wrong type (a string where a
list belongs, null, a number) is skipped, never raised on. A field that already ends a
sentence ('.', '!', '?', '…', also before a closing quote or bracket) gets no second full
stop, and one ending in ',', ';' or ':' loses that mark where the block ends the sentence.

`describe_voice` is the one text saying what the voice adds (the app's voice preview,
`chrysopedia ask --voice`, `ChatService.voice_preview`).
"""

from __future__ import annotations

from typing import Any

from tui.voice_tiers import TIERS, VOICE_ON, reaches, tier_name, validate_weight

__all__ = [
    "TIERS",
    "build_personality_block",
    "describe_voice",
    "temperature_for",
    "tier_name",
    "validate_weight",
]

_SENTENCE_END = (".", "!", "?", "…")
# Marks that may close a sentence after its end mark: `He says "go."`, `(often.)`.
_CLOSERS = "\"'”’)]»"
# Marks that leave a clause open: dropped where the block ends the sentence itself.
_OPEN_ENDS = ",;:–—-"


def temperature_for(weight: float) -> float:
    """0.3 (encyclopedic) rising to 0.5 (full personality)."""
    return 0.3 + 0.2 * validate_weight(weight)


# -- type-safe field access: a wrong type means "absent" --------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(mapping: dict[str, Any], key: str, default: str = "") -> str:
    value = mapping.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return default


def _strings(mapping: dict[str, Any], key: str) -> list[str]:
    value = mapping.get(key)
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]


def _sentence(text: str) -> str:
    """`text` ending with a full stop, unless it already ends a sentence (a closing quote
    or bracket may follow its end mark); a trailing ',', ';' or ':' gives way to the stop."""
    text = text.rstrip()
    if text.rstrip(_CLOSERS).endswith(_SENTENCE_END):
        return text
    return text.rstrip(_OPEN_ENDS + " ") + "."


def _word(text: str) -> str:
    """A field used inside a sentence ("Match their formal calm tone"): no end mark."""
    return text.rstrip("".join(_SENTENCE_END) + _OPEN_ENDS + " ") or text


def build_personality_block(creator_name: str, profile: Any, weight: float) -> str:
    """The voice instructions for `creator_name` at `weight`; "" below 0.2 or without a profile."""
    w = validate_weight(weight)
    if not reaches(w, "subtle") or not isinstance(profile, dict):
        return ""
    vocab = _dict(profile.get("vocabulary"))
    tone = _dict(profile.get("tone"))
    style = _dict(profile.get("style_markers"))

    teaching_style = _text(tone, "teaching_style")
    # A profile that says where its fields came from (measured from transcripts, or written
    # by a model) claims nothing it does not hold; a hand-written one gets the defaults.
    claims_only_its_own = isinstance(profile.get("_source"), dict)
    energy = _word(_text(tone, "energy", "" if claims_only_its_own else "moderate"))
    formality = _word(_text(tone, "formality", "" if claims_only_its_own else "conversational"))

    parts: list[str] = []
    if not reaches(w, "adopt"):
        parts.append(f"When relevant, subtly reference {creator_name}'s communication style.")
    elif not reaches(w, "respond as"):
        parts.append(f"Adopt {creator_name}'s tone and communication style.")
    elif not reaches(w, "embody"):
        parts.append(f"Respond as {creator_name} would, using their voice and manner.")
    else:
        parts.append(
            f"Fully embody {creator_name} — use their exact phrases, energy, and teaching approach."
        )
    if teaching_style:
        parts.append(_sentence(f"Teaching style: {teaching_style}"))
    tone_words = " ".join(w for w in (formality, energy) if w)
    if tone_words:
        parts.append(f"Match their {tone_words} tone.")

    if reaches(w, "adopt"):
        descriptors = _strings(tone, "descriptors")
        if descriptors:
            parts.append(_sentence(f"Tone: {', '.join(descriptors[:5])}"))
        explanation = _text(style, "explanation_approach")
        if explanation:
            parts.append(_sentence(f"Explanation approach: {explanation}"))
        if style.get("uses_analogies") is True:
            parts.append("Use analogies when helpful.")
        engagement = _text(style, "audience_engagement")
        if engagement:
            parts.append(_sentence(f"Audience engagement: {engagement}"))

    if reaches(w, "respond as"):
        phrases = _strings(vocab, "signature_phrases")
        if phrases:
            count = max(2, round(w * len(phrases)))
            parts.append(_sentence(f"Use their signature phrases: {', '.join(phrases[:count])}"))

    if reaches(w, "embody"):
        for label, mapping, key in (
            ("Distinctive terms", vocab, "distinctive_terms"),
            ("Sound descriptions", vocab, "sound_descriptions"),
            ("Sound words", style, "sound_words"),
        ):
            values = _strings(mapping, key)
            if values:
                parts.append(_sentence(f"{label}: {', '.join(values)}"))
        self_refs = _text(style, "self_references")
        if self_refs:
            parts.append(_sentence(f"Self-references: {self_refs}"))
        pacing = _text(style, "pacing")
        if pacing:
            parts.append(_sentence(f"Pacing: {pacing}"))

    if reaches(w, "full"):
        summary = _text(profile, "summary")
        if summary:
            parts.append(summary)

    return " ".join(parts)


NEUTRAL = "answers use the neutral encyclopedic voice"


def describe_voice(creator_name: str | None, profile: Any, weight: float) -> str:
    """What the creator voice adds to the prompt at `weight`: the personality block
    itself, or one line saying why there is none; then where the profile came from.
    ValueError for a weight outside [0, 1]."""
    w = validate_weight(weight)
    if not creator_name:
        return f"No creator chosen: {NEUTRAL}."
    if not isinstance(profile, dict) or not profile:
        return f"{creator_name} has no voice profile: {NEUTRAL}."
    block = build_personality_block(creator_name, profile, w)
    if not block:
        block = f"Voice off (weight {w:.2f}, below {VOICE_ON:.2f}): nothing is added; {NEUTRAL}."
    note = profile_source_note(profile) or _KIND_NOTES.get(profile_kind(profile) or "", "")
    return f"{block}\n\n{note}" if note else block


_FIELD_NAMES = {
    "summary": "summary", "teaching_style": "teaching style", "energy": "energy",
    "formality": "formality", "descriptors": "tone words",
    "signature_phrases": "signature phrases", "distinctive_terms": "distinctive terms",
    "sound_descriptions": "sound descriptions", "explanation_approach": "explanation approach",
    "uses_analogies": "analogies", "audience_engagement": "audience engagement",
    "pacing": "pacing",
}


# Where a profile came from, when it does not say field by field.
_KIND_NOTES = {
    "measured": "Measured from their transcripts: nothing distinctive found yet.",
    "hand-written": "Written by hand in a knowledge-base document.",
}


def profile_kind(profile: Any) -> str | None:
    """Where a creator's profile came from: "distilled" (a model wrote some of it),
    "measured" (all measured from transcripts), "hand-written" (a KB document's, saying
    nothing of its source), None (no profile)."""
    if not isinstance(profile, dict) or not profile:
        return None
    source = profile.get("_source")
    if not isinstance(source, dict):
        return "hand-written"
    return "distilled" if "model" in source.values() else "measured"


def profile_source_note(profile: Any) -> str:
    """Which parts of a profile were measured from transcripts and which a model wrote
    ("" for a profile that does not say: one written by hand in a KB document)."""
    if not isinstance(profile, dict) or not isinstance(profile.get("_source"), dict):
        return ""
    measured: list[str] = []
    written: list[str] = []
    for key, source in profile["_source"].items():
        name = _FIELD_NAMES.get(key, str(key).replace("_", " "))
        if source == "measured":
            measured.append(name)
        elif source == "model":
            written.append(name)
    parts = []
    if measured:
        parts.append(f"Measured from their transcripts: {', '.join(measured)}.")
    if written:
        model = _dict(profile.get("_model")).get("model")
        by = f"a model ({model})" if isinstance(model, str) and model else "a model"
        parts.append(f"Written by {by} from their transcripts: {', '.join(written)}.")
    return " ".join(parts)
