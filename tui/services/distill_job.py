"""One distill run over the knowledge base: what `chrysopedia distill` (and, later, the app) runs.

`run_distill(db, settings, creator=, page=, pages=, concurrency=, on_progress=, report=)`
(`pages`: raw page slugs, what `import --distill` added or updated):
* with no model configured: measured profiles for the creators concerned, pages left
  as they are;
* with a model: every imported transcript page whose distilled page is missing or
  was made from another transcript is distilled (`Distiller`), each accepted page
  stored as soon as its call returns (one transaction each: a run stopped halfway
  keeps what it finished and starts where it stopped, cached answers costing
  nothing), then each creator's measured profile refreshed and a model profile
  written over it.
`report` (a `DistillReport`) is filled as the run goes, so a caller that cancels
the run still has what was done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui.config import Settings
from tui.services.distill import DistillCache, Distiller, Outcome, Progress


@dataclass
class DistillReport:
    model: str | None = None
    pages_total: int = 0
    distilled: list[str] = field(default_factory=list)  # distilled page slugs
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {page, reasons}: kept raw
    failed: list[dict[str, Any]] = field(default_factory=list)  # {page, reasons}: no model answered
    unchanged: list[str] = field(default_factory=list)  # already distilled from this transcript
    cached: int = 0
    tokens: int = 0
    measured_profiles: list[str] = field(default_factory=list)
    distilled_profiles: list[str] = field(default_factory=list)
    profile_problems: list[str] = field(default_factory=list)
    # {raw page slug: each section's claim check}: distilled and rejected pages alike
    checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not (self.rejected or self.failed or self.interrupted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "pages": self.pages_total, "distilled": self.distilled,
            "rejected": self.rejected, "failed": self.failed, "unchanged": self.unchanged,
            "cached": self.cached, "tokens": self.tokens,
            "profiles": {"measured": self.measured_profiles, "distilled": self.distilled_profiles,
                         "problems": self.profile_problems},
            "checks": self.checks,
            "interrupted": self.interrupted,
        }


def cache_for(settings: Settings) -> DistillCache:
    return DistillCache(settings.data_dir / "distill-cache")


async def run_distill(
    db,
    settings: Settings,
    *,
    creator: str | None = None,
    page: str | None = None,
    pages: list[str] | None = None,
    concurrency: int = 4,
    on_progress: Callable[[Progress], None] | None = None,
    report: DistillReport | None = None,
    router: Any = None,
) -> DistillReport:
    from tui.db.distill_store import (
        load_transcripts,
        reconcile_index,
        refresh_measured_profiles,
        store_distilled,
        store_profiles,
    )

    report = report if report is not None else DistillReport()
    await reconcile_index(db)
    raws = await load_transcripts(db, creator=creator, page=page, pages=pages)
    if page and not raws:
        raise LookupError(f"no imported transcript page {page!r}")
    if creator and not raws:
        raise LookupError(f"creator {creator!r} has no imported transcripts")
    creators = sorted({r.transcript.creator_slug for r in raws})
    report.pages_total = len(raws)

    distiller = None
    if settings.model_configured or router is not None:
        distiller = Distiller(settings, cache=cache_for(settings), db=db, router=router,
                              concurrency=concurrency)
    try:
        if distiller is not None:
            report.model = distiller.model
            todo = [r for r in raws if not r.up_to_date]
            report.unchanged = [r.distilled_slug or r.slug for r in raws if r.up_to_date]
            by_key = {r.slug: r for r in todo}

            async def done(outcome: Outcome, progress: Progress) -> None:
                raw = by_key[outcome.key]
                report.tokens += outcome.tokens
                report.cached += outcome.cached
                if outcome.checks:
                    report.checks[raw.slug] = outcome.checks
                if outcome.status == "distilled" and outcome.page is not None:
                    report.distilled.append(
                        await store_distilled(db, raw, outcome.page, outcome.model or distiller.model))
                elif outcome.status == "rejected":
                    report.rejected.append({"page": raw.slug, "reasons": outcome.reasons})
                else:
                    report.failed.append({"page": raw.slug, "reasons": outcome.reasons})
                if on_progress is not None:
                    on_progress(progress)

            await distiller.distill_pages([r.transcript for r in todo], on_done=done)

        report.measured_profiles = await refresh_measured_profiles(db, creators)
        if distiller is not None:
            from sqlalchemy import select

            from tui.db.models import Creator

            for slug in creators:
                transcripts = [r.section_sentences for r in raws if r.transcript.creator_slug == slug]
                async with db.session() as session:
                    row = (await session.execute(select(Creator.name, Creator.personality_profile)
                                                 .where(Creator.slug == slug))).first()
                if row is None:
                    continue
                profile, problems = await distiller.distill_profile(slug, row.name, transcripts, row.personality_profile)
                report.profile_problems += [f"{slug}: {p}" for p in problems]
                if profile is not None and await store_profiles(db, {slug: profile}):
                    report.distilled_profiles.append(slug)
    finally:
        if distiller is not None:
            await distiller.aclose()
    return report
