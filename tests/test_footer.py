"""AppFooter: the keys Textual's Footer shows, brought up to date in place."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from tui.widgets.footer import AppFooter


def shown(footer: Footer) -> list[tuple]:
    return [(k.key, k.description, k._disabled, k.has_class("-disabled"),
             k.has_class("-command-palette"), k.has_class("-compact"))
            for k in footer.query_children(FooterKey)]


class Keys(App):
    """`b` is hidden, shown disabled or enabled as `state` says; `c` comes and goes."""

    BINDINGS = [
        Binding("a", "a", "Alpha"),
        Binding("b", "b", "Bravo"),
        Binding("c", "c", "Charlie"),
        Binding("d", "d", "Delta"),
    ]

    def __init__(self, footer_class) -> None:
        super().__init__()
        self.footer_class = footer_class
        self.state: dict[str, bool | None] = {"b": False, "c": True}

    def compose(self) -> ComposeResult:
        yield Static("body")
        yield self.footer_class()

    def check_action(self, action: str, parameters) -> bool | None:
        return self.state.get(action, True)

    def action_a(self) -> None: ...
    def action_b(self) -> None: ...
    def action_c(self) -> None: ...
    def action_d(self) -> None: ...


STATES = [{"b": None, "c": True}, {"b": True, "c": True}, {"b": True, "c": False},
          {"b": False, "c": False}, {"b": None, "c": True}, {"b": False, "c": True}]


async def test_the_footer_shows_what_textuals_shows_and_keeps_the_keys_that_stay():
    # What Textual's own Footer shows in each state...
    theirs = []
    app = Keys(Footer)
    async with app.run_test(size=(100, 5)) as pilot:
        await pilot.pause()
        for state in STATES:
            app.state = state
            app.refresh_bindings()
            await pilot.pause()
            await pilot.pause()
            theirs.append(shown(app.query_one(Footer)))
    assert any(("b", "Bravo", True, True, False, False) in keys for keys in theirs)
    assert len({len(keys) for keys in theirs}) > 1  # keys came and went

    # ... ours shows the same, and a key that stays is the same widget throughout.
    app = Keys(AppFooter)
    async with app.run_test(size=(100, 5)) as pilot:
        await pilot.pause()
        footer = app.query_one(AppFooter)
        alpha = footer.query_children(FooterKey).first()
        assert alpha.key == "a"
        for state, expected in zip(STATES, theirs, strict=True):
            app.state = state
            app.refresh_bindings()
            app.refresh_bindings()  # twice before a refresh: one update
            await pilot.pause()
            await pilot.pause()
            assert shown(footer) == expected, state
            assert footer.query_children(FooterKey).first() is alpha
        # Nothing changed: nothing is made again.
        keys = list(footer.query_children(FooterKey))
        app.refresh_bindings()
        await pilot.pause()
        assert list(footer.query_children(FooterKey)) == keys
        # Clicking a key that became enabled in place runs its action.
        app.state = {"b": True, "c": True}
        app.refresh_bindings()
        await pilot.pause()
        bravo = next(k for k in footer.query_children(FooterKey) if k.key == "b")
        ran = []
        app.action_b = lambda: ran.append("b")
        await pilot.click(bravo)
        await pilot.pause()
        assert ran == ["b"]


async def test_new_keys_do_not_wait_for_a_frame_held_by_the_pacer():
    """While an answer floods in, frames are held; the footer is brought up to date
    without waiting for one, and asks for the next frame to come at once."""
    import asyncio
    from time import monotonic

    from tui.pacing import FramePacer, PacedScreen

    class PacedKeys(Keys):
        def __init__(self) -> None:
            super().__init__(AppFooter)
            self.pacer = FramePacer()

        def get_default_screen(self):
            return PacedScreen(self.pacer)

    app = PacedKeys()
    async with app.run_test(size=(100, 5)) as pilot:
        await pilot.pause()
        footer = app.query_one(AppFooter)
        assert "Bravo" not in [k.description for k in footer.query_children(FooterKey)]
        # Tokens flooding in, a frame just drawn: the next one is held for a while.
        pacer = app.pacer
        pacer.active = True
        pacer.frame_start, pacer.frame_cost = monotonic(), 1.0
        assert pacer.hold_for(monotonic()) > 0.1
        # ... and the screen has changes waiting for it, as while tokens stream in.
        body = app.query_one(Static)

        async def streaming():
            while True:
                body.update(f"token {monotonic()}")
                await asyncio.sleep(0.005)

        stream = asyncio.create_task(streaming())
        changed = monotonic()
        app.state = {"b": True, "c": True}
        app.refresh_bindings()
        await asyncio.sleep(0.05)  # less than the hold
        stream.cancel()
        assert "Bravo" in [k.description for k in footer.query_children(FooterKey)]
        assert pacer.frame_start > changed  # and a frame was drawn, not held, to show it
        pacer.active = False
