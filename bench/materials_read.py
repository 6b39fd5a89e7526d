"""Reader benchmark: discover and read N generated yt-dlp downloads (no database).

    .venv/bin/python bench/materials_read.py [--files 1000] [--folder DIR] [--json]

Writes N 20-minute videos with `bench/ytdlp_material.py` (into a temporary folder
unless --folder names one that already holds them), then times `discover()` and
`read()` over all of them in one process, keeping no Material (as an importer that
stores each and lets it go). Reports videos per second, milliseconds per video
(wall and CPU), peak RSS, and RSS after the first 100 and after all.

On a shared machine the wall time says little; `ratio_to_baseline` does: each
video is also put through a floor of the same work, timed in the same loop (read
both files' bytes, `json.loads` the info.json, split the subtitles into lines), and
the ratio is the readers' CPU time over the floor's.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ytdlp_material  # noqa: E402

from tui.materials import Material, Refusal, discover, read  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def floor(files: tuple[Path, ...]) -> None:
    """What any reader must do with a download: read it, parse the JSON, split the lines."""
    subs, info = files
    subs.read_bytes().decode("utf-8").split("\n")
    json.loads(info.read_bytes())


def run(folder: Path, files: int) -> dict:
    if not any(folder.glob("*.info.json")):
        started = time.perf_counter()
        ytdlp_material.generate(folder, files)
        print(f"generated {files} videos in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    count = refused = sections = words = 0
    rss_100 = None
    cpu = cpu_floor = wall_floor = 0.0
    started = time.perf_counter()
    for group in discover([folder]):
        if isinstance(group, Refusal):
            refused += 1
            continue
        w0, t0 = time.perf_counter(), time.process_time()
        floor(group.files)
        t1 = time.process_time()
        wall_floor += time.perf_counter() - w0
        m = read(group)
        cpu += time.process_time() - t1
        cpu_floor += t1 - t0
        if isinstance(m, Material):
            count += 1
            sections += len(m.sections)
            words += sum(len(s.text.split()) for s in m.sentences)
        else:
            refused += 1
        if count == 100:
            rss_100 = rss_mb()
    seconds = time.perf_counter() - started - wall_floor  # discovery and readers
    return {
        "files": count, "refused": refused, "sections": sections, "words": words,
        "seconds": round(seconds, 2), "files_per_s": round(count / seconds, 1),
        "ms_per_file": round(1000 * seconds / max(count, 1), 2),
        "cpu_ms_per_file": round(1000 * cpu / max(count, 1), 2),
        "floor_cpu_ms_per_file": round(1000 * cpu_floor / max(count, 1), 2),
        "ratio_to_baseline": round(cpu / max(cpu_floor, 1e-9), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_100_mb": round(rss_100 or 0.0, 1), "rss_end_mb": round(rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
        result = run(args.folder, args.files)
    else:
        with tempfile.TemporaryDirectory(prefix="chrysopedia-read-") as tmp:
            result = run(Path(tmp), args.files)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
