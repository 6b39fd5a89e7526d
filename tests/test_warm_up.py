"""ChatService.warm_up: the search's embedding model and the answerability gate's English word
list (wordfreq) are loaded once the app is up, not by
the first question (which waited seconds for it on a loaded machine: bench/team_load.py).
Each case runs in a fresh interpreter: the model, once loaded, stays for the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from tui.config import Settings
from tui.db import vectors
from tui.db.engine import Database
from tui.db.importer import ensure_bundled_kb
from tui.services import search
from tui.services.chat import ChatService

async def main(semantic):
    search.set_semantic(semantic)
    db = Database("sqlite+aiosqlite:///" + sys.argv[2])
    await db.init()
    await ensure_bundled_kb(db)
    vectors._local = None  # as in a terminal that starts on a database already filled
    chat = ChatService(Settings(data_dir=Path(sys.argv[3])), db, history=None)
    before = vectors._local is not None, "wordfreq" in sys.modules
    await chat.warm_up()
    after = vectors._local is not None, "wordfreq" in sys.modules
    t0 = time.perf_counter()
    await chat.search.search("parallel compression on drums", db=db)
    first_search = time.perf_counter() - t0
    await db.dispose()
    print(*before, *after, first_search)

asyncio.run(main(sys.argv[1] == "on"))
"""


def _run(tmp_path, semantic: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, semantic, str(tmp_path / "kb.db"), str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_warm_up_loads_the_search_embedding_model_and_the_gate_s_word_list(tmp_path):
    model_before, words_before, model_after, words_after, _ = _run(tmp_path, "on")
    assert (model_before, words_before) == ("False", "False")
    assert (model_after, words_after) == ("True", "True")


def test_warm_up_loads_only_the_word_list_when_search_is_lexical_only(tmp_path):
    # lexical-only search needs no embedding model; its gate weighs the word list too
    assert _run(tmp_path, "off")[:4] == ["False", "False", "False", "True"]
