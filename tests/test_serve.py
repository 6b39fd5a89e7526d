"""`chrysopedia serve`: the real server process, real HTTP and websockets, a real headless
Chromium (the system's, through chromedriver) reading the page's xterm.js buffer.

Security tests need no browser; the `browser` ones skip with the reason when no Chromium
or chromedriver is installed (.ci/run installs both, and sets
$CHRYSOPEDIA_TEST_REQUIRE_BROWSER so that a missing browser fails the suite there).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from faults_support import app_env
from serve_support import (
    ROOT,
    Browser,
    Served,
    alive,
    find_browser,
    http_get,
    wait_until,
    websocket_handshake,
)

from tui.config import load_settings
from tui.serve.server import session_environment

TOKEN = "k3y-" + "x7Qp9" * 6  # what a user writes into their token file
BROWSER = find_browser()
needs_browser = pytest.mark.skipif(
    isinstance(BROWSER, str), reason=f"no browser for the browser tests: {BROWSER}"
)
# Set by .ci/run: there the browser tests must run, so a missing browser fails the suite.
# (Read at import: the tests' own environment is cleared of CHRYSOPEDIA_* variables.)
REQUIRE_BROWSER = "CHRYSOPEDIA_TEST_REQUIRE_BROWSER"
BROWSER_REQUIRED = os.environ.get(REQUIRE_BROWSER, "") not in ("", "0")
READY = "Ask about synthesis, sound design"


def ready(screen: str) -> bool:
    return READY in screen and "model loading" not in screen


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="module")
def fake_model():
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture(scope="module")
def env(home, fake_model) -> dict[str, str]:
    """One data dir for every server here: the first start imports the bundled KB."""
    config = home / "config.toml"
    config.write_text("", encoding="utf-8")
    return app_env(
        home,
        CHRYSOPEDIA_DATA_DIR=str(home / "data"),
        CHRYSOPEDIA_CONFIG=str(config),
        CHRYSOPEDIA_LLM_API_URL=fake_model.url,
        CHRYSOPEDIA_LLM_CONNECT_TIMEOUT="2",
    )


def serve(env, tmp_path, *args) -> Served:
    return Served(env, *args, log=tmp_path / "server.log").wait_ready()


def test_ci_has_a_browser_for_the_browser_tests():
    if not BROWSER_REQUIRED:
        pytest.skip(f"${REQUIRE_BROWSER} is not set (only CI requires a browser)")
    assert not isinstance(BROWSER, str), (
        f"${REQUIRE_BROWSER} is set but the browser tests would be skipped: {BROWSER}")


# -- the command line ------------------------------------------------------------------


def run_serve(env, *args, timeout=30):
    return subprocess.run([sys.executable, "-m", "tui", "serve", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "serving on 0.0.0.0 needs a token"),
    (["--host", "192.168.1.20"], "serving on 192.168.1.20 needs a token"),
    (["--host", "0.0.0.0", "--token", "short"], "at least 16 characters"),
    (["--token-file", "/nonexistent/token"], "token file /nonexistent/token does not exist"),
    (["--max-sessions", "0"], "--max-sessions must be at least 1"),
    (["--public-url", "ftp://x"], "--public-url must be an http(s):// URL"),
    (["--public-url", "https://studio.example.com"],
     "serving at https://studio.example.com needs a token"),
])
def test_bad_options_are_refused_in_one_line(env, args, message):
    done = run_serve(env, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_one_line(env):
    done = run_serve({**env, "CHRYSOPEDIA_DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/x"})
    assert done.returncode == 2
    assert ("database_url (from $CHRYSOPEDIA_DATABASE_URL) postgresql://u:***@127.0.0.1:1/x: "
            "connection refused") in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr


def test_a_taken_port_is_one_line(env, tmp_path):
    with serve(env, tmp_path) as server:
        done = run_serve(env, "--port", str(server.port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{server.port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_each_session_gets_the_servers_settings(tmp_path):
    """The session's app reads back exactly the server's settings (file, env and flags)."""
    config = tmp_path / "config.toml"
    config.write_text('llm_model = "from-file"\ntheme = "nord"\n[keymap]\n"app.help" = "f9"\n')
    server_env = {"CHRYSOPEDIA_LLM_API_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-k",
                  "CHRYSOPEDIA_SERVE_TOKEN": TOKEN, "CHRYSOPEDIA_REDIS_URL": "redis://other:1/0"}
    settings = load_settings(config_file=config, env=server_env, flags={
        "db": f"sqlite:///{tmp_path / 'x.db'}", "redis": "redis://127.0.0.1:6379/5"})
    child = session_environment(settings, {**server_env, "PATH": "/bin"}, 4242)
    assert TOKEN not in json.dumps(child), "the token never reaches a session"
    assert child["PATH"] == "/bin" and child["CHRYSOPEDIA_SERVE_PARENT"] == "4242"
    again = load_settings(env=child)
    for name in ("database_url", "redis_url", "llm_api_url", "llm_api_key", "llm_model",
                 "theme", "keymap", "data_dir", "media_dir", "llm_connect_timeout"):
        assert getattr(again, name) == getattr(settings, name), name
    assert again.redis_url == "redis://127.0.0.1:6379/5"  # the flag, not the server's env


def test_the_textual_serve_internals_we_use_are_still_there():
    from textual_serve.app_service import AppService
    from textual_serve.download_manager import DownloadManager

    from tui.serve.server import JS_NEEDLE, JS_PATCH, TEXTUAL_JS, Session, patched_textual_js

    assert JS_NEEDLE in TEXTUAL_JS.read_text(encoding="utf-8")
    assert JS_PATCH.encode() in patched_textual_js()
    for name in ("_open_app_process", "stop", "run", "send_meta", "send_bytes", "start"):
        assert callable(getattr(AppService, name)), name
    session = Session(["true"], {}, write_bytes=None, write_str=None, close=None,
                      download_manager=DownloadManager())
    for name in ("_process", "_stdin", "_task", "_download_manager", "app_service_id"):
        assert hasattr(session, name), name


HUNG_APP = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
print("__GANGLION__", flush=True)
time.sleep(120)
"""


def test_a_session_whose_app_hangs_is_killed_with_everything_it_started(tmp_path):
    """Quit ignored, SIGTERM ignored, stdin never read, a child of its own: all end."""
    import asyncio

    from textual_serve.download_manager import DownloadManager

    from tui.serve.server import Session

    async def scenario():
        sent: list[bytes] = []

        async def write_bytes(data: bytes) -> None:
            sent.append(data)

        pid_file = tmp_path / "grandchild.pid"
        session = Session([sys.executable, "-c", HUNG_APP, str(pid_file)], {"PATH": "/usr/bin:/bin"},
                          write_bytes=write_bytes, write_str=write_bytes, close=write_bytes,
                          download_manager=DownloadManager())
        session.quit_grace = session.term_grace = 0.5
        await session.start(80, 24)
        await asyncio.to_thread(wait_until, lambda: pid_file.exists() and pid_file.read_text(),
                                10, "the hung app to start its child")
        grandchild = int(pid_file.read_text())
        pid = session.pid
        assert alive(pid) and alive(grandchild)
        await asyncio.wait_for(session.stop(), 10)
        return pid, grandchild

    pid, grandchild = asyncio.run(scenario())
    wait_until(lambda: not alive(pid) and not alive(grandchild), 5, "the hung app's group to end")


# -- the guard (real HTTP, no browser) -------------------------------------------------


def test_without_the_token_every_route_is_401_and_no_process_starts(env, tmp_path):
    with serve(env, tmp_path, "--token", TOKEN) as server:
        for path in ("/", "/static/js/textual.js", "/static/css/xterm.css", "/download/abc",
                     "/nothing"):
            status, headers, body = http_get(server.url + path)
            assert status == 401, path
            assert headers.get("WWW-Authenticate", "").startswith("Bearer")
            assert TOKEN not in body
        assert websocket_handshake(server.url + "/ws") == 401
        # The wrong token, every way it can come.
        wrong = "k3y-" + "Zz" * 15
        assert http_get(f"{server.url}/?token={wrong}")[0] == 401
        assert http_get(server.url, {"Authorization": f"Bearer {wrong}"})[0] == 401
        assert http_get(server.url, {"Cookie": f"chrysopedia_session={wrong}"})[0] == 401
        assert http_get(server.url, {"Cookie": f"chrysopedia_session={TOKEN}"})[0] == 401
        assert websocket_handshake(f"{server.url}/ws?token={wrong}") == 401
        assert websocket_handshake(server.url + "/ws", {"Authorization": f"Bearer {wrong}"}) == 401
        time.sleep(0.3)
        assert server.descendants() == set(), "a refused request started a process"
        # The right token: once in the query, then a cookie (the address loses it).
        status, headers, _ = http_get(f"{server.url}/?token={TOKEN}&fontsize=14")
        assert status == 303 and headers["Location"] == "/?fontsize=14"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and TOKEN not in cookie
        status, _, page = http_get(server.url + "/", {"Cookie": cookie.split(";")[0]})
        assert status == 200 and "xterm" in page and TOKEN not in page
        assert http_get(server.url + "/", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert server.descendants() == set(), "a page alone starts no process"
        log = server.output()
    assert TOKEN not in log, "the token was logged"
    assert "GET / 401" in log  # the access log is there, without query strings


def raw_request(port: int, data: bytes) -> bytes:
    """Bytes sent as they are (a malformed request no HTTP client would send); the reply."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        try:
            return conn.recv(200)
        except TimeoutError:
            return b""


def test_malformed_requests_do_not_log_the_token_or_the_cookie(env, tmp_path):
    """aiohttp logs a request it cannot parse with its raw request line or header: the
    token (right or wrong) and the session cookie are redacted there too."""
    wrong = "k3y-" + "Ww" * 15
    with serve(env, tmp_path, "--token", TOKEN) as server:
        _, headers, _ = http_get(f"{server.url}/?token={TOKEN}")
        cookie = headers["Set-Cookie"].split(";")[0]  # chrysopedia_session=VALUE
        value = cookie.split("=", 1)[1]
        for line in (f"GET /?token={TOKEN}\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
                     f"GET /?token={wrong} HTTP/9.9\r\nHost: x\r\n\r\n",
                     f"GET /ws?token={TOKEN}&x=" + "A" * 9000 + " HTTP/1.1\r\nHost: x\r\n\r\n",
                     f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\x01\r\n\r\n",
                     f"GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\x01\r\n\r\n"):
            assert raw_request(server.port, line.encode("latin-1")).split(b"\r\n")[0].endswith(
                b" 400 Bad Request")
        # A websocket address asked for without the upgrade: refused, no session made.
        status, _, _ = http_get(server.url + "/ws", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 400
        time.sleep(0.3)
        assert server.descendants() == set()
        log = server.output()
    assert "400" in log and "token=***" in log  # the lines are there, redacted
    for secret in (TOKEN, wrong, value):
        assert secret not in log, (secret, log[-3000:])
    assert "GET /ws 400" in log
    assert " started (pid" not in log and " failed" not in log and "Unhandled" not in log


def test_without_a_token_only_loopback_names_and_the_servers_own_origin(env, tmp_path):
    with serve(env, tmp_path) as server:
        assert http_get(server.url)[0] == 200
        # A page on another site that resolves its name to 127.0.0.1 (DNS rebinding).
        assert http_get(server.url, {"Host": f"evil.example:{server.port}"})[0] == 403
        # Another site's script opening the websocket straight to loopback.
        assert websocket_handshake(server.url + "/ws", {"Origin": "http://evil.example"}) == 403
        time.sleep(0.3)
        assert server.descendants() == set()


def test_on_every_interface_the_server_names_an_address_a_browser_can_open(env, tmp_path):
    with serve(env, tmp_path, "--host", "0.0.0.0", "--token", TOKEN) as server:
        wait_until(lambda: "open http://" in server.output(), 20, "the start-up lines")
        line = next(ln for ln in server.output().splitlines() if "open http://" in ln)
        address = line.split("open http://", 1)[1].split()[0]
        host, _, port = address.rpartition(":")
        assert port == str(server.port) and host not in ("0.0.0.0", "", "::")
        assert http_get(f"http://{host}:{server.port}/")[0] == 401  # it is this server
        assert TOKEN not in server.output()


def test_behind_a_proxy_the_page_names_the_public_address(env, tmp_path):
    """--public-url: the page's websocket and static addresses are the public ones (wss: for
    https:), the cookie is Secure, and the websocket takes the public Origin, not another."""
    public = "https://studio.example.com"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with serve(env, tmp_path, "--token", TOKEN, "--public-url", public) as server:
        status, headers, _ = http_get(f"{server.url}/?token={TOKEN}")
        assert status == 303
        assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        # What the proxy forwards: the public Host (nginx's `proxy_set_header Host $host`).
        status, _, page = http_get(server.url + "/", {**bearer, "Host": "studio.example.com"})
        assert status == 200 and TOKEN not in page
        assert 'data-session-websocket-url="wss://studio.example.com/ws"' in page
        assert f'src="{public}/static/js/textual.js"' in page
        assert "127.0.0.1" not in page
        # A proxy that passes its own upstream Host: the public Origin is still the server's.
        ws = server.url + "/ws"
        assert websocket_handshake(ws, {**bearer, "Origin": "https://evil.example"}) == 403
        time.sleep(0.3)
        assert server.descendants() == set()
        asyncio.run(public_origin_session(server, {**bearer, "Origin": public}))


async def public_origin_session(server, headers) -> None:
    """A websocket with the public Origin opens a session; closing it ends the process."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        socket = await http.ws_connect(server.url + "/ws", headers=headers)
        pids = await asyncio.to_thread(wait_until, lambda: server.descendants(), 20,
                                       "the session's process")
        await socket.close()
        await asyncio.to_thread(wait_until, lambda: not any(alive(p) for p in pids), 20,
                                "the session to end")


def test_session_limit(env, tmp_path):
    import asyncio

    import aiohttp

    async def scenario(server):
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(server.url + "/ws?width=80&height=24")
            await asyncio.to_thread(wait_until, lambda: len(server.descendants()) == 1, 20,
                                    "the first session's process")
            pid = next(iter(server.descendants()))
            async with http.get(server.url + "/") as page:
                assert page.status == 503
                assert "All sessions are in use" in await page.text()
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.url + "/ws")
            assert refused.value.status == 503
            assert server.descendants() == {pid}
            await first.close()
            # Closing the socket (a closed tab) ends the process and frees the place.
            await asyncio.to_thread(wait_until, lambda: not alive(pid), 20, "the process to end")
            # The server frees the place when it has reaped the process: a moment after the
            # process is gone (on a loaded CI machine the first page could still be a 503).
            for _ in range(100):
                async with http.get(server.url + "/") as page:
                    if page.status == 200:
                        break
                    assert page.status == 503
                await asyncio.sleep(0.1)
            assert page.status == 200

    with serve(env, tmp_path, "--max-sessions", "1") as server:
        asyncio.run(scenario(server))


def test_a_killed_server_leaves_no_session_running(env, tmp_path):
    """SIGKILL gives the server no chance to clean up: each session dies with it."""
    import asyncio

    import aiohttp

    async def scenario(server):
        async with aiohttp.ClientSession() as http:
            await http.ws_connect(server.url + "/ws")
            pids = await asyncio.to_thread(
                wait_until, lambda: server.descendants(), 20, "the session's process")
            server.proc.kill()
            await asyncio.to_thread(
                wait_until, lambda: not any(alive(p) for p in pids), 10, "the session to end")

    with serve(env, tmp_path) as server:
        asyncio.run(scenario(server))


# -- in the browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(env, tmp_path_factory):
    log = tmp_path_factory.mktemp("served") / "server.log"
    with Served(env, log=log) as server:
        server.wait_ready()
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, driver = BROWSER
    downloads = tmp_path_factory.mktemp("downloads")
    with Browser(binary, driver, downloads=downloads) as b:
        b.downloads = downloads
        yield b


def voice_weight(screen: str) -> float:
    """The weight the voice preview's title shows ("... at 0.15 (off)"), 0 when none."""
    import re

    found = re.search(r" at (\d\.\d\d) \(", screen)
    return float(found.group(1)) if found else 0.0


def creator_list_open(screen: str) -> bool:
    """The creator picker's list is open: its first option shows without the ▼ of the closed one."""
    return any(line.startswith(" Any creator") and "▼" not in line for line in screen.splitlines())


def open_app(browser: Browser, url: str) -> str:
    browser.open(url)
    return browser.wait_screen(ready, 60, "the main screen")


@pytest.mark.browser
@needs_browser
def test_in_the_browser_ask_answer_source_video_slider(served, browser, fake_model, tmp_path):
    fake_model.set_mode("normal")
    screen = open_app(browser, served.url)
    assert "Sources" in screen and "Any creator" in screen
    browser.type("parallel compression")
    browser.press("ENTER")
    screen = browser.wait_screen(lambda s: "Blend to taste." in s and "tokens" in s, 30,
                                 "the streamed answer")
    assert "Parallel compression adds sustain [1] while keeping transients [2]." in screen
    assert "Sources (" in screen
    shot = browser.screenshot(tmp_path / "answered.png")
    assert shot.stat().st_size > 10_000
    # Copy: the app's OSC 52 reaches the browser's clipboard (allowed on localhost).
    browser.driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": served.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    browser.press("g", ctrl=True)
    clipboard = wait_until(lambda: browser.driver.execute_async_script(
        "const done = arguments[0];"
        "navigator.clipboard.readText().then(done, () => done(''));"), 10, "the clipboard")
    assert clipboard.startswith("Parallel compression adds sustain [1]")
    assert "Blend to taste." in clipboard
    # A source by keyboard: Ctrl+L to the sidebar, Enter opens source 1.
    browser.press("l", ctrl=True)
    browser.wait_screen(lambda s: "esc Back to prompt" in s, 10, "the sidebar focused")
    browser.press("ENTER")
    screen = browser.wait_screen(lambda s: "Source [1]" in s and "o Open video" in s, 20,
                                 "the source detail")
    # Open video: the page opens the URL at its second in a new tab.
    browser.driver.execute_script(
        "window.__opened = []; const o = window.open;"
        "window.open = function(u, t) { window.__opened.push([u, t]); return null; };")
    browser.press("o")
    opened = wait_until(lambda: browser.driver.execute_script("return window.__opened"), 10,
                        "window.open")
    url, target = opened[0]
    assert url.startswith("https://") and "t=" in url and target == "_blank"
    browser.wait_screen(lambda s: "new browser tab" in s, 10, "the message")
    browser.press("ESCAPE")
    browser.wait_screen(lambda s: "Source [1]" not in s, 10, "the detail to close")
    # The slider: F3 picks a creator, F8 tunes the voice, Right moves it.
    browser.press("F2")  # back to the prompt, where a stray Enter (below) does nothing
    browser.wait_screen(lambda s: "esc Back to prompt" not in s, 10, "the prompt focused")
    browser.press("F3")
    # Focus moves after the key is handled: Enter may still reach the prompt; press again.
    for _ in range(5):
        browser.press("ENTER")
        try:
            browser.wait_screen(creator_list_open, 2, "the creator list")
            break
        except AssertionError:
            continue
    browser.press("DOWN")
    browser.press("ENTER")
    browser.wait_screen(lambda s: "Any creator" not in s, 10, "a creator chosen")
    browser.press("F8")
    # As with F3: the first Right may come before the slider has the focus.
    for _ in range(5):
        browser.press("RIGHT")
        try:
            screen = browser.wait_screen(lambda s: voice_weight(s) > 0, 2, "the slider to move")
            break
        except AssertionError:
            continue
    weight = voice_weight(screen)
    for _ in range(4 - round(weight / 0.05)):
        browser.press("RIGHT")
    browser.wait_screen(lambda s: " at 0.20 (subtle)" in s, 10, "the slider at 0.20, subtle")
    browser.press("LEFT")
    browser.wait_screen(lambda s: " at 0.15 (off)" in s, 10, "the slider back at 0.15")


@pytest.mark.browser
@needs_browser
def test_in_the_browser_escape_stops_an_answer_and_export_downloads(served, browser,
                                                                    fake_model, env):
    fake_model.set_mode("slow", rate=30, count=600)
    open_app(browser, served.url)
    browser.type("sidechain compression\n")
    browser.wait_screen(lambda s: "Stop answer" in s and "Parallel" in s, 30, "streaming")
    browser.press("ESCAPE")
    browser.wait_screen(lambda s: "⏹ stopped" in s and "Stop answer" not in s, 10,
                        "the stopped answer, and no Stop key")
    wait_until(lambda: any(r.client_closed for r in fake_model.chat_requests), 10,
               "the model's stream to be closed")
    fake_model.set_mode("normal")
    # Export in a browser is a download, not a file on the server.
    browser.press("s", ctrl=True)
    browser.wait_screen(lambda s: "offered as a download" in s, 10, "the export message")
    files = wait_until(lambda: [p for p in browser.downloads.glob("chrysopedia-*.md")
                                if p.stat().st_size], 15, "the download")
    text = files[0].read_text(encoding="utf-8")
    assert "sidechain compression" in text
    assert not (Path(env["CHRYSOPEDIA_DATA_DIR"]) / "exports").exists()


@pytest.mark.browser
@needs_browser
def test_each_browser_context_has_its_own_session_and_a_closed_tab_ends_it(served, browser):
    if not ready(browser.screen()):  # the page an earlier test left open serves as well
        open_app(browser, served.url)
    before = served.descendants()
    binary, driver = BROWSER
    with Browser(binary, driver) as other:
        open_app(other, served.url)
        # (An earlier test's session may still be ending: only new processes count.)
        mine = wait_until(lambda: served.descendants() - before, 20, "a new process")
        assert len(mine) == 1
        both = before | mine
        other.type("only in the second context")
        other.wait_screen(lambda s: "only in the second context" in s, 10, "the typed text")
        assert "only in the second context" not in browser.screen()
        # A tab closed: its process ends.
        other.driver.switch_to.new_window("tab")
        other.open(served.url)
        other.wait_screen(ready, 60, "the second tab")
        third = wait_until(lambda: served.descendants() - both, 20, "the tab's process")
        other.driver.close()
        other.driver.switch_to.window(other.driver.window_handles[0])
        wait_until(lambda: not any(alive(p) for p in third), 20, "the closed tab's process to end")
        assert all(alive(p) for p in mine)
    wait_until(lambda: not any(alive(p) for p in mine), 20, "the closed browser's process to end")


@pytest.mark.browser
@needs_browser
def test_with_a_token_in_the_browser_and_stopping_the_server_ends_every_session(env, tmp_path):
    binary, driver = BROWSER
    server = Served(env, "--host", "127.0.0.1", "--token", TOKEN,
                    log=tmp_path / "server.log").wait_ready()
    try:
        with Browser(binary, driver) as one:
            one.open(server.url)
            assert "401" in one.driver.page_source
            open_app(one, f"{server.url}/?token={TOKEN}")
            assert TOKEN not in one.driver.current_url  # the token became a cookie
            one.driver.switch_to.new_window("tab")
            open_app(one, server.url)  # the cookie alone lets it in
            pids = wait_until(lambda: (d := server.descendants()) and len(d) >= 2 and d, 20,
                              "two sessions")
            assert server.stop() == 0
            wait_until(lambda: not any(alive(p) for p in pids), 10, "every session to end")
    finally:
        server.stop()
    assert TOKEN not in server.output()
