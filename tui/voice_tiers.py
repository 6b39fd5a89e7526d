"""The creator-voice tiers: one table for the slider (which shows the tier's name) and
the prompt builder (tui/services/personality.py, which adds more of the voice per tier).

Pure Python, no Textual and no services: the slider widget and the services both
import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tier:
    name: str
    min_weight: float  # the tier starts at this weight (inclusive)


# From the lowest: a weight is in the last tier whose min_weight it reaches.
TIERS: tuple[Tier, ...] = (
    Tier("off", 0.0),
    Tier("subtle", 0.2),
    Tier("adopt", 0.4),
    Tier("respond as", 0.6),
    Tier("embody", 0.8),
    Tier("full", 0.9),
)
_BY_NAME = {tier.name: tier for tier in TIERS}
# Below this weight the voice adds nothing to the prompt.
VOICE_ON = _BY_NAME["subtle"].min_weight


def validate_weight(weight: Any) -> float:
    """The weight as a float in [0, 1]; ValueError with a clear message otherwise."""
    message = f"personality weight must be a number from 0 to 1, got {weight!r}"
    if isinstance(weight, bool):
        raise ValueError(message)
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(message)
    return value


def tier_for(weight: float) -> Tier:
    w = validate_weight(weight)
    chosen = TIERS[0]
    for tier in TIERS:
        if w >= tier.min_weight:
            chosen = tier
    return chosen


def tier_name(weight: float) -> str:
    """"off", "subtle", "adopt", "respond as", "embody" or "full"."""
    return tier_for(weight).name


def reaches(weight: float, name: str) -> bool:
    """`weight` is in the tier `name` or above."""
    return weight >= _BY_NAME[name].min_weight
