"""Scoring the semantic side's matrix: `Matrix.scores` against the way it was scored before
(float32 rows in 1,024-row BLAS calls up to 16 MB; above that, int8 rows converted to
float32 block by block for each query), interleaved query by query in one process.

    .venv/bin/python bench/vector_scoring.py [--sizes 10000,100000] [--queries 200] [--json]

Random unit vectors (256 dimensions), stored and loaded as the search loads them
(`vectors.load_matrix`). Prints min / p50 / p95 ms of each and the largest difference of
the new scores from the exact ones (float32 rows, float32 query).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.db import vectors  # noqa: E402

OLD_BLOCK_ROWS = 1024
OLD_F32_MAX_BYTES = 16 * 1024 * 1024


def old_scores(m: vectors.Matrix, f32: np.ndarray | None, q: np.ndarray) -> np.ndarray:
    """The scoring of the code before (main at dc3cf23)."""
    out = np.empty(len(m.ids), np.float32)
    if f32 is not None:
        for start in range(0, len(m.ids), OLD_BLOCK_ROWS):
            np.dot(f32[start : start + OLD_BLOCK_ROWS], q, out=out[start : start + OLD_BLOCK_ROWS])
        return out
    for start in range(0, len(m.ids), OLD_BLOCK_ROWS):
        block = m.q8[start : start + OLD_BLOCK_ROWS].astype(np.float32)
        np.dot(block, q, out=out[start : start + OLD_BLOCK_ROWS])
    out *= m.scale
    return out


def figures(times: list[float]) -> dict:
    times = sorted(times)
    return {"min_ms": round(times[0], 3), "p50_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 3)}


def bench(n: int, queries: int) -> dict:
    rng = np.random.default_rng(n)
    vecs = rng.standard_normal((n, vectors.DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [(i + 1, i % 40, vectors.to_blob(v), i // 4) for i, v in enumerate(vecs)]
    del vecs
    m = vectors.load_matrix(rows, "g", "bench", vectors.DIM)
    stored = vectors.from_blobs([r[2] for r in rows], vectors.DIM).astype(np.float32)
    del rows
    f32_old = stored if stored.nbytes <= OLD_F32_MAX_BYTES else None
    old, new, err = [], [], 0.0
    for i in range(queries + 5):
        noise = rng.standard_normal(vectors.DIM).astype(np.float32)
        q = stored[i * 7 % n] + noise / np.linalg.norm(noise)
        q /= np.linalg.norm(q)
        t0 = time.perf_counter()
        old_scores(m, f32_old, q)
        t1 = time.perf_counter()
        s = m.scores(q)
        t2 = time.perf_counter()
        if i >= 5:  # warm-up
            old.append((t1 - t0) * 1000)
            new.append((t2 - t1) * 1000)
        if i < 10:
            err = max(err, float(np.max(np.abs(s - stored @ q))))
    return {"sections": n, "old": figures(old), "new": figures(new),
            "new_path": "float32" if m.f32 is not None else "int8",
            "old_path": "float32" if f32_old is not None else "int8",
            "max_abs_error": round(err, 4), "matrix_mb": round(m.nbytes / 1e6, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [bench(int(s), args.queries) for s in args.sizes.split(",") if s.strip()]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        o, w = r["old"], r["new"]
        print(f"{r['sections']:>7} sections  old ({r['old_path']}) min/p50/p95 {o['min_ms']:.2f} / "
              f"{o['p50_ms']:.2f} / {o['p95_ms']:.2f} ms   new ({r['new_path']}) {w['min_ms']:.2f} / "
              f"{w['p50_ms']:.2f} / {w['p95_ms']:.2f} ms   max error {r['max_abs_error']}  "
              f"matrix {r['matrix_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
