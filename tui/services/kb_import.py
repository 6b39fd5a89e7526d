"""`chrysopedia import PATH...` without the terminal: files and folders in, a report out.

Each argument is discovered (`tui.materials.discover`), each group of files read
(`tui.materials.read`) and stored (`tui.db.materials_store.store_material`) in one
transaction of its own: one file all or nothing, a folder file by file. A group
whose files are recorded with the same size and mtime is skipped unread; one
with the same content hash is skipped unparsed. `chrysopedia.kb/1` documents go
through the KB importer as they always have (a document is refused whole).

`strict` reads every group (and validates every KB document) first and imports nothing
when any is refused;
`prune` removes the pages of recorded files under the given roots that are gone.
`should_stop()` is asked between files: what was imported stays, the rest is not
started. After a run that added or updated transcripts, the measured (statistical)
profiles of their creators are refreshed (`profiles=False`: the caller distills,
which does it). No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.db import materials_store as store
from tui.db.engine import Database
from tui.db.importer import ImportReport, check_paths, import_path, make_room_for_own_material
from tui.db.kb_format import KBFormatError
from tui.text import CONTROL_CHARS


@dataclass
class ImportRun:
    added: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)  # chrysopedia.kb/1 imports
    warnings: list[str] = field(default_factory=list)
    demo_removed: int = 0
    interrupted: bool = False
    strict_refused: bool = False
    files_total: int = 0
    sections: int = 0
    transcript_creators: set[str] = field(default_factory=set)  # of the pages added or updated
    measured_profiles: list[str] = field(default_factory=list)
    distill: Any = None  # a DistillReport when `import --distill` ran one

    @property
    def ok(self) -> bool:
        return not self.refused and not self.interrupted

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "refused": self.refused, "documents": self.documents,
            "warnings": self.warnings, "demo_removed": self.demo_removed,
            "interrupted": self.interrupted, "strict": self.strict_refused,
            "profiles": {"measured": self.measured_profiles},
            "distill": self.distill.as_dict() if self.distill is not None else None,
        }

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added", f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged", f"{len(self.removed)} removed",
            f"{len(self.refused)} refused",
        ]
        if self.documents:
            parts.append(f"{len(self.documents)} kb document{'s' if len(self.documents) != 1 else ''}")
        noun = "section" if self.sections == 1 else "sections"
        return f"import: {', '.join(parts)} ({self.sections} {noun} written)"


Progress = Callable[[int, int, int], None]  # files done, files in all, sections written


def display_path(root: Path, file: Path) -> str:
    """How a locator names a file: relative to the folder imported (starting with its name),
    or the file's own name when a file was named."""
    if root.is_dir():
        try:
            return (Path(root.resolve().name) / file.resolve().relative_to(root.resolve())).as_posix()
        except ValueError:
            pass
    return file.name


POOL_MIN_FILES = 16


def _ignore_sigint() -> None:
    # Ctrl+C is the importing process's to handle (between files); a reader is never cut short.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _reader_pool():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fork of a process with an event loop and SQLite threads is not safe
    return ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint
    )


def _read(group: Any, creator: str | None) -> Any:
    from tui.materials import read

    return read(group, creator=creator)


def control_problem(m: Any) -> str | None:
    """A control character or bidi override left in a material's text (the readers strip
    them; this is the store's own check, as the KB validator refuses them): the reason."""
    fields = [("title", m.title), ("summary", m.summary), ("creator", m.creator_name)]
    fields += [("tag", t) for t in m.tags]
    for sec in m.sections:
        fields += [("section heading", sec.heading), ("section text", sec.body)]
    for name, value in fields:
        bad = CONTROL_CHARS.search(value or "")
        if bad:
            return f"{name}: control character U+{ord(bad.group()):04X} (not imported)"
    return None


def _is_kb_document(path: Path) -> bool:
    return path.suffix == ".json" and not path.name.endswith(".info.json")


def legacy_kb_paths(paths: Sequence[str | Path]) -> bool:
    """Every argument a chrysopedia.kb/1 file or a folder of them only (the import as it
    always was: a folder's documents are merged and refused as one)."""
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if not _is_kb_document(path):
                return False
        elif path.is_dir():
            try:
                entries = list(path.iterdir())
            except OSError:
                return False
            if not entries or not all(e.is_file() and _is_kb_document(e) for e in entries):
                return False
        else:
            return False
    return bool(paths)


async def import_paths(
    db: Database,
    paths: Sequence[str | Path],
    *,
    creator: str | None = None,
    strict: bool = False,
    prune: bool = False,
    keep_demo: bool = False,
    profiles: bool = True,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ImportRun:
    from tui.materials import content_hash as hash_files
    from tui.materials import discover, read
    from tui.materials.model import Refusal

    run = ImportRun()
    roots = [Path(p) for p in paths]
    # Discovery looks at names and first bytes only: the whole list is cheap to hold.
    work: list[tuple[Path, Any]] = []
    for root in roots:
        if not root.exists() and not root.is_symlink():
            run.refused.append({"path": str(root), "reason": "no such file or folder"})
            continue
        if root.is_file() and _is_kb_document(root):
            work.append((root, root))
            continue
        for item in discover([root]):
            if isinstance(item, Refusal):
                run.refused.append({"path": str(item.path), "reason": item.reason})
            else:
                work.append((root, item))
    run.files_total = len(work)

    if strict:
        documents = [item if isinstance(item, Path) else item.main for _root, item in work
                     if isinstance(item, Path) or item.kind == "kb"]
        # KB documents validated as they would be imported, one after another, writing nothing
        for doc, problems in (await check_paths(db, documents)).items():
            run.refused.append({"path": str(doc), "reason": "; ".join(problems)})
        for _root, item in work:
            if should_stop():
                run.interrupted = True
                return run
            if isinstance(item, Path) or item.kind == "kb":
                continue
            result = read(item, creator=creator)
            if isinstance(result, Refusal):
                run.refused.append({"path": str(result.path), "reason": result.reason})
            elif problem := control_problem(result):
                run.refused.append({"path": str(item.main), "reason": problem})
        if run.refused:
            run.strict_refused = True
            return run

    seen: set[str] = set()
    own_added = False

    async def prepare(root: Path, item: Any) -> tuple[str, Any]:
        """Everything about one group short of writing it: unchanged, refused, or its Material.
        Hashing and parsing run in a thread, so the next file is read while this one is
        written (SQLite works outside the GIL)."""
        if isinstance(item, Path) or item.kind == "kb":
            return "kb", item if isinstance(item, Path) else item.main
        try:
            stats = store.stat_files(item.files)
        except OSError as exc:
            return "refused", {"path": str(item.main), "reason": f"cannot read: {exc.strerror or exc}"}
        seen.update(st.path for st in stats)
        records = await store.records_for(db, [st.path for st in stats])
        if store.unchanged(stats, records):
            return "unchanged", None
        try:
            digest = await asyncio.to_thread(hash_files, list(item.files))
        except OSError as exc:
            return "refused", {"path": str(item.main), "reason": f"cannot read: {exc.strerror or exc}"}
        if store.same_hash(stats, records, digest):
            await store.touch_records(db, stats)
            return "unchanged", None
        result = None
        if pool is not None and not pool_broken:
            try:
                result = await asyncio.get_running_loop().run_in_executor(pool, _read, item, creator)
            except BrokenProcessPool:
                # A worker that cannot start (a caller's script without a __main__ guard,
                # under spawn) or died: the rest is read in a thread.
                pool_broken.append(True)
        if result is None:
            result = await asyncio.to_thread(read, item, creator=creator)
        if isinstance(result, Refusal):
            return "refused", {"path": str(result.path), "reason": result.reason}
        problem = control_problem(result)
        if problem:
            return "refused", {"path": str(item.main), "reason": problem}
        return "material", (result, stats)

    # Parsing is pure Python: with many files it runs in a worker process, on the other
    # core, while this process writes (SQLAlchemy and SQLite); a few files read in a thread.
    pool = _reader_pool() if len(work) >= POOL_MIN_FILES else None
    pool_broken: list[bool] = []
    next_task: asyncio.Task | None = None
    try:
        for done, (root, item) in enumerate(work, start=1):
            if should_stop():
                run.interrupted = True
                break
            task = next_task or asyncio.ensure_future(prepare(root, item))
            outcome, payload = await task
            next_task = None
            if done < len(work) and outcome != "kb":
                next_task = asyncio.ensure_future(prepare(*work[done]))
            if outcome == "kb":
                doc = payload
                seen.add(str(Path(os.path.abspath(doc))))
                try:
                    report: ImportReport = await import_path(db, doc)
                except KBFormatError as exc:
                    run.refused.append({"path": str(doc), "reason": "; ".join(exc.problems)})
                else:
                    run.documents.append({"path": str(doc), **report.as_dict()})
                    run.warnings.extend(f"{doc}: {w}" for w in report.warnings)
                    own_added = own_added or report.changed
            elif outcome == "refused":
                run.refused.append(payload)
            elif outcome == "unchanged":
                run.unchanged.append(str(item.main))
            else:
                material, stats = payload
                stored = await store.store_material(
                    db, material, stats, display_path=display_path(root, material.source)
                )
                entry = {"path": str(item.main), "page": stored.page_slug, "sections": stored.sections}
                (run.added if stored.outcome == "added" else run.updated).append(entry)
                run.warnings.extend(_warning(item, w) for w in material.warnings)
                run.sections += stored.sections
                if material.kind in ("video", "subtitles"):  # a note naming a video is no transcript
                    run.transcript_creators.add(stored.creator_slug)
                own_added = True
            if on_progress is not None:
                on_progress(done, run.files_total, run.sections)
    finally:
        if next_task is not None:  # stopped: the file read ahead is not written
            next_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await next_task
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    if run.refused:
        # A file refused now that an earlier run imported (re-saved broken, encrypted, cut
        # short): its pages stay as they were, and the report says so.
        earlier = await store.records_for(
            db, sorted({os.path.abspath(r["path"]) for r in run.refused}))
        for refused in run.refused:
            if os.path.abspath(refused["path"]) in earlier:
                refused["reason"] += "; what an earlier import read from it stays"
    if prune and not run.interrupted:
        removed = await store.prune(db, roots, seen)
        run.removed.extend({"page": slug} for slug in removed.pages)
    if own_added and not keep_demo:
        # The user's own material is in: the demo pages would only crowd it out (unless
        # the user asked for them with `import --demo`).
        run.demo_removed = len(await make_room_for_own_material(db))
    if profiles and run.transcript_creators:
        # Once per run, not per file: each profile is measured against every other creator.
        from tui.db.distill_store import refresh_measured_profiles

        run.measured_profiles = await refresh_measured_profiles(db, sorted(run.transcript_creators))
    return run


def _warning(item: Any, warning: str) -> str:
    """`FILE: what` — the file the warning is about: an info.json's own path for what its
    fields said ("info.json tags: ..." was shown after the subtitles' name)."""
    if warning.startswith("info.json "):
        info = next((p for p in item.files if p.name.endswith(".info.json")), None)
        if info is not None:
            return f"{info}: {warning[len('info.json '):]}"
    return f"{item.main}: {warning}"
