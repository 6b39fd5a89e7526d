"""The usage screen: totals, per-day tokens and requests drawn as bars, latency, fallback, tiers.

`UsageScreen(report)` (a full `Screen[None]`)
- `report`: the dict from `tui.services.usage.usage_report(db, days)`:
  `days`, `since`, `until`, `totals` {requests, answered, failed, cancelled,
  prompt_tokens, completion_tokens, total_tokens, estimated}, `per_day`
  [{date, requests, prompt_tokens, completion_tokens, total_tokens}] oldest first,
  `latency_ms` {mean, p50, p95, max} (values may be None), `fallback_rate`
  (0..1 or None), `tiers` {tier: requests}, `models` {model: requests}, `purposes`
  {purpose: {requests, total_tokens}} (under the totals once something besides answering,
  i.e. distilling, used the model); the claim
  check's share of supported claims: `per_day` rows may carry `claims`,
  `supported_claims`, `supported_share`, and `claims` {total, supported,
  supported_share} the whole period (drawn only when some answer was checked).
  Missing keys show as "—"; nothing else is required. With `usage_report(...,
  by_user=True)` the report also has `users` [{user_id, requests, answered, failed,
  cancelled, total_tokens, latency_p50_ms, latency_p95_ms, last_seen}]: `u` switches to
  the view by user (a table of those, and each user's share of requests and tokens drawn
  as bars; "last seen" as an age against the report's `until`), `u` again back
  (binding ids `usage.by_user`, `usage.overview`; the footer shows the one that applies).

Drawn, not only tabulated: two `Sparkline`s (tokens and requests per day) and
horizontal block-character bars per day, for latency p50/p95/max, the fallback
rate and each cascade tier and model. Escape or `q` closes (`dismiss(None)`);
binding id `usage.close`. Model and tier names and user ids are shown literally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Sparkline, Static

from tui.screens.conversations import relative_time
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


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


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
    UsageScreen .usage-title {
        text-style: bold;
        color: $accent;
        padding-top: 1;
    }
    UsageScreen .usage-period {
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
    UsageScreen > #usage-users {
        height: 1fr;
        padding: 0 1;
        display: none;
    }
    UsageScreen.-by-user > #usage {
        display: none;
    }
    UsageScreen.-by-user > #usage-users {
        display: block;
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

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="usage.close"),
        # One key, two meanings: the footer shows the one that applies (check_action).
        Binding("u", "by_user", "By user", id="usage.by_user"),
        Binding("u", "overview", "Overview", id="usage.overview"),
    ]

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
        parts += self._purposes(indent)
        return Content.assemble(*parts)

    PURPOSE_NAMES = {"answer": "answering", "distill": "distilling"}

    def _purposes(self, indent: str) -> list[str | tuple[str, str]]:
        """What the model was asked for, each with its requests and tokens: drawn once
        something besides answering was (distilling), else nothing."""
        purposes = self.report.get("purposes")
        if not isinstance(purposes, Mapping) or not set(purposes) - {"answer"}:
            return []
        parts: list[str | tuple[str, str]] = []
        for i, (key, value) in enumerate(sorted(purposes.items(), key=lambda kv: str(kv[0]))):
            value = value if isinstance(value, Mapping) else {}
            name = self.PURPOSE_NAMES.get(str(key)) or one_line(str(key)) or "(none)"
            parts.append(("\nFor       ", "bold") if i == 0 else f"\n{indent}")
            parts.append(f"{name} {fmt_int(value.get('requests'))} requests"
                         f" · {fmt_int(value.get('total_tokens'))} tokens")
        return parts

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
    def _counts(counts: Any, empty: str, *, label_max: int = 24, bar_width: int = 20) -> Content:
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
        label_width = min(label_max, max(len(name) for name, _ in items))
        parts: list[str | tuple[str, str]] = []
        for i, (name, value) in enumerate(items):
            if len(name) > label_width:
                name = name[: label_width - 1] + "…"
            parts.extend(
                [
                    (f"{name:<{label_width}} ", "bold"),
                    (hbar(value, top, bar_width), "$primary"),
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

    # -- by user -----------------------------------------------------------------

    @property
    def users(self) -> list[Mapping[str, Any]]:
        rows = self.report.get("users") or []
        return [r for r in rows if isinstance(r, Mapping)]

    USER_WIDTH = 20

    def _user_name(self, row: Mapping[str, Any]) -> str:
        name = one_line(str(row.get("user_id") or "")) or "(unknown)"
        if len(name) > self.USER_WIDTH:
            name = name[: self.USER_WIDTH - 1] + "…"
        return name

    def _user_table(self) -> Content:
        """One line per user: requests, answered, failed, tokens, latency, last seen."""
        users = self.users
        if not users:
            return Content.styled("No requests in this period.", "italic $text-muted")
        until = _as_datetime(self.report.get("until"))
        names = [self._user_name(u) for u in users]
        width = max(len("user"), *(len(n) for n in names))
        parts: list[str | tuple[str, str]] = [
            (f"{'user':<{width}}  {'requests':>8}  {'answered':>8}  {'failed':>6}  "
             f"{'tokens':>10}  {'p50':>8}  {'p95':>8}  last seen\n", "bold"),
        ]
        for i, (name, u) in enumerate(zip(names, users, strict=True)):
            failed = _num(u.get("failed")) or 0
            seen = relative_time(u.get("last_seen"), until) if until else "—"
            parts.extend([
                (f"{name:<{width}}  ", "bold"),
                (f"{fmt_int(u.get('requests')):>8}", "bold $accent"),
                f"  {fmt_int(u.get('answered')):>8}  ",
                (f"{fmt_int(u.get('failed')):>6}", "$error" if failed else ""),
                f"  {fmt_int(u.get('total_tokens')):>10}",
                (f"  {fmt_ms(u.get('latency_p50_ms')):>8}", "$success"),
                (f"  {fmt_ms(u.get('latency_p95_ms')):>8}", "$warning"),
                (f"  {seen}", "$text-muted"),
            ])
            if i < len(users) - 1:
                parts.append("\n")
        return Content.assemble(*parts)

    def _user_shares(self, key: str) -> dict[str, float]:
        shares: dict[str, float] = {}
        for u in self.users:
            name = one_line(str(u.get("user_id") or "")) or "(unknown)"
            shares[name] = shares.get(name, 0) + (_num(u.get(key)) or 0)
        return shares

    def _compose_users(self) -> ComposeResult:
        with VerticalScroll(id="usage-users"):
            yield Static("Usage by user", id="usage-users-title", classes="usage-title",
                         markup=False)
            yield Static(self._period(), classes="usage-period", markup=False)
            with Vertical(classes="usage-section", id="usage-users-table") as box:
                box.border_title = "Per user"
                yield Static(self._user_table(), id="usage-user-rows")
            if self.users:
                with Horizontal(classes="usage-row", id="usage-users-bars"):
                    with Vertical(classes="usage-section", id="usage-users-requests") as box:
                        box.border_title = "Requests"
                        yield Static(self._counts(self._user_shares("requests"), "",
                                                  label_max=self.USER_WIDTH, bar_width=12))
                    with Vertical(classes="usage-section", id="usage-users-tokens") as box:
                        box.border_title = "Tokens"
                        yield Static(self._counts(self._user_shares("total_tokens"), "",
                                                  label_max=self.USER_WIDTH, bar_width=12))

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
            yield Static("Usage", id="usage-title", classes="usage-title", markup=False)
            yield Static(self._period(), id="usage-period", classes="usage-period", markup=False)
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
        yield from self._compose_users()
        yield AppFooter()

    def on_resize(self) -> None:
        # Side-by-side panels need about 100 columns; below that they stack.
        self.set_class(self.size.width < 100, "-narrow")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `u` is "By user" in the overview and "Overview" in the view by user.
        if action == "by_user":
            return not self.has_class("-by-user")
        if action == "overview":
            return self.has_class("-by-user")
        return True

    def _show_by_user(self, by_user: bool) -> None:
        self.set_class(by_user, "-by-user")
        self.query_one("#usage-users" if by_user else "#usage", VerticalScroll).focus()
        self.refresh_bindings()

    def action_by_user(self) -> None:
        self._show_by_user(True)

    def action_overview(self) -> None:
        self._show_by_user(False)

    def action_close(self) -> None:
        self.dismiss(None)
