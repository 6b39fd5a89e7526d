"""Section embeddings: the local model offline, vectors written at import and kept up to
date as sections change, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import numpy as np
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
