"""A real `chrysopedia serve` process and a real headless Chromium for the browser tests
(and bench/serve.py).

- `find_browser()`: the system's Chromium and chromedriver, or None with the reason.
- `Served(env, *args)`: `python -m tui serve ARGS` on a free loopback port; `.url`,
  `.descendants()` (pids of every process under the server, from /proc), `.stop()`.
- `Browser(...)`: one headless Chromium (its own profile: a separate browser context);
  `.open(url)`, `.screen()` (the page's xterm.js buffer, read through its JavaScript API),
  `.wait_screen(pred)`, `.type(text)`, `.press(key, ctrl=False)`, `.screenshot(path)`.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# The page's terminal (tui/serve/server.py exposes it as window.chrysopediaTerminal):
# every row of the active buffer's viewport as text.
SCREEN_JS = """
const t = window.chrysopediaTerminal;
if (!t) return null;
const b = t.buffer.active, rows = [];
for (let i = 0; i < t.rows; i++) {
  const line = b.getLine(b.viewportY + i);
  rows.push(line ? line.translateToString(true) : "");
}
return rows.join("\\n");
"""


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or the reason there are none."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    binary = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = shutil.which("chromedriver")
    if binary is None:
        return "no Chromium found (apt-get install chromium chromium-driver)"
    if driver is None:
        return "no chromedriver found (apt-get install chromium-driver)"
    return binary, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # a zombie has ended; only its parent has not reaped it yet
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one GET, redirects not followed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def websocket_handshake(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status a websocket upgrade to `url` gets (101 when accepted); closes at once."""
    parts = urlsplit(url)
    request = {
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **(headers or {}),
    }
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    path = parts.path + ("?" + parts.query if parts.query else "")
    try:
        conn.request("GET", path, headers=request)
        return conn.getresponse().status
    finally:
        conn.close()


class Served:
    """`python -m tui serve ARGS` in its own process; stopped (SIGTERM) on exit."""

    def __init__(self, env: dict[str, str], *args: str, port: int | None = None,
                 log: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "serve", "--port", str(self.port), *args],
            env=env, cwd=str(ROOT), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> Served:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}): {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until(up, timeout, "the server to listen")
        return self

    def output(self) -> str:
        if self.log_path is None:
            return ""
        if hasattr(self._log, "flush") and not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> set[int]:
        return descendants(self.proc.pid)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self._log, "close"):
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Browser:
    """One headless Chromium with its own profile (a browser context of its own)."""

    def __init__(self, binary: str, driver: str, size: tuple[int, int] = (1280, 800),
                 downloads: Path | None = None) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", f"--window-size={size[0]},{size[1]}",
                    "--no-first-run", "--disable-extensions", "--mute-audio"):
            options.add_argument(arg)
        if downloads is not None:
            options.add_experimental_option("prefs", {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
            })
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        if downloads is not None:
            self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                        {"behavior": "allow", "downloadPath": str(downloads)})

    def open(self, url: str) -> None:
        self.driver.get(url)

    def screen(self) -> str:
        return self.driver.execute_script(SCREEN_JS) or ""

    def wait_screen(self, predicate, timeout: float = 30, what: str = "") -> str:
        """The screen once `predicate(screen)` holds; else AssertionError with the screen."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if text and predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or predicate}; screen:\n{text}")

    def _input(self):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")

    def type(self, text: str) -> None:
        self._input().send_keys(text)

    def press(self, key: str, ctrl: bool = False) -> None:
        """`key`: a character or a selenium `Keys` name (ENTER, ESCAPE, F3, RIGHT...)."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        value = getattr(Keys, key) if len(key) > 1 else key
        # Keys go to the focused element: the terminal's input (never a click, which the
        # app would receive as a mouse event).
        self.driver.execute_script("arguments[0].focus()", self._input())
        chain = ActionChains(self.driver)
        if ctrl:
            chain = chain.key_down(Keys.CONTROL).send_keys(value).key_up(Keys.CONTROL)
        else:
            chain = chain.send_keys(value)
        chain.perform()

    def screenshot(self, path: Path) -> Path:
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        self.driver.quit()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
