"""Section embeddings: the local model offline, vectors written at import and kept up to
date as sections change, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sqlalchemy import text

from tui.db import vectors
from tui.db.importer import ensure_vectors, import_path
from tui.services.search import SearchService


def test_the_local_model_loads_with_downloads_impossible(tmp_path):
    """No network at all (every connect refused), an empty home and cache: the weights and
    the tokenizer come from the installed wheel."""
    probe = textwrap.dedent("""
        import socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network disabled by the test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from tui.db.vectors import LocalEmbedder
        e = LocalEmbedder()
        v = e.embed(["sidechain the pads to the kick", "ducking pads under the kick drum",
                     "how to bake sourdough bread"])
        print(v.shape[0], v.shape[1], round(float(v[0] @ v[1]), 3), round(float(v[0] @ v[2]), 3))
    """)
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n, dim, near, far = out.stdout.split()
    assert (int(n), int(dim)) == (3, vectors.DIM)
    assert float(near) > float(far) + 0.2  # the vectors carry meaning


async def _vector_rows(db) -> dict[int, tuple[str, str, int, bytes]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT section_id, model, content_hash, dim, vector FROM section_vectors"))).all()
    return {int(r[0]): (r[1], r[2], int(r[3]), bytes(r[4])) for r in rows}


async def _section_ids(db) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT anchor, id FROM sections"))).all()
    return {r[0]: int(r[1]) for r in rows}


async def _generation(db) -> str | None:
    async with db.engine.connect() as conn:
        return (await conn.execute(text("SELECT value FROM chrysopedia_meta WHERE key = :k"),
                                   {"k": vectors.META_GENERATION})).scalar_one_or_none()


async def test_every_section_gets_a_vector_at_import_and_changes_keep_them_current(
    db, mini_kb_path, tmp_path
):
    await import_path(db, mini_kb_path)
    ids = await _section_ids(db)
    rows = await _vector_rows(db)
    assert set(rows) == set(ids.values())
    for model, digest, dim, blob in rows.values():
        assert model == vectors.LOCAL_MODEL and dim == vectors.DIM and len(blob) == 2 * dim
        vec = np.frombuffer(blob, dtype="<f2").astype(np.float32)
        assert abs(float(np.linalg.norm(vec)) - 1.0) < 0.01 and len(digest) == 32
    first_generation = await _generation(db)

    # Re-importing the same document changes no vector.
    await import_path(db, mini_kb_path)
    assert await _vector_rows(db) == rows

    # One section's text changes, another section goes away.
    kb = json.loads(mini_kb_path.read_text())
    changed = copy.deepcopy(kb)
    page = changed["techniques"][0]
    page["sections"][0]["body"] = "Granular clouds of tiny grains, smeared into a shimmering pad."
    dropped = page["sections"].pop(1)["anchor"]
    path = tmp_path / "kb2.json"
    path.write_text(json.dumps(changed))
    await import_path(db, path)
    after = await _vector_rows(db)
    edited = ids[page["sections"][0]["anchor"]]
    assert after[edited][1] != rows[edited][1] and after[edited][3] != rows[edited][3]
    assert ids[dropped] not in after
    assert {k: v for k, v in after.items() if k != edited} == {
        k: v for k, v in rows.items() if k not in (edited, ids[dropped])}
    assert await _generation(db) != first_generation

    # The search's in-process matrix follows the new generation.
    await SearchService(None).search("shimmering granular cloud pad", db=db)
    generation = await _generation(db)
    [matrix] = [m for m in vectors._matrices.values() if m.generation == generation]
    assert set(matrix.ids.tolist()) == set(after)
    stored = np.frombuffer(after[edited][3], dtype="<f2").astype(np.float32)
    assert matrix.similarity(stored, [edited])[edited] > 0.99


async def test_sections_without_vectors_are_filled_once(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM section_vectors"))
    assert await ensure_vectors(db) == len(await _section_ids(db))
    assert await ensure_vectors(db) == 0
    assert set(await _vector_rows(db)) == set((await _section_ids(db)).values())


def test_the_matrix_is_int8_and_scores_like_the_float_vectors():
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((300, vectors.DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [(i + 1, i % 3, vectors.to_blob(v)) for i, v in enumerate(vecs)]
    m = vectors.load_matrix(rows, "g", "model", vectors.DIM)
    assert m.q8.dtype == np.int8 and m.q8.shape == (300, vectors.DIM)
    q = vecs[7]
    exact = vecs @ q
    assert np.max(np.abs(m.scores(q) - exact)) < 0.02
    top = m.top(q, 5)
    assert top[0][0] == 8 and abs(top[0][1] - 1.0) < 0.02
    scoped = m.top(q, 5, creator_id=2)
    assert all((sid - 1) % 3 == 2 for sid, _ in scoped)


def test_a_large_matrix_is_scored_from_its_int8_rows_alone():
    """Above F32_MAX_BYTES no float32 copy is kept: the query is quantised too and the
    int8 rows are multiplied as they are; the scores stay within the rounding of both."""
    rng = np.random.default_rng(2)
    n = vectors.F32_MAX_BYTES // (4 * vectors.DIM) + 1
    vecs = rng.standard_normal((n, vectors.DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [(i + 1, i % 5, vectors.to_blob(v), i // 4) for i, v in enumerate(vecs)]
    m = vectors.load_matrix(rows, "g", "model", vectors.DIM)
    assert m.f32 is None and m.nbytes < vecs.nbytes / 3
    stored = vectors.from_blobs([r[2] for r in rows], vectors.DIM).astype(np.float32)
    for seed in range(3):
        noise = rng.standard_normal(vectors.DIM).astype(np.float32)
        q = stored[seed * 1000] + noise / np.linalg.norm(noise)
        q /= np.linalg.norm(q)
        exact = stored @ q
        scores = m.scores(q)
        assert scores.dtype == np.float32 and np.max(np.abs(scores - exact)) < 0.006
        top = m.top(q, 10)
        assert top[0][0] == seed * 1000 + 1
        # the ten found are the exact ten, but for near-ties within the rounding
        tenth = np.sort(exact)[-10]
        assert all(exact[sid - 1] >= tenth - 0.006 for sid, _ in top)
        scoped = m.top(q, 10, creator_id=3)
        assert len(scoped) == 10 and all((sid - 1) % 5 == 3 for sid, _ in scoped)


# ---------------------------------------------------------------- an embedding server


@pytest.fixture
def remote_settings(settings, fake_llm):
    remote = settings.with_overrides(embed_model="fake-embed", embed_url=fake_llm.url)
    yield remote
    vectors.configure(settings)  # the process goes back to the local model


async def _active(db) -> str:
    async with db.engine.connect() as conn:
        return await vectors.active_model(conn)


async def test_switching_to_an_embedding_server(db, mini_kb_path, remote_settings, fake_llm):
    await import_path(db, mini_kb_path)
    local_rows = await _vector_rows(db)
    vectors.configure(remote_settings)
    n_sections = len(await _section_ids(db))
    assert await ensure_vectors(db) == n_sections
    assert await _active(db) == "fake-embed"
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT model, dim, count(*) FROM section_vectors GROUP BY model, dim"))).all()
    assert sorted(tuple(r) for r in rows) == sorted(
        [("fake-embed", 64, n_sections), (vectors.LOCAL_MODEL, vectors.DIM, len(local_rows))])
    inputs = [t for r in fake_llm.embedding_requests for t in r.body["input"]]
    assert len(inputs) == n_sections and all(r.body["model"] == "fake-embed"
                                             for r in fake_llm.embedding_requests)
    # Batched, and cached by (text, model): nothing is asked again.
    assert await ensure_vectors(db) == 0

    # The question is embedded by the same server, and the search uses its vectors.
    fake_llm.reset()
    result = await SearchService(remote_settings).search("parallel compression blend", db=db)
    assert result["items"] and result["evidence"]["similarity"] is not None
    assert [r.body["input"] for r in fake_llm.embedding_requests] == [
        ["parallel compression blend"]]

    # Back to the local model: its vectors are still there, nothing is embedded.
    vectors.configure(remote_settings.with_overrides(embed_model=None))
    assert await ensure_vectors(db) == 0 and await _active(db) == vectors.LOCAL_MODEL


async def test_a_server_failing_half_way_leaves_the_previous_vectors_in_use(
    db, mini_kb_path, remote_settings, fake_llm, monkeypatch
):
    await import_path(db, mini_kb_path)
    before = await _vector_rows(db)
    generation = await _generation(db)
    monkeypatch.setattr(vectors, "REMOTE_BATCH", 2)  # several requests; the second fails
    fake_llm.set_embeddings(fail_after=1)
    vectors.configure(remote_settings)
    with pytest.raises(vectors.EmbedError, match="HTTP 500"):
        await ensure_vectors(db)
    assert len(fake_llm.embedding_requests) == 2
    assert await _active(db) == vectors.LOCAL_MODEL
    assert await _vector_rows(db) == before and await _generation(db) == generation
    # The search keeps using the local vectors, and asks the server nothing.
    fake_llm.reset()
    result = await SearchService(None).search("parallel compression blend", db=db)
    assert result["items"] and result["evidence"]["similarity"] is not None
    assert fake_llm.embedding_requests == []

    fake_llm.set_embeddings(fail_after=None)
    assert await ensure_vectors(db) == len(before)
    assert await _active(db) == "fake-embed"


def test_the_cli_says_in_one_line_that_the_previous_vectors_stay(tmp_path, fake_llm, capsys):
    from tui.cli import main

    db_url = f"sqlite:///{tmp_path / 'kb.db'}"
    # a database named with --db holds only what is imported into it (no demo pages)
    assert main(["--db", db_url, "import", "--demo"]) == 0
    assert main(["--db", db_url, "search", "sidechain"]) == 0
    capsys.readouterr()
    fake_llm.set_embeddings(fail_after=0)
    import os

    env = {"CHRYSOPEDIA_EMBED_MODEL": "fake-embed", "CHRYSOPEDIA_EMBED_URL": fake_llm.url}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["--db", db_url, "search", "sidechain"]) == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        vectors.configure(None)
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"chrysopedia: embeddings not updated, previous ones in use: embedding server "
        f"{fake_llm.url}/embeddings: HTTP 500")
    assert "sections (tier:" in captured.out or "section (tier:" in captured.out


async def test_imported_material_gets_its_vectors_in_the_import(db, tmp_path):
    from tui.services.kb_import import import_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "reverb.md").write_text(
        "# Reverb\n\n## Pre-delay\nA pre-delay of 20 to 40 ms keeps the vocal upfront.\n\n"
        "## Decay\nShort plates for fast songs, long halls for ballads.\n", encoding="utf-8")
    run = await import_paths(db, [notes])
    assert len(run.added) == 1 and run.sections == 2
    ids = await _section_ids(db)
    rows = await _vector_rows(db)
    assert ids and set(ids.values()) <= set(rows)  # every section has its vector already


async def test_a_changed_vector_text_re_embeds_imported_sections_once(db, tmp_path):
    """An imported section's vector reads IMPORTED_BODY_WORDS of its body (more than a
    written page's): a database whose imported vectors were made with the older text has
    them embedded again at the next open, once; the written pages' vectors stay."""
    from tui.db.engine import set_meta
    from tui.db.importer import bundled_kb_path
    from tui.services.kb_import import import_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    words = " ".join(f"word{i}" for i in range(300))
    (notes / "long.md").write_text(f"# Long\n\n## Talk\n{words}\n", encoding="utf-8")
    await import_path(db, bundled_kb_path())
    run = await import_paths(db, [notes])
    assert len(run.added) == 1
    async with db.engine.begin() as conn:
        imported = [r[0] for r in (await conn.execute(
            text("SELECT id FROM sections WHERE locator IS NOT NULL"))).all()]
        body, heading, title = (await conn.execute(text(
            "SELECT s.body, s.heading, p.title FROM sections s JOIN technique_pages p "
            "ON p.id = s.page_id WHERE s.id = :i"), {"i": imported[0]})).one()
        # as the vector text was before: the first BODY_WORDS words of the body
        old = vectors.section_text(title, heading, None, None, body)
        assert old != vectors.section_text(title, heading, None, None, body, imported=True)
        await conn.execute(text("UPDATE section_vectors SET content_hash = :h WHERE section_id = :i"),
                           {"h": vectors.content_hash(old), "i": imported[0]})
        await set_meta(conn, "vector_text", "1")
    before = await _vector_rows(db)
    assert await ensure_vectors(db) == 1  # the imported section, not the bundled pages
    assert await ensure_vectors(db) == 0
    after = await _vector_rows(db)
    assert after[imported[0]][1] != before[imported[0]][1] == vectors.content_hash(old)
    assert {k: v for k, v in after.items() if k != imported[0]} == \
        {k: v for k, v in before.items() if k != imported[0]}
