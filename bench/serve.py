"""The app in a browser against the app in a terminal, measured in the same run.

    .venv/bin/python bench/serve.py [--json] [--repeat 3] [--rate 0]

One loopback fake model server (tests/fake_openai.py) streams the same 1,000-token
answer (plain words in paragraphs, ending in a marker word) to both:

- browser: `chrysopedia serve` on loopback and a headless Chromium (the system's, through
  chromedriver). `page_to_ready_s`: from asking for the page to the app's main screen in
  the page's xterm.js buffer (details.page_load_s: to the page's load event; the rest is
  the app process starting). `browser_answer_s`: from Enter to the marker word in that
  buffer (read through xterm.js's API every 20 ms).
- terminal: `python -m tui` in a tmux window of the same size as the page's terminal;
  `terminal_answer_s`: from Enter (`tmux send-keys`) to the marker word in
  `tmux capture-pane` (every 20 ms).

Each repeat opens a new page and a new tmux session (a new app process each); figures
are medians. `ratio` = browser_answer_s / terminal_answer_s (target: at most 2).
`--rate` tokens/s for the model (0: as fast as it sends).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_openai import FakeOpenAI  # noqa: E402
from faults_support import app_env  # noqa: E402
from serve_support import Browser, Served, find_browser  # noqa: E402

MARKER = "Zanzibar"
QUESTION = "parallel compression on drums"
WORDS = ("compress", "the", "drum", "bus", "gently", "then", "blend", "a", "crushed", "copy",
         "under", "it", "so", "transients", "stay", "sharp", "while", "the", "room", "swells")


def answer_tokens(count: int = 1000) -> list[str]:
    """`count` tokens: words, a paragraph break every 60, the marker word last."""
    tokens = []
    for i in range(count - 1):
        word = WORDS[i % len(WORDS)]
        tokens.append(("\n\n" if i and i % 60 == 0 else " ") + word)
    tokens.append(f" {MARKER}.")
    return tokens


def ready(screen: str) -> bool:
    return "Ask about synthesis, sound design" in screen and "model loading" not in screen


def poll(read, predicate, timeout: float, what: str, interval: float = 0.02,
         start: float | None = None) -> float:
    """Seconds from `start` (default: now) until `predicate(read())`, polled every `interval`."""
    start = time.perf_counter() if start is None else start
    while True:
        if predicate(read()):
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(interval)


LOADS: list[float] = []  # asking for the page -> its load event (page, script, font)


def browser_run(browser: Browser, url: str) -> tuple[float, float]:
    start = time.perf_counter()
    browser.open(url)
    loaded = time.perf_counter() - start
    while not ready(browser.screen()):
        if time.perf_counter() - start > 60:
            raise SystemExit("bench: the page never showed the main screen")
        time.sleep(0.02)
    page_to_ready = time.perf_counter() - start
    LOADS.append(loaded)
    browser.type(QUESTION)
    poll(browser.screen, lambda s: QUESTION in s, 10, "the typed question")
    start = time.perf_counter()
    browser.press("ENTER")
    answer = poll(browser.screen, lambda s: MARKER in s, 120, "the browser's answer", start=start)
    return page_to_ready, answer


class Tmux:
    def __init__(self, socket: str, env: dict[str, str], cols: int, rows: int) -> None:
        self.socket = socket
        self.name = "bench"
        command = [sys.executable, "-m", "tui"]
        exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items() if k.startswith(
            ("CHRYSOPEDIA_", "HOME", "XDG_", "LANG", "PYTHON")))
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(cols), "-y", str(rows),
                   f"env {exports} TERM=xterm-256color COLORTERM=truecolor "
                   + " ".join(map(_quote, command)))

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True, cwd=ROOT).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self._tmux("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def _quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def terminal_run(env: dict[str, str], cols: int, rows: int, socket: str) -> tuple[float, float]:
    tmux = Tmux(socket, env, cols, rows)
    try:
        ready_s = poll(tmux.screen, ready, 60, "the terminal's main screen")
        tmux.keys(QUESTION, literal=True)
        poll(tmux.screen, lambda s: QUESTION in s, 10, "the typed question")
        start = time.perf_counter()
        tmux.keys("Enter")
        answer = poll(tmux.screen, lambda s: MARKER in s, 120, "the terminal's answer",
                      start=start)
        return ready_s, answer
    finally:
        tmux.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.0, help="tokens/s (0: unpaced)")
    args = parser.parse_args(argv)
    found = find_browser()
    if isinstance(found, str):
        raise SystemExit(f"bench: {found}")
    if shutil.which("tmux") is None:
        raise SystemExit("bench: no tmux (apt-get install tmux)")

    tokens = answer_tokens()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp, FakeOpenAI() as model:
        if args.rate > 0:
            model.set_mode("slow", tokens=tokens, rate=args.rate)
        else:
            model.set_mode("normal", tokens=tokens)
        home = Path(tmp)
        (home / "config.toml").write_text("")
        env = app_env(home, CHRYSOPEDIA_DATA_DIR=str(home / "data"),
                      CHRYSOPEDIA_CONFIG=str(home / "config.toml"),
                      CHRYSOPEDIA_LLM_API_URL=model.url, CHRYSOPEDIA_LLM_CONNECT_TIMEOUT="2")
        page, browser_s, terminal_s, terminal_ready = [], [], [], []
        with Served(env, log=home / "server.log") as server, Browser(*found) as browser:
            server.wait_ready()
            cols = rows = 0
            for i in range(args.repeat):
                p, b = browser_run(browser, server.url)
                page.append(p)
                browser_s.append(b)
                if not cols:
                    cols, rows = browser.driver.execute_script(
                        "const t = window.chrysopediaTerminal; return [t.cols, t.rows];")
                r, t = terminal_run(env, cols, rows, f"chrysopedia-bench-{i}")
                terminal_ready.append(r)
                terminal_s.append(t)
                if not args.json:
                    print(f"run {i + 1}: page {p:.2f} s, browser {b:.2f} s, terminal {t:.2f} s",
                          file=sys.stderr)
            browser.open("about:blank")
    med = statistics.median
    result = {
        "page_to_ready_s": round(med(page), 3),
        "browser_answer_s": round(med(browser_s), 3),
        "terminal_answer_s": round(med(terminal_s), 3),
        "ratio": round(med(browser_s) / med(terminal_s), 2),
        "details": {
            "tokens": len(tokens), "repeat": args.repeat, "rate": args.rate or "unpaced",
            "size": [cols, rows], "terminal_ready_s": round(med(terminal_ready), 3),
            "page_load_s": round(med(LOADS), 3),
            "page_to_ready_all": [round(x, 3) for x in page],
            "browser_answer_all": [round(x, 3) for x in browser_s],
            "terminal_answer_all": [round(x, 3) for x in terminal_s],
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"page to main screen  {result['page_to_ready_s']:.2f} s\n"
              f"answer in browser    {result['browser_answer_s']:.2f} s\n"
              f"answer in terminal   {result['terminal_answer_s']:.2f} s\n"
              f"ratio                {result['ratio']:.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
