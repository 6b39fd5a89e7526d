"""The voice preview says which parts of a profile were measured and which a model wrote."""

from __future__ import annotations

from test_profile_stats import _corpus

from tui.services.distill import merge_profiles
from tui.services.personality import profile_source_note
from tui.services.profile_stats import measure_profiles


def test_a_measured_profile_says_so_and_a_hand_written_one_says_nothing():
    prof = measure_profiles(_corpus())["kaito"]
    assert profile_source_note(prof) == (
        "Measured from their transcripts: energy, signature phrases, distinctive terms.")
    assert profile_source_note({"tone": {"energy": "high"}}) == ""
    assert profile_source_note(None) == ""


def test_a_model_profile_over_a_measured_one_names_both():
    measured = measure_profiles(_corpus())["kaito"]
    merged = merge_profiles(measured, {"summary": "Fast and practical.",
                                       "tone": {"energy": "high", "teaching_style": ""}}, "m-1")
    assert profile_source_note(merged) == (
        "Measured from their transcripts: signature phrases, distinctive terms. "
        "Written by a model (m-1) from their transcripts: energy, summary.")
