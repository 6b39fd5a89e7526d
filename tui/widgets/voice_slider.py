"""The creator voice slider: weight 0.00–1.00 in steps of 0.05 (Textual has no slider).

Keys: Left/Right ±0.05, Shift+Left/Right ±0.20, Home/End. Mouse: click or drag
on the track. Shows the value and the tier name. Disabled, with a hint, while
no creator is chosen. Posts `VoiceSlider.Changed(value)`.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui.voice_tiers import tier_name as default_tier_name

STEPS = 20  # 1.00 / 0.05
_LABEL = "Voice "
_VALUE_WIDTH = 17  # " 0.45 respond as "


class VoiceSlider(Widget, can_focus=True):
    BINDINGS = [
        Binding("left", "step(-1)", "Less voice (−0.05)", show=False, id="slider.down"),
        Binding("right", "step(1)", "More voice (+0.05)", show=False, id="slider.up"),
        Binding("shift+left", "step(-4)", "Less voice (−0.20)", show=False, id="slider.down_big"),
        Binding("shift+right", "step(4)", "More voice (+0.20)", show=False, id="slider.up_big"),
        Binding("home", "set_steps(0)", "Voice off (0.00)", show=False, id="slider.home"),
        Binding("end", "set_steps(20)", "Full voice (1.00)", show=False, id="slider.end"),
    ]

    steps: reactive[int] = reactive(0)
    hint: reactive[str] = reactive("pick a creator to tune the voice")

    class Changed(Message):
        def __init__(self, slider: VoiceSlider, value: float) -> None:
            super().__init__()
            self.slider = slider
            self.value = value

        @property
        def control(self) -> VoiceSlider:
            return self.slider

    def __init__(
        self,
        value: float = 0.0,
        *,
        tier_name: Callable[[float], str] = default_tier_name,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.tier_name = tier_name
        self.set_reactive(VoiceSlider.steps, self._to_steps(value))
        self._dragging = False

    @staticmethod
    def _to_steps(value: float) -> int:
        return max(0, min(STEPS, round(float(value) * STEPS)))

    @property
    def value(self) -> float:
        return self.steps / STEPS

    @value.setter
    def value(self, value: float) -> None:
        self.steps = self._to_steps(value)

    @property
    def tier(self) -> str:
        return self.tier_name(self.value)

    def validate_steps(self, steps: int) -> int:
        return max(0, min(STEPS, int(steps)))

    def watch_steps(self, old: int, new: int) -> None:
        if old != new:
            self.post_message(self.Changed(self, self.value))

    def action_step(self, delta: int) -> None:
        self.steps += delta

    def action_set_steps(self, steps: int) -> None:
        self.steps = steps

    # -- mouse ---------------------------------------------------------------
    def _track_width(self) -> int:
        return max(4, self.content_size.width - len(_LABEL) - _VALUE_WIDTH)

    def _steps_at(self, x: int) -> int:
        track = self._track_width()
        offset = x - len(_LABEL)
        return round(max(0, min(track - 1, offset)) * STEPS / (track - 1))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self.disabled:
            return
        self.focus()
        self._dragging = True
        self.capture_mouse()
        self.steps = self._steps_at(event.x - self.gutter.left)
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self.steps = self._steps_at(event.x - self.gutter.left)
            event.stop()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging:
            self._dragging = False
            self.release_mouse()
            event.stop()

    # -- drawing ---------------------------------------------------------------
    def render(self) -> Text:
        text = Text(_LABEL, style="bold")
        track = self._track_width()
        if self.disabled:
            hint = f" {self.hint} "
            text.append(hint[: track + _VALUE_WIDTH].center(track + _VALUE_WIDTH, "─"), style="dim")
            return text
        knob = round(self.steps * (track - 1) / STEPS)
        text.append("━" * knob, style="bold")
        text.append("●", style="bold reverse" if self.has_focus else "bold")
        text.append("─" * (track - 1 - knob), style="dim")
        text.append(f" {self.value:.2f} {self.tier:<10} ")
        return text

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
