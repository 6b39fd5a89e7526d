"""What the first frame needs, and no more: the heavy modules load after it (in the
app's boot worker), so the app paints about as fast as a bare Textual app."""

from __future__ import annotations

import json
import subprocess
import sys

# Imported after the first paint: the services' libraries and Textual's Markdown.
AFTER_FIRST_FRAME = ("sqlalchemy", "openai", "httpx", "redis", "asyncpg", "aiosqlite",
                     "markdown_it", "pygments", "textual.widgets._markdown", "wordfreq")

PROBE = """
import json, sys
import tui.cli, tui.app
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {top} or m in {full})))
"""


def test_the_command_and_the_app_import_nothing_heavy_before_the_first_frame():
    tops = {m for m in AFTER_FIRST_FRAME if "." not in m}
    full = {m for m in AFTER_FIRST_FRAME if "." in m}
    probe = PROBE.format(top=repr(tops), full=repr(full))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


BOOT = """
import asyncio, sys
from pathlib import Path
from tui.app import make_app
from tui.config import Settings

async def main():
    app = make_app(Settings(data_dir=Path(sys.argv[1])), remember_theme=False, manage_gc=False)
    async with app.run_test(size=(100, 30)):
        await asyncio.wait_for(app.ready.wait(), 60)
        print(app.boot_error, "tui.widgets.answer_markdown" in sys.modules)

asyncio.run(main())
"""


def test_the_boot_worker_makes_an_answer_s_widgets_ready_before_the_first_question(tmp_path):
    # After the first frame, the boot worker imports an answer's Markdown widgets with the
    # services, so the first answer does not pay for that import on the event loop.
    out = subprocess.run([sys.executable, "-c", BOOT, str(tmp_path / "data")],
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split()[-2:] == ["None", "True"]
