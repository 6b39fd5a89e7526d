"""The status line: model (or offline digest), memory store, the demo knowledge base when it
is what is loaded, last cascade tier, tokens, latency, what runs in the background."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tui.widgets.safe_text import one_line


class StatusBar(Static):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.fields: dict[str, Any] = {
            "model": "starting…",
            "memory": "",
            "memory_warning": "",
            "tier": "",
            "tokens": None,
            "latency_ms": None,
            "activity": "",
            "demo": False,  # the bundled demo pages are what is loaded
            "job": "",  # a background job's progress (distill)
        }

    def on_mount(self) -> None:
        self._render_fields()

    def set(self, **fields: Any) -> None:
        self.fields.update(fields)
        self._render_fields()

    def _render_fields(self) -> None:
        f = self.fields
        text = Text()
        text.append(" Chrysopedia ", style="bold reverse")
        text.append("  model ", style="dim")
        text.append(one_line(str(f["model"])), style="bold")
        if f["memory"]:
            text.append("  memory ", style="dim")
            text.append(one_line(str(f["memory"])))
        if f["memory_warning"]:
            text.append(" ⚠ " + one_line(str(f["memory_warning"])), style="bold yellow")
        if f["demo"]:
            text.append("  demo KB", style="bold yellow")
            text.append(" (chrysopedia import PATH for your own)", style="dim")
        if f["tier"]:
            text.append("  tier ", style="dim")
            text.append(one_line(str(f["tier"])))
        if f["tokens"]:
            text.append("  tokens ", style="dim")
            text.append(str(f["tokens"]))
        if f["latency_ms"] is not None:
            text.append("  latency ", style="dim")
            text.append(f"{float(f['latency_ms']) / 1000:.1f} s")
        if f["job"]:
            text.append("  " + one_line(str(f["job"])), style="bold")
        if f["activity"]:
            text.append("  " + one_line(str(f["activity"])), style="italic")
        self.update(text)
