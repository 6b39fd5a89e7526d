"""Helpers for the fault-and-abuse suite (tests/test_faults_*.py); no tests here.

- `AppInPty`: the real `python -m tui` in a pseudo-terminal. A reader thread keeps
  every raw byte the app writes (to look for escape sequences that must not reach
  the terminal) and feeds a `pyte` terminal emulator (to read the rendered screen).
- `prepare_kb_file(path)`: a SQLite file with the bundled KB and the mini KB,
  built once per session and copied per test (first-run import is slow).
- `make_hostile(url)`: rewrite knowledge-base rows with hostile text directly in
  the database — as another tool writing a shared database could — bypassing the
  importer, which refuses control characters; the display layer must still cope.
- `sqlite_rows(path, sql)`: read the app's SQLite file from the test (sync).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pyte

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"

# The hostile sequences, and the bytes that would show they reached the terminal raw.
OSC_TITLE = "\x1b]0;PWNED-TITLE\x07"
OSC_52 = "\x1b]52;c;SEFDS0VEQ0xJUEJPQVJE\x07"  # "HACKEDCLIPBOARD", base64
CLEAR = "\x1b[2J"
C1_CSI = "\x9b2J"
BIDI = "\u202e"
RICH = "[bold red]x[/]"
RICH_LINK = "[link=https://evil.example/]click[/link]"
HOSTILE_BITS = f"{RICH} {RICH_LINK} {OSC_TITLE}{OSC_52}{CLEAR}{C1_CSI} \x00NUL{BIDI}evil\u202c"
# Byte strings that must never appear in what the app writes to its terminal.
FORBIDDEN_RAW = [
    b"PWNED-TITLE",  # an OSC 0 title payload (ours only appears if the sequence passed)
    b"\x1b]52;c;SEFDS0VE",  # an OSC 52 clipboard write of the content's payload
    b"SEFDS0VEQ0xJUEJPQVJE",
    b"\x00",  # NUL
    BIDI.encode(),
    "\u202c".encode(),
]


def deadlines(settings, mode: str):
    """Short deadlines only where a stall is the fault. Not too short: a loaded CI
    machine has taken more than half a second to send a healthy first token (the
    fallback's, or the next question's), so a stall costs 1.5 s here."""
    if mode == "stall":
        return settings.with_overrides(llm_first_token_timeout=1.5)
    if mode == "stall_after":
        return settings.with_overrides(llm_read_timeout=1.5)
    return settings


def app_env(home: Path, **values: str) -> dict[str, str]:
    """A clean environment for a `chrysopedia` process: its own HOME/XDG dirs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHRYSOPEDIA_") and k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CACHE_HOME=str(home / ".cache"),
        TERM="xterm-256color", COLORTERM="truecolor", PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
    )
    if "UTF-8" not in (env.get("LC_ALL") or env.get("LANG") or "").upper():
        env["LANG"] = "C.UTF-8"  # CI may run with no locale: the screen has box characters
    env.pop("TEXTUAL", None)
    env.update(values)
    return env


class AppInPty:
    """`python -m tui ARGS` in a pty of `cols` x `rows`; read the screen, send keys, kill it."""

    def __init__(self, env: dict[str, str], args: list[str] | None = None,
                 cols: int = 120, rows: int = 40) -> None:
        self.cols, self.rows = cols, rows
        self.raw = bytearray()
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui", *(args or [])],
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(ROOT),
            start_new_session=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.raw.extend(data)
                try:
                    self._stream.feed(data)
                except Exception:  # noqa: BLE001 - the emulator is only for reading
                    pass

    def text(self) -> str:
        """The rendered screen, one line per row."""
        with self._lock:
            return "\n".join(self.screen.display)

    def raw_bytes(self) -> bytes:
        with self._lock:
            return bytes(self.raw)

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the app exited ({self.proc.returncode}) waiting for {what}:\n{self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or predicate}; screen:\n{self.text()}")

    def wait_text(self, needle: str, timeout: float = 30.0) -> None:
        self.wait_for(lambda: needle in self.text(), timeout, what=repr(needle))

    def send(self, data: str | bytes) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def type(self, text: str) -> None:
        """Type text as a paste (bracketed), so a long question arrives in one go."""
        self.send(b"\x1b[200~" + text.encode() + b"\x1b[201~")

    def kill(self) -> None:
        """SIGKILL, no clean-up: as a crash or `kill -9` would."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def quit(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.send(b"\x11")  # Ctrl+Q
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()
        return self.proc.returncode

    def _close(self) -> None:
        self._reader.join(2)
        try:
            os.close(self.master)
        except OSError:
            pass

    def __enter__(self) -> AppInPty:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.kill()


# -- databases -------------------------------------------------------------------------

_TEMPLATE: dict[str, Path] = {}


def prepare_kb_file(path: Path, cache_dir: Path) -> str:
    """Copy of a SQLite file holding the bundled KB and the mini KB; returns its URL."""
    template = _TEMPLATE.get("kb")
    if template is None or not template.exists():
        template = cache_dir / "kb-template.db"
        if template.exists():
            template.unlink()
        asyncio.run(_build(f"sqlite+aiosqlite:///{template}"))
        _TEMPLATE["kb"] = template
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _build(url: str) -> None:
    from tui.commands._common import open_database
    from tui.config import Settings
    from tui.db.importer import ensure_demo_kb, import_path

    settings = Settings(database_url=url)
    db = await open_database(settings, load_bundled=False)
    try:
        await ensure_demo_kb(db, settings, force=True)  # a named database gets the demo only when asked
        await import_path(db, DATA / "mini_kb.json")
    finally:
        await db.dispose()


def make_hostile(url: str, *, huge_line_bytes: int = 10 * 1024 * 1024) -> None:
    """Put hostile text in the mini KB's "parallel-compression" page, its sections and creator.

    The page keeps its search words ("parallel compression") so a question finds it.
    One section body is a single line of `huge_line_bytes` characters.
    """
    asyncio.run(_make_hostile(url, huge_line_bytes))


async def _make_hostile(url: str, huge: int) -> None:
    from sqlalchemy import select, update

    from tui.db.engine import Database
    from tui.db.models import Creator, Section, TechniquePage
    from tui.db.search_index import rebuild_index

    db = Database(url)
    await db.init()
    try:
        async with db.session() as s, s.begin():
            page = (await s.execute(
                select(TechniquePage).where(TechniquePage.slug == "parallel-compression")
            )).scalar_one()
            await s.execute(update(TechniquePage).where(TechniquePage.id == page.id).values(
                title=f"Parallel Compression {HOSTILE_BITS}",
                summary=f"Parallel compression summary {HOSTILE_BITS}",
            ))
            sections = (await s.execute(
                select(Section).where(Section.page_id == page.id).order_by(Section.position)
            )).scalars().all()
            for i, section in enumerate(sections):
                body = f"Parallel compression body {HOSTILE_BITS}."
                if i == len(sections) - 1:
                    body += " " + ("x" * (huge - len(body) - 1))  # one line, no breaks
                await s.execute(update(Section).where(Section.id == section.id).values(
                    heading=f"Heading {HOSTILE_BITS}", body=body))
            await s.execute(update(Creator).where(Creator.slug == "test-ada").values(
                name=f"Test Ada {RICH}{OSC_TITLE}\x00{BIDI}"))
        async with db.engine.begin() as conn:
            await rebuild_index(conn)
    finally:
        await db.dispose()


def sqlite_path(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


def sqlite_rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(str(path), timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
