"""The Chrysopedia app: settings, the services, theme memory; the chat itself is
`ChatScreen` (tui/screens/chat.py).

Start-up paints first and loads later (tui/startup.py): the services and an answer's
Markdown widgets are imported and the database opened in a worker after the first frame,
so the app appears about as fast as a bare Textual app. A question asked before the
services are ready waits for them (`ready`).

`make_app(settings, **overrides)` builds the app for `run_app` and for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

# At most 20 frames a second (Textual's default is 60). A frame of this screen (reflow
# and repaint of the scrolled conversation) costs tens of milliseconds; while an answer
# streams, fewer frames leave the CPU to rendering the answer itself. Set before Textual
# is first imported; the user's own TEXTUAL_FPS wins.
os.environ.setdefault("TEXTUAL_FPS", "20")
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.screen import Screen

from tui import actions
from tui.collector import CollectorPolicy
from tui.config import Settings
from tui.pacing import FramePacer
from tui.screens.chat import ChatScreen
from tui.startup import Services, load_services
from tui.widgets.safe_text import one_line, plain

logger = logging.getLogger("chrysopedia.app")

STATE_FILE = "state.json"

DEFAULT_THEME = "textual-dark"


class ChrysopediaApp(App[int]):
    CSS_PATH = "styles.tcss"
    TITLE = "Chrysopedia"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(
        self,
        settings: Settings,
        *,
        chat_service: Any = None,
        theme: str | None = None,
        remember_theme: bool = True,
        database: Any = None,
        cursor_blink: bool = True,
        export_dir: Path | None = None,
        load_bundled_kb: bool = True,
        clock: Callable[[], Any] | None = None,
        manage_gc: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.services = Services()
        self._chat_override = chat_service
        self._db_override = database
        self._remember_theme = remember_theme
        self.cursor_blink = cursor_blink
        self.export_dir = export_dir
        self._load_bundled_kb = load_bundled_kb
        self._clock = clock  # "now" for screens that show ages (tests fix it)
        # gc.freeze() after start-up and after each answer (process-wide: tests that share
        # a process with other suites turn it off).
        self.collector = CollectorPolicy(manage_gc)
        self.ready = asyncio.Event()
        self.boot_error: str | None = None
        self._state = self._read_state()
        self.pacer = FramePacer()
        self.theme = theme or settings.theme or self._state.get("theme") or DEFAULT_THEME
        self.keymap: dict[str, str] = {}
        if settings.keymap:
            self.set_keymap(dict(settings.keymap))

    def set_keymap(self, keymap: dict[str, str]) -> None:
        # Kept as given: the help screen and the prompt read the keys bound to an id here.
        super().set_keymap(keymap)
        self.keymap = dict(keymap)

    def update_keymap(self, keymap: dict[str, str]) -> None:
        super().update_keymap(keymap)
        self.keymap = {**self.keymap, **keymap}

    def get_default_screen(self) -> Screen:
        return ChatScreen(self.pacer, id="_default")

    @property
    def chat(self) -> ChatScreen:
        return self.screen_stack[0]  # type: ignore[return-value]

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollDown
                      | events.MouseScrollUp | events.MouseMove):
            self.pacer.user_input()  # the user's own input is never held back
        await super().on_event(event)

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        # Load the services after the first frame.
        self.call_after_refresh(self._boot)

    # The chat screen's widgets and state, for the tests and the benchmarks.
    conversation = property(lambda self: self.chat.conversation)
    sidebar = property(lambda self: self.chat.sidebar)
    prompt = property(lambda self: self.chat.prompt)
    slider = property(lambda self: self.chat.slider)
    picker = property(lambda self: self.chat.picker)
    status_bar = property(lambda self: self.chat.status_bar)
    streaming = property(lambda self: self.chat.streaming)
    conversation_id = property(lambda self: self.chat.conversation_id)

    def now(self):
        from datetime import UTC, datetime

        return self._clock() if self._clock else datetime.now(UTC)

    # -- start-up -------------------------------------------------------------
    @work(group="boot", exit_on_error=False, description="load the knowledge base")
    async def _boot(self) -> None:
        try:
            await load_services(self.services, self.settings, chat_service=self._chat_override,
                                database=self._db_override, load_bundled_kb=self._load_bundled_kb)
            chat = self.chat
            self.services.history.add_listener(
                lambda state: self.call_later(chat.show_memory_state, state))
            chat.services_ready()
            self._warm_up()
            problem = self.services.history.state.problem  # Redis misconfigured: one line
            if problem:
                self.notify(plain(problem), title="Redis not used", severity="error", timeout=15)
            self.collector.settle()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps running
            logger.exception("boot failed")
            self.boot_error = one_line(str(exc)) or type(exc).__name__
            self.chat.services_failed()
            self.notify(plain(f"Could not open the knowledge base: {self.boot_error}"),
                        severity="error", timeout=10)
        finally:
            self.ready.set()

    @work(group="warm", exit_on_error=False, description="load the search's embedding model")
    async def _warm_up(self) -> None:
        # The first question would otherwise wait for it (seconds on a loaded machine).
        warm_up = getattr(self.services.chat, "warm_up", None)
        if warm_up is not None:
            await warm_up()
            self.collector.refreeze()  # what it loaded is long-lived (tui/collector.py)

    async def on_unmount(self) -> None:
        await self.services.close()

    def on_conversations_screen_delete(self, event) -> None:
        # Posted by the conversations screen, over the chat screen: it bubbles here.
        self.chat.delete_conversation(event.conversation_id)

    # -- command palette -----------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        chat = self.chat
        for title, help_text, action in actions.palette_entries():
            yield SystemCommand(title, help_text, getattr(chat, f"action_{action}"))

    # -- theme memory ----------------------------------------------------------------
    def _state_path(self) -> Path:
        return Path(self.settings.data_dir) / STATE_FILE

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _theme_changed(self, theme) -> None:
        if not self._remember_theme:
            return
        self._state["theme"] = theme.name
        try:
            path = self._state_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self._state), encoding="utf-8")
        except OSError:
            logger.warning("cannot save the theme choice", exc_info=True)


def make_app(settings: Settings, **overrides: Any) -> ChrysopediaApp:
    """The app for `run_app` and for tests (overrides: chat_service, theme, database, ...)."""
    return ChrysopediaApp(settings, **overrides)


def run_app(settings: Settings) -> int:
    app = make_app(settings)
    result = app.run()
    return int(result or 0)
