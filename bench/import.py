"""Import benchmark: N yt-dlp downloads through `chrysopedia import`, with a searcher running.

    .venv/bin/python bench/import.py [--files 1000] [--json] [--keep DIR]

Generates N realistic yt-dlp downloads (bench/ytdlp_material.py: rolling auto-captions
for 20-minute videos, ~3,500 words each, info.json beside them, half with chapters),
then runs `chrysopedia --db sqlite:///... import FOLDER --json` as a user does, in a
child process, and meanwhile:

- samples the RSS of the child and its reader process, summed (/proc/PID/status:
  VmRSS, and VmHWM for the peak), and the
  number of pages written (a WAL reader on the same file), to read the RSS when 100
  and when N files are in;
- searches the same SQLite file from this process (a thread with its own event loop
  and `SearchService`), one query after another, and keeps every latency.

Before the import, the same searcher runs against the database alone, filled with the
first 100 files: the baseline its p95 during the import is compared with (the same
process, the same queries). Then the import is run again over the unchanged folder
(`reimport_s`). Generation time is not counted.

JSON keys: files, seconds, files_per_s, peak_rss_mb, rss_100_mb, rss_1000_mb (RSS when
N files are in, whatever N), reimport_s, search_p95_during_import_ms, plus
search_p95_idle_ms, searches_during_import, sections, import_cpu_s (the import's own
CPU time: on a shared machine the wall time depends on the load, also reported),
profiles_measured and profiles_s (the measured-profile refresh an import ends with,
timed again alone afterwards). Results go in
docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from searcher import Searcher  # noqa: E402
from ytdlp_material import generate  # noqa: E402

QUERIES = [
    "parallel compression drums", "supersaw unison detune", "sidechain kick bass",
    "chopping soul samples", "filter envelope", "gain staging", "reverb send vocal",
    "time stretch artifacts", "wavetable oscillator", "low mids mud", "drum break swing",
    "resampling textures", "fm bass", "de-esser vocal", "mix bus glue",
]


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _tree(pid: int) -> list[int]:
    """The process and its children (the import's reader process)."""
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        pass
    return out


def _tree_kb(pid: int, key: str) -> int | None:
    values = [_status_kb(p, key) for p in _tree(pid)]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def _pages(db_file: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM technique_pages").fetchone()[0]
    except sqlite3.Error:
        return 0


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20)[18]


def chrysopedia(db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui", "--db", db_url, *args]


def run(n: int, work: Path) -> dict:
    material = work / "downloads"
    if not material.exists():
        generate(material, n)
    db_file = work / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{db_file}"
    env = {**os.environ, "CHRYSOPEDIA_LLM_API_URL": ""}

    # Baseline: the searcher alone, on the first 100 files imported.
    first = work / "first100"
    if first.exists():
        shutil.rmtree(first)
    first.mkdir()
    files = sorted(material.iterdir())
    for f in files[: min(n, 100) * 2]:
        os.link(f, first / f.name)
    subprocess.run(chrysopedia(url, "import", str(first), "--json"), check=True,
                   capture_output=True, env=env, cwd=ROOT)
    idle = Searcher(url, QUERIES, pause=0.01)
    idle.start()
    time.sleep(5)
    idle.stop.set()
    idle.join()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    subprocess.run(chrysopedia(url, "stats"), check=True, capture_output=True, env=env, cwd=ROOT)

    searcher = Searcher(url, QUERIES, pause=0.01)
    searcher.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # The report goes to a file: a pipe nobody reads while polling would fill and stall it.
    report_file = work / "report.json"
    err_file = work / "import.err"
    with open(report_file, "w") as out_f, open(err_file, "w") as err_f:
        proc = subprocess.Popen(chrysopedia(url, "import", str(material), "--json"),
                                stdout=out_f, stderr=err_f, text=True, env=env, cwd=ROOT)
    peak_kb = 0
    rss_100 = rss_n = None
    while proc.poll() is None:
        rss = _tree_kb(proc.pid, "VmRSS")
        peak_kb = max(peak_kb, _tree_kb(proc.pid, "VmHWM") or 0)
        pages = _pages(db_file)
        if rss is not None:
            if rss_100 is None and pages >= min(100, n):
                rss_100 = rss
            if rss_n is None and pages >= n:  # the moment the last page is in, not the exit
                rss_n = rss
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    proc.wait()
    out, err = report_file.read_text(), err_file.read_text()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    searcher.stop.set()
    searcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {err[-2000:]}")
    report = json.loads(out)
    t1 = time.perf_counter()
    again = subprocess.run(chrysopedia(url, "import", str(material), "--json"), capture_output=True,
                           text=True, env=env, cwd=ROOT)
    reimport_s = time.perf_counter() - t1
    unchanged = len(json.loads(again.stdout)["unchanged"])
    profiles_s = _time_profiles(url)
    return {
        "files": n,
        "seconds": round(seconds, 2),
        "files_per_s": round(n / seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rss_100_mb": round((rss_100 or 0) / 1024, 1),
        "rss_1000_mb": round((rss_n or 0) / 1024, 1),
        "reimport_s": round(reimport_s, 2),
        "reimported_unchanged": unchanged,
        "search_p95_during_import_ms": round(p95(searcher.ms()), 2),
        "import_cpu_s": round(cpu_s, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "search_p95_idle_ms": round(p95(idle.ms()), 2),
        "searches_during_import": len(searcher.latencies),
        "search_errors": len(searcher.errors),
        "sections": sum(a["sections"] for a in report["added"]),
        "added": len(report["added"]),
        "refused": len(report["refused"]),
        "profiles_measured": len((report.get("profiles") or {}).get("measured", [])),
        "profiles_s": profiles_s,
    }


def _time_profiles(url: str) -> float:
    """The measured-profile refresh the import ends with, timed alone (in this process,
    over the imported database): its share of `seconds`."""
    from tui.db.distill_store import refresh_measured_profiles
    from tui.db.engine import Database

    async def go() -> float:
        db = Database(url)
        await db.init()
        try:
            t0 = time.perf_counter()
            await refresh_measured_profiles(db)
            return time.perf_counter() - t0
        finally:
            await db.dispose()

    return round(asyncio.run(go()), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="yt-dlp downloads to import")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (reused when there)")
    args = parser.parse_args()
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args.files, work)
    else:
        with tempfile.TemporaryDirectory(prefix="chrysopedia-import-bench-") as tmp:
            result = run(args.files, Path(tmp))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<30} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
