"""The usage log: one `chat_usage_log` row per request that tried a model, and reports on it.

(ChatService writes a "failed" row with zero tokens for a model it could not connect to.)

A row is written for answered, failed and cancelled requests (the original
service lost cancelled ones), with the tokens the server reported or, when it
sent none, chars/4 estimates (`usage_estimated`), and the model that actually
served (the fallback's when it answered). A long answer's row is written early,
"incomplete" with estimates, and updated as the answer goes on and when it ends
(`write_usage(row_id=...)`): a process killed mid-answer leaves that row, counted
once, instead of nothing. Writing never raises: an error is logged and the answer
goes on.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tui.db.models import ChatUsageLog, Message

logger = logging.getLogger("chrysopedia.usage")

QUERY_CHARS = 2000
STATUSES = ("answered", "failed", "cancelled", "incomplete")

# Things that look like secrets: OpenAI-style keys, bearer tokens, URL passwords.
_SECRET = re.compile(r"\b(sk-[A-Za-z0-9_\-]{12,}|Bearer\s+[A-Za-z0-9._\-]{12,})")
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+@")


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with API keys and URL passwords replaced by `***`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET.sub("***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


def estimate_tokens(chars: int) -> int:
    return max(0, int(chars)) // 4


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def normalise_usage(
    usage: dict[str, Any] | None, prompt_chars: int = 0, completion_chars: int = 0
) -> tuple[dict[str, int], bool]:
    """(prompt/completion/total tokens, estimated?) from what the server sent, or chars/4."""
    if usage:
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        total = _int(usage.get("total_tokens")) or prompt + completion
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}, False
    prompt = estimate_tokens(prompt_chars)
    completion = estimate_tokens(completion_chars)
    return (
        {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        True,
    )


async def log_usage(db, **fields: Any) -> bool:
    """Write one usage row (the fields of `write_usage`); True if written."""
    return await write_usage(db, **fields) is not None


async def write_usage(
    db,
    *,
    row_id: int | None = None,
    query: str,
    creator_slug: str | None = None,
    conversation_id: str | None = None,
    usage: dict[str, Any] | None = None,
    prompt_chars: int = 0,
    completion_chars: int = 0,
    cascade_tier: str = "",
    model: str = "",
    fallback_used: bool = False,
    latency_ms: float = 0.0,
    status: str = "answered",
    user_id: str | None = None,
    client_ip: str | None = None,
    secrets: tuple[str | None, ...] = (),
    purpose: str = "answer",
) -> int | None:
    """Write one usage row, or update row `row_id` (the same request, further on); the
    row's id, or None if it could not be written. Never raises (errors are logged).

    `usage`: the server's {prompt_tokens, completion_tokens, total_tokens}, or
    None -> chars/4 estimates from `prompt_chars` (everything sent: system
    prompt, history, question) and `completion_chars` (the text received),
    flagged `usage_estimated`. `model`: the one that actually served.
    `status`: "answered" | "failed" | "cancelled" | "incomplete" (still going). `secrets`: strings (e.g.
    the API key) that must never be stored; key-like text is scrubbed anyway.
    `purpose`: what the model was asked for, "answer" or "distill".
    """
    try:
        if status not in STATUSES:
            logger.warning("usage status %r is not one of %s; stored as given", status, STATUSES)
        tokens, estimated = normalise_usage(usage, prompt_chars, completion_chars)
        fields = dict(
            user_id=None if user_id is None else str(user_id)[:200],
            client_ip=None if client_ip is None else str(client_ip)[:64],
            creator_slug=(creator_slug or None) and creator_slug[:64],
            conversation_id=(conversation_id or None) and str(conversation_id)[:36],
            query=scrub(query or "", *secrets)[:QUERY_CHARS],
            prompt_tokens=tokens["prompt_tokens"],
            completion_tokens=tokens["completion_tokens"],
            total_tokens=tokens["total_tokens"],
            usage_estimated=estimated,
            cascade_tier=(cascade_tier or "")[:32],
            model=scrub(model or "", *secrets)[:200],
            fallback_used=bool(fallback_used),
            latency_ms=float(latency_ms or 0.0),
            status=(status or "answered")[:16],
            purpose=(purpose or "answer")[:16],
        )
        async with db.session() as session, session.begin():
            row = await session.get(ChatUsageLog, row_id) if row_id is not None else None
            if row is None:
                row = ChatUsageLog(**fields)
                session.add(row)
            else:
                for name, value in fields.items():
                    setattr(row, name, value)
            await session.flush()
            return int(row.id)
    except Exception:  # noqa: BLE001 - the usage log must never break an answer
        logger.error(
            "chat_usage_log_insert_error cid=%s status=%s", conversation_id, status, exc_info=True
        )
        return None


# ── reports ───────────────────────────────────────────────────────────────


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def usage_report(db, days: int = 30, *, now: datetime | None = None,
                       by_user: bool = False) -> dict[str, Any]:
    """Usage over the last `days` UTC calendar days (today included).

    {"days", "since", "until",
     "totals": {requests, answered, failed, cancelled, incomplete, prompt_tokens,
                completion_tokens, total_tokens, estimated},
     "per_day": [{date, requests, prompt_tokens, completion_tokens, total_tokens, claims,
                  supported_claims, supported_share}] (every day, zeros included, oldest
                 first; claims counted over the answers checked that day, the share None
                 when there were none),
     "claims": {"total", "supported", "supported_share"} over the whole window,
     "latency_ms": {mean, p50, p95, max} over answered requests (None when none),
     "fallback_rate": share of requests served by the fallback (None when no requests),
     "tiers": {cascade_tier: requests}, "models": {model: requests},
     "purposes": {purpose: {requests, total_tokens}} (answering apart from distilling)}
    With `by_user`, also "users": [{user_id, requests, answered, failed, cancelled, incomplete,
    prompt_tokens, completion_tokens, total_tokens, latency_p50_ms, latency_p95_ms, last_seen}],
    most requests first (rows without a user under "(unknown)"; `last_seen` the ISO time, UTC,
    of the user's latest request in the window).
    Percentiles are nearest-rank, computed in Python (portable across backends).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    explicit_now = now is not None
    now = _aware(now or datetime.now(UTC))
    first_day = now.date() - timedelta(days=days - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    query = select(
        ChatUsageLog.created_at,
        ChatUsageLog.status,
        ChatUsageLog.prompt_tokens,
        ChatUsageLog.completion_tokens,
        ChatUsageLog.total_tokens,
        ChatUsageLog.usage_estimated,
        ChatUsageLog.cascade_tier,
        ChatUsageLog.model,
        ChatUsageLog.fallback_used,
        ChatUsageLog.latency_ms,
        ChatUsageLog.purpose,
        ChatUsageLog.user_id,
    ).where(ChatUsageLog.created_at >= since)
    if explicit_now:
        # (Without an explicit `now`, rows from a client whose clock runs ahead still count.)
        query = query.where(ChatUsageLog.created_at <= now)
    checked = select(Message.created_at, Message.claims).where(
        Message.role == "assistant", Message.status == "answered",
        Message.claims.is_not(None), Message.created_at >= since)
    if explicit_now:
        checked = checked.where(Message.created_at <= now)
    async with db.session() as session:
        rows = (await session.execute(query)).all()
        answers = (await session.execute(checked)).all()

    per_day: dict[date, dict[str, Any]] = {}
    for i in range(days):
        d = first_day + timedelta(days=i)
        per_day[d] = {"date": d.isoformat(), "requests": 0, "prompt_tokens": 0,
                      "completion_tokens": 0, "total_tokens": 0, "claims": 0,
                      "supported_claims": 0, "supported_share": None}
    totals = {"requests": 0, "answered": 0, "failed": 0, "cancelled": 0, "incomplete": 0,
              "prompt_tokens": 0,
              "completion_tokens": 0, "total_tokens": 0, "estimated": 0}
    tiers: dict[str, int] = {}
    models: dict[str, int] = {}
    purposes: dict[str, dict[str, int]] = {}
    latencies: list[float] = []
    fallbacks = 0
    users: dict[str, dict[str, Any]] = {}
    user_latencies: dict[str, list[float]] = {}
    for r in rows:
        day = per_day.get(_aware(r.created_at).date())
        prompt, completion, total = _int(r.prompt_tokens), _int(r.completion_tokens), _int(r.total_tokens)
        totals["requests"] += 1
        if r.status in STATUSES:
            totals[r.status] += 1
        totals["prompt_tokens"] += prompt
        totals["completion_tokens"] += completion
        totals["total_tokens"] += total
        totals["estimated"] += bool(r.usage_estimated)
        if day is not None:
            day["requests"] += 1
            day["prompt_tokens"] += prompt
            day["completion_tokens"] += completion
            day["total_tokens"] += total
        tier = r.cascade_tier or "(none)"
        tiers[tier] = tiers.get(tier, 0) + 1
        model = r.model or "(none)"
        models[model] = models.get(model, 0) + 1
        fallbacks += bool(r.fallback_used)
        by_purpose = purposes.setdefault(r.purpose or "answer", {"requests": 0, "total_tokens": 0})
        by_purpose["requests"] += 1
        by_purpose["total_tokens"] += total
        if r.status == "answered" and r.latency_ms is not None:
            latencies.append(float(r.latency_ms))
        if by_user:
            who = r.user_id or "(unknown)"
            u = users.setdefault(who, {
                "user_id": who, "requests": 0, "answered": 0, "failed": 0, "cancelled": 0,
                "incomplete": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                "last_seen": None,
            })
            u["requests"] += 1
            seen = _aware(r.created_at)
            if u["last_seen"] is None or seen > u["last_seen"]:
                u["last_seen"] = seen
            if r.status in STATUSES:
                u[r.status] += 1
            u["prompt_tokens"] += prompt
            u["completion_tokens"] += completion
            u["total_tokens"] += total
            if r.status == "answered" and r.latency_ms is not None:
                user_latencies.setdefault(who, []).append(float(r.latency_ms))

    claims_total = claims_supported = 0
    for a in answers:
        total, supported = _claim_counts(a.claims)
        claims_total += total
        claims_supported += supported
        day = per_day.get(_aware(a.created_at).date())
        if day is not None:
            day["claims"] += total
            day["supported_claims"] += supported
    for day in per_day.values():
        if day["claims"]:
            day["supported_share"] = day["supported_claims"] / day["claims"]

    n = totals["requests"]
    report: dict[str, Any] = {
        "days": days,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "totals": totals,
        "per_day": list(per_day.values()),
        "latency_ms": {
            "mean": (sum(latencies) / len(latencies)) if latencies else None,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "max": max(latencies) if latencies else None,
        },
        "fallback_rate": (fallbacks / n) if n else None,
        "claims": {"total": claims_total, "supported": claims_supported,
                   "supported_share": claims_supported / claims_total if claims_total else None},
        "tiers": dict(sorted(tiers.items(), key=lambda kv: (-kv[1], kv[0]))),
        "models": dict(sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))),
        "purposes": dict(sorted(purposes.items())),
    }
    if by_user:
        for who, u in users.items():
            u["latency_p50_ms"] = percentile(user_latencies.get(who, []), 50)
            u["latency_p95_ms"] = percentile(user_latencies.get(who, []), 95)
            u["last_seen"] = u["last_seen"].isoformat()
        report["users"] = sorted(users.values(), key=lambda u: (-u["requests"], u["user_id"]))
    return report


def _claim_counts(claims: Any) -> tuple[int, int]:
    """(claims, supported claims) of a stored claim check; (0, 0) for anything malformed."""
    if not isinstance(claims, dict):
        return 0, 0
    total, supported = claims.get("total"), claims.get("supported")
    if not isinstance(total, int) or not isinstance(supported, int) or isinstance(total, bool):
        return 0, 0
    if total < 0 or not 0 <= supported <= total:
        return 0, 0
    return total, supported
