"""`chrysopedia doctor`: check every configured part and say what to fix.

Rows: config, database (schema version, integrity, knowledge base), Redis
(reachable, latency), and each model endpoint (reachable, model listed, a
one-token completion). Exit status 0 only when every configured part works.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

OK, FAIL, SKIP = "ok", "FAIL", "skip"


@dataclass
class Check:
    part: str
    status: str
    detail: str
    fix: str = ""


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check config, database, Redis and model endpoints")
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per network check (default 5)")
    p.set_defaults(handler=cmd_doctor)


async def _check_database(settings) -> list[Check]:
    from sqlalchemy import text

    from tui.commands._common import open_database
    from tui.commands.kb import gather_stats
    from tui.config import redact_url
    from tui.db.engine import get_meta
    from tui.services import diagnose

    where = redact_url(settings.database_url)
    try:
        db = await open_database(settings)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row
        # The same words the other commands print (tui.services.diagnose).
        found = getattr(exc, "diagnosis", None) or diagnose.database_diagnosis(exc, settings)
        return [Check("database", FAIL, _row(found), found.fix)]
    checks = []
    try:
        async with db.engine.connect() as conn:
            version = await get_meta(conn, "schema_version")
            if db.dialect == "sqlite":
                integrity = (await conn.execute(text("PRAGMA integrity_check"))).scalar()
            else:
                integrity = "ok" if (await conn.execute(text("SELECT 1"))).scalar() == 1 else "?"
        status = OK if integrity == "ok" else FAIL
        checks.append(Check("database", status,
                            f"{db.dialect} {where}, schema v{version}, integrity {integrity}",
                            "" if status == OK else "restore from a backup or re-import the KB"))
        stats = await gather_stats(db)
        kb_ok = stats["sections"] > 0
        checks.append(Check(
            "knowledge base", OK if kb_ok else FAIL,
            f"{stats['creators']} creators, {stats['techniques']} pages, {stats['sections']} sections",
            "" if kb_ok else "run `chrysopedia import PATH` (your material) or `chrysopedia import --demo`"))
    finally:
        await db.dispose()
    return checks


def _row(found) -> str:
    """A diagnosis as a doctor row's detail (the fix has its own line)."""
    return f"{found.setting} (from {found.source}) {found.server}: {found.problem}"


async def _check_redis(settings, timeout: float) -> Check:
    from tui.config import redact_url
    from tui.services import diagnose

    if not settings.redis_url:
        return Check("redis", SKIP, "not configured: memory uses the local database")
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url, socket_connect_timeout=min(timeout, 2.0),
                               socket_timeout=min(timeout, 2.0), retry_on_timeout=False)
    try:
        start = time.perf_counter()
        await client.ping()
        ms = (time.perf_counter() - start) * 1000
        from tui.services.history import replica_of

        primary = await replica_of(client, min(timeout, 2.0))
        if primary is not None:
            found = diagnose.redis_replica_diagnosis(settings, primary)
            return Check("redis", FAIL, _row(found), found.fix)
        return Check("redis", OK, f"{redact_url(settings.redis_url)} answers in {ms:.1f} ms")
    except Exception as exc:  # noqa: BLE001
        found = await diagnose.redis_diagnosis_async(exc, settings, timeout=min(timeout, 2.0))
        if found is not None:
            return Check("redis", FAIL, _row(found), found.fix)
        return Check("redis", FAIL, f"{redact_url(settings.redis_url)}: {type(exc).__name__}: "
                                    f"{diagnose.one_line(str(exc), 160)}",
                     "start Redis, fix CHRYSOPEDIA_REDIS_URL, or unset it to use local memory")
    finally:
        await client.aclose()


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


async def _check_model(label: str, base_url: str | None, model: str, key: str | None,
                       timeout: float, html_problem: str = "") -> list[Check]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=key or "not-needed", max_retries=0,
                                timeout=openai.Timeout(timeout, connect=min(timeout, 2.0)))
    where = base_url or "https://api.openai.com/v1"
    checks = []
    try:
        try:
            raw = await client.models.with_raw_response.list()
            if "html" in raw.headers.get("content-type", "").lower():
                problem, _, fix = html_problem.partition("; fix: ")
                return [Check(label, FAIL, f"{where}: {problem}", fix)]
            models = [m.id for m in raw.parse().data]
        except openai.APIConnectionError as exc:
            return [Check(label, FAIL, f"{where}: unreachable ({type(exc).__name__})",
                          "start the server or fix the URL")]
        except openai.APIStatusError as exc:
            if "html" in exc.response.headers.get("content-type", "").lower():
                problem, _, fix = html_problem.partition("; fix: ")
                return [Check(label, FAIL, f"{where}: HTTP {exc.status_code}, {problem}", fix)]
            models = None
            checks.append(Check(f"{label} models", FAIL if exc.status_code in (401, 403) else SKIP,
                                f"{where}: GET /models answered {exc.status_code}",
                                "check the API key" if exc.status_code in (401, 403) else ""))
        if models is not None:
            listed = model in models
            checks.append(Check(
                f"{label} models", OK if listed else FAIL,
                f"{where}: {len(models)} models, {model!r} {'listed' if listed else 'not listed'}",
                "" if listed else f"set the model name to one of: {', '.join(models[:5])}"))
        try:
            start = time.perf_counter()
            # Streamed, as the app asks for answers.
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=1,
                stream=True)
            chunks = 0
            async with asyncio.timeout(timeout):
                async for chunk in stream:
                    chunks += bool(chunk.choices)
            ms = (time.perf_counter() - start) * 1000
            checks.append(Check(f"{label} completion", OK if chunks else FAIL,
                                f"one-token completion in {ms:.0f} ms" if chunks else "empty reply",
                                "" if chunks else "check the server's logs"))
        except TimeoutError:
            checks.append(Check(f"{label} completion", FAIL, f"no answer within {timeout:g} s",
                                "the server stalls: check its load and logs"))
        except openai.APIError as exc:
            checks.append(Check(f"{label} completion", FAIL,
                                _scrub(f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:200], key),
                                "check the model name, the key and the server's logs"))
    finally:
        await client.close()
    return checks


async def run_checks(settings, timeout: float = 5.0) -> list[Check]:
    from tui.services.diagnose import html_reply_problem

    source = settings.config_file if settings.config_file and settings.config_file.exists() else None
    checks = [Check("config", OK, f"read {source}" if source else "defaults and environment")]
    checks += await _check_database(settings)
    checks.append(await _check_redis(settings, timeout))
    if not settings.model_configured:
        checks.append(Check("model", SKIP, "none configured: answers use the offline digest",
                            "set CHRYSOPEDIA_LLM_API_URL (and _MODEL, _API_KEY) for real answers"))
    else:
        checks += await _check_model("model", settings.llm_api_url, settings.llm_model,
                                     settings.llm_api_key, timeout,
                                     html_reply_problem(settings, "primary"))
    if settings.llm_fallback_url:
        checks += await _check_model("fallback", settings.llm_fallback_url,
                                     settings.llm_fallback_model or settings.llm_model,
                                     settings.llm_api_key, timeout,
                                     html_reply_problem(settings, "fallback"))
    return checks


def cmd_doctor(args, settings) -> int:
    checks = asyncio.run(run_checks(settings, args.timeout))
    if args.json:
        from tui.commands._common import print_json

        for c in checks:
            print_json({"part": c.part, "status": c.status, "detail": c.detail, "fix": c.fix})
    else:
        width = max(len(c.part) for c in checks)
        for c in checks:
            print(f"{c.status:<4}  {c.part:<{width}}  {c.detail}")
            if c.fix and c.status == FAIL:
                print(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = [c for c in checks if c.status == FAIL]
    if not args.json:
        print("all configured parts work" if not failed else f"{len(failed)} problem(s) to fix")
    return 1 if failed else 0
