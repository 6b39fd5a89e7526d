"""The usage screen: totals, per-day tokens and requests drawn as bars, latency, fallback, tiers.

`UsageScreen(report)` (a full `Screen[None]`)
- `report`: the dict from `tui.services.usage.usage_report(db, days)`:
  `days`, `since`, `until`, `totals` {requests, answered, failed, cancelled,
  prompt_tokens, completion_tokens, total_tokens, estimated}, `per_day`
  [{date, requests, prompt_tokens, completion_tokens, total_tokens}] oldest first,
  `latency_ms` {mean, p50, p95, max} (values may be None), `fallback_rate`
  (0..1 or None), `tiers` {tier: requests}, `models` {model: requests}; the claim
  check's share of supported claims: `per_day` rows may carry `claims`,
  `supported_claims`, `supported_share`, and `claims` {total, supported,
  supported_share} the whole period (drawn only when some answer was checked).
  Missing keys show as "—"; nothing else is required.

Drawn, not only tabulated: two `Sparkline`s (tokens and requests per day) and
horizontal block-character bars per day, for latency p50/p95/max, the fallback
rate and each cascade tier and model. Escape or `q` closes (`dismiss(None)`);
binding id `usage.close`. Model and tier names are shown literally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Sparkline, Static

from tui.widgets.footer import AppFooter
from tui.widgets.safe_text import one_line

EIGHTHS = " ▏▎▍▌▋▊▉█"


def hbar(value: float, maximum: float, width: int) -> str:
    """A horizontal bar of `width` cells filled to value/maximum, in eighths of a cell."""
    if width <= 0:
        return ""
    if maximum <= 0 or value <= 0:
        return " " * width
    eighths = round(min(value / maximum, 1.0) * width * 8)
    if eighths == 0:
        eighths = 1  # a non-zero value is never invisible
    full, part = divmod(eighths, 8)
    bar = "█" * full + (EIGHTHS[part] if part else "")
    return bar.ljust(width)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt_int(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{int(number):,}"


def fmt_ms(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "—"
    if number < 1000:
        return f"{number:.0f} ms"
    return f"{number / 1000:.2f} s"


def fmt_rate(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number * 100:.1f}%"


def _day_label(row: Mapping[str, Any]) -> str:
    day = str(row.get("date") or row.get("day") or "")
    return day[5:] if len(day) == 10 else day  # "2026-11-27" -> "11-27"


class UsageScreen(Screen[None]):
    """Usage over the last N days, drawn."""

    DEFAULT_CSS = """
    UsageScreen {
        layout: vertical;
    }
    UsageScreen > #usage {
        height: 1fr;
        padding: 0 1;
    }
    UsageScreen #usage-title {
        text-style: bold;
        color: $accent;
        padding-top: 1;
    }
    UsageScreen #usage-period {
        color: $text-muted;
    }
    UsageScreen .usage-section {
        height: auto;
        margin-top: 1;
        border: round $primary 50%;
        border-title-color: $accent;
        border-title-style: bold;
        padding: 0 1;
    }
    UsageScreen .usage-row {
        height: auto;
    }
    UsageScreen .usage-row > .usage-section {
        width: 1fr;
    }
    UsageScreen.-narrow .usage-row {
        layout: vertical;
    }
    UsageScreen .spark-label {
        color: $text-muted;
    }
    UsageScreen Sparkline {
        height: 2;
    }
    UsageScreen #spark-requests {
        margin-bottom: 1;
    }
    UsageScreen #spark-tokens > .sparkline--max-color {
        color: $accent;
    }
    UsageScreen #spark-tokens > .sparkline--min-color {
        color: $accent 40%;
    }
    UsageScreen #spark-requests > .sparkline--max-color {
        color: $success;
    }
    UsageScreen #spark-requests > .sparkline--min-color {
        color: $success 40%;
    }
    """

    BINDINGS = [Binding("escape,q", "close", "Close", id="usage.close")]

    BAR_WIDTH = 30

    def __init__(self, report: Mapping[str, Any]) -> None:
        super().__init__()
        self.report = dict(report)

    # -- pieces ------------------------------------------------------------------

    @property
    def per_day(self) -> list[Mapping[str, Any]]:
        rows = self.report.get("per_day") or []
        return [r for r in rows if isinstance(r, Mapping)]

    def _totals(self) -> Content:
        t = self.report.get("totals") or {}
        estimated = _num(t.get("estimated")) or 0
        indent = " " * 10
        parts: list[str | tuple[str, str]] = [
            ("Requests  ", "bold"),
            (fmt_int(t.get("requests")), "bold $accent"),
            f"\n{indent}{fmt_int(t.get('answered'))} answered",
            f" · {fmt_int(t.get('failed'))} failed",
            f" · {fmt_int(t.get('cancelled'))} cancelled"
            + (f" · {fmt_int(t.get('incomplete'))} interrupted" if t.get("incomplete") else "")
            + "\n",
            ("Tokens    ", "bold"),
            (fmt_int(t.get("total_tokens")), "bold $accent"),
            f"\n{indent}{fmt_int(t.get('prompt_tokens'))} prompt",
            f" · {fmt_int(t.get('completion_tokens'))} completion",
        ]
        if estimated:
            parts.append((f"\n{indent}{fmt_int(estimated)} estimated (chars/4)", "$text-muted"))
        return Content.assemble(*parts)

    def _latency(self) -> Content:
        latency = self.report.get("latency_ms") or self.report.get("latency") or {}
        values = {k: _num(latency.get(k)) for k in ("p50", "p95", "max", "mean")}
        top = max((v for v in values.values() if v is not None), default=0.0)
        parts: list[str | tuple[str, str]] = []
        for key, style in (("p50", "$success"), ("p95", "$warning"), ("max", "$error")):
            parts.append((f"{key:<5}", "bold"))
            parts.append((hbar(values[key] or 0, top, 20), style))
            parts.append(f" {fmt_ms(values[key])}\n")
        parts.append(("mean ", "bold"))
        parts.append(f"{fmt_ms(values['mean'])}")
        return Content.assemble(*parts)

    def _fallback(self) -> Content:
        rate = _num(self.report.get("fallback_rate"))
        width = 20
        filled = hbar(rate or 0, 1.0, width).rstrip()
        return Content.assemble(
            ("Fallback  ", "bold"),
            (filled, "$warning"),
            ("░" * (width - len(filled)), "$text-muted"),
            f" {fmt_rate(rate)}",
        )

    def _per_day(self) -> Content:
        rows = self.per_day
        max_tokens = max((_num(r.get("total_tokens")) or 0 for r in rows), default=0)
        max_requests = max((_num(r.get("requests")) or 0 for r in rows), default=0)
        token_width = max(len(fmt_int(r.get("total_tokens"))) for r in rows)
        request_width = max(len(fmt_int(r.get("requests"))) for r in rows)
        parts: list[str | tuple[str, str]] = [
            (f"{'day':<6} {'tokens':<{self.BAR_WIDTH + token_width + 1}}   requests\n", "bold"),
        ]
        for i, r in enumerate(rows):
            tokens = _num(r.get("total_tokens")) or 0
            requests = _num(r.get("requests")) or 0
            parts.extend(
                [
                    (f"{_day_label(r):<6} ", "$text-muted"),
                    (hbar(tokens, max_tokens, self.BAR_WIDTH), "$accent"),
                    f" {fmt_int(tokens):>{token_width}}   ",
                    (hbar(requests, max_requests, 16), "$success"),
                    f" {fmt_int(requests):>{request_width}}",
                ]
            )
            if i < len(rows) - 1:
                parts.append("\n")
        return Content.assemble(*parts)

    @staticmethod
    def _counts(counts: Any, empty: str) -> Content:
        if isinstance(counts, Mapping):
            items = [(one_line(str(k)) or "(none)", _num(v) or 0) for k, v in counts.items()]
        elif isinstance(counts, Sequence):
            items = [
                (one_line(str(r.get("tier") or r.get("name") or "")) or "(none)", _num(r.get("requests") or r.get("count")) or 0)
                for r in counts
                if isinstance(r, Mapping)
            ]
        else:
            items = []
        if not items:
            return Content.styled(empty, "italic $text-muted")
        top = max(v for _, v in items)
        total = sum(v for _, v in items) or 1
        label_width = min(24, max(len(name) for name, _ in items))
        parts: list[str | tuple[str, str]] = []
        for i, (name, value) in enumerate(items):
            if len(name) > label_width:
                name = name[: label_width - 1] + "…"
            parts.extend(
                [
                    (f"{name:<{label_width}} ", "bold"),
                    (hbar(value, top, 20), "$primary"),
                    f" {fmt_int(value)} ({value / total * 100:.0f}%)",
                ]
            )
            if i < len(items) - 1:
                parts.append("\n")
        return Content.assemble(*parts)

    def _supported(self) -> Content | None:
        """The share of checked claims their sources support: the period, then each day
        with checked answers (None when no answer was checked)."""
        rows = [r for r in self.per_day if (_num(r.get("claims")) or 0) > 0]
        if not rows:
            return None
        overall = self.report.get("claims") if isinstance(self.report.get("claims"), Mapping) else {}
        total = _num(overall.get("total")) or sum(_num(r.get("claims")) or 0 for r in rows)
        supported = (_num(overall.get("supported"))
                     if overall.get("supported") is not None
                     else sum(_num(r.get("supported_claims")) or 0 for r in rows))
        width = self.BAR_WIDTH
        parts: list[str | tuple[str, str]] = []

        def line(label: str, part: float, whole: float, style: str) -> None:
            share = part / whole if whole else 0.0
            filled = hbar(share, 1.0, width).rstrip()
            parts.extend([(f"{label:<6} ", style), (filled, "$success"),
                          ("░" * (width - len(filled)), "$text-muted"),
                          f" {fmt_rate(share):>6}  {fmt_int(part)} of {fmt_int(whole)} claims"])

        line("all", supported or 0, total, "bold")
        for r in rows:
            parts.append("\n")
            line(_day_label(r), _num(r.get("supported_claims")) or 0,
                 _num(r.get("claims")) or 0, "$text-muted")
        return Content.assemble(*parts)

    def _period(self) -> str:
        days = self.report.get("days")
        rows = self.per_day
        span = ""
        if rows:
            first = str(rows[0].get("date") or "")
            last = str(rows[-1].get("date") or "")
            span = f"{first} … {last}" if first != last else first
        if days == 1:
            label = "Today"
        else:
            label = f"Last {days} days" if days else "Usage"
        return f"{label}  ({span}, UTC)" if span else label

    def compose(self) -> ComposeResult:
        rows = self.per_day
        with VerticalScroll(id="usage"):
            yield Static("Usage", id="usage-title", markup=False)
            yield Static(self._period(), id="usage-period", markup=False)
            with Horizontal(id="usage-top", classes="usage-row"):
                with Vertical(classes="usage-section", id="usage-totals") as box:
                    box.border_title = "Totals"
                    yield Static(self._totals())
                    yield Static(self._fallback(), id="usage-fallback")
                with Vertical(classes="usage-section", id="usage-latency") as box:
                    box.border_title = "Latency (answered)"
                    yield Static(self._latency())
            with Vertical(classes="usage-section", id="usage-trend") as box:
                box.border_title = "Per day"
                if not any(_num(r.get("requests")) for r in rows):
                    yield Static(
                        Content.styled("No requests in this period.", "italic $text-muted"),
                        id="usage-per-day",
                    )
                else:
                    # A sparkline needs two points; one day is drawn by the bars alone.
                    if len(rows) > 1:
                        yield Static("Tokens", classes="spark-label", markup=False)
                        yield Sparkline(
                            [_num(r.get("total_tokens")) or 0 for r in rows], id="spark-tokens"
                        )
                        yield Static("Requests", classes="spark-label", markup=False)
                        yield Sparkline(
                            [_num(r.get("requests")) or 0 for r in rows], id="spark-requests"
                        )
                    yield Static(self._per_day(), id="usage-per-day")
            supported = self._supported()
            if supported is not None:
                with Vertical(classes="usage-section", id="usage-claims") as box:
                    box.border_title = "Claims their sources support"
                    yield Static(supported, id="usage-supported")
            with Horizontal(id="usage-bottom", classes="usage-row"):
                with Vertical(classes="usage-section", id="usage-tiers") as box:
                    box.border_title = "Cascade tiers"
                    yield Static(self._counts(self.report.get("tiers"), "No tiers yet."))
                with Vertical(classes="usage-section", id="usage-models") as box:
                    box.border_title = "Models"
                    yield Static(self._counts(self.report.get("models"), "No models yet."))
        yield AppFooter()

    def on_resize(self) -> None:
        # Side-by-side panels need about 100 columns; below that they stack.
        self.set_class(self.size.width < 100, "-narrow")

    def action_close(self) -> None:
        self.dismiss(None)
