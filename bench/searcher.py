"""A timed searcher for the benchmarks that measure search while something else runs
(bench/import.py: an import; bench/team_load.py: fifty terminals and an import)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence


class Searcher(threading.Thread):
    """Searches one database with `queries` in turn until stopped (a pause of `pause`
    seconds after each), in a thread and event loop of its own, as a terminal's search does.
    Keeps `latencies`: (wall-clock time, ms) per search, and `errors`: one line each (a
    schema not there yet, a lock), counted, never fatal."""

    def __init__(self, url: str, queries: Sequence[str], pause: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.queries = list(queries)
        self.pause = pause
        self.latencies: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def ms(self, start: float = float("-inf"), end: float = float("inf")) -> list[float]:
        """The latencies of the searches started between `start` and `end` (time.time())."""
        return [ms for t, ms in self.latencies if start <= t <= end]

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        from tui.db.engine import Database
        from tui.services.search import SearchService

        db = Database(self.url)
        service = SearchService()
        i = 0
        try:
            while not self.stop.is_set():
                query = self.queries[i % len(self.queries)]
                i += 1
                started, t0 = time.time(), time.perf_counter()
                try:
                    await service.search(query, db=db)
                except Exception as exc:  # noqa: BLE001 - counted
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    await asyncio.sleep(0.05)
                    continue
                self.latencies.append((started, (time.perf_counter() - t0) * 1000))
                await asyncio.sleep(self.pause)
        finally:
            await db.dispose()
