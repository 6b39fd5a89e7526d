"""Conversation memory (what the model sees): Redis and a local SQL store behind one interface.

The value is the original service's format, so a conversation can move between
this app and it: a JSON array of ``{"role", "content"}``, the last
``MAX_MESSAGES`` messages, expiring ``TTL_SECONDS`` after the last turn.

- Redis: key ``settings.redis_key_prefix + conversation_id`` (default
  ``chrysopedia:chat:{id}``), one JSON string per conversation. Appends run in
  one Lua script (decode, append, trim, SET with EX), so two clients appending
  to one conversation at once lose no turn and need no retry.
- Local: the ``chat_memory`` table, same semantics; appends use an optimistic
  version check, retried on conflict.

``HistoryStore`` is what the chat service uses. Redis is used when configured
and reachable (the start-up probe spends at most 0.5 s). When Redis fails
mid-session, that turn goes to the local store — seeded with the last history
this process saw in Redis, so the model keeps its context — and ``state``
says so. At most once every ``retry_interval`` seconds a later call probes
Redis again; when it answers, the turns written locally meanwhile are copied
back into Redis (appended atomically after whatever Redis holds, or, when the
key is gone, the whole local history), the local copies are deleted, and new
turns use Redis again.

A stored history that is not JSON or not a list of ``{role, content}`` strings
is logged and treated as empty; the next append replaces it.

One topic, the conversation memory, hence its length: the two stores and the failover
between them (with the copy-back) only make sense together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

logger = logging.getLogger("chrysopedia.history")

MAX_MESSAGES = 20  # 10 turn pairs, as the original service
TTL_SECONDS = 3600  # an hour after the last turn
DEFAULT_PREFIX = "chrysopedia:chat:"
STARTUP_BUDGET = 0.5  # seconds the start-up probe of Redis may take
RETRY_INTERVAL = 5.0  # seconds between probes of a Redis that went away

ROLES = ("user", "assistant")  # what memory holds; the system prompt is never stored

Messages = list[dict[str, str]]


# ── conversation ids ──────────────────────────────────────────────────────


def validate_conversation_id(cid: str | None) -> str:
    """A canonical lowercase UUID string: a new uuid4 when `cid` is None.

    Anything that is not a UUID raises ValueError: the id becomes a Redis key
    and a primary key, so it must not carry arbitrary text.
    """
    if cid is None:
        return str(uuid.uuid4())
    if not isinstance(cid, str):
        raise ValueError(f"conversation_id must be a UUID string, got {type(cid).__name__}")
    text = cid.strip()
    try:
        # uuid.UUID accepts braces, "urn:uuid:" and no hyphens; require the 36-char form
        # (or 32 hex digits) and nothing else.
        if len(text) not in (32, 36):
            raise ValueError
        value = uuid.UUID(text)
    except ValueError:
        shown = cid if len(cid) <= 60 else cid[:57] + "..."
        raise ValueError(f"conversation_id must be a UUID, got {shown!r}") from None
    return str(value)


# ── message validation ────────────────────────────────────────────────────


def _clean_text(text: str) -> str:
    # Lone surrogates cannot be encoded as UTF-8 (nor decoded by Redis' cjson).
    return text.encode("utf-8", "replace").decode("utf-8")


def _message(role: str, content: str) -> dict[str, str]:
    if not isinstance(content, str):
        raise TypeError(f"{role} message must be a str, got {type(content).__name__}")
    return {"role": role, "content": _clean_text(content)}


def _checked(messages: Sequence[dict[str, str]]) -> Messages:
    """Messages to store: {role: user|assistant, content: str}, text made UTF-8-safe."""
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ValueError(f"a memory message needs role user or assistant, got {m!r:.80}")
        out.append(_message(m["role"], m.get("content")))
    return out


def parse_history(raw: str | bytes | None, *, where: str = "") -> Messages:
    """Decode a stored history; not JSON or the wrong shape -> a warning and []."""
    if raw is None:
        return []
    try:
        value = json.loads(raw)
    except (ValueError, TypeError) as exc:
        logger.warning("chat_history_corrupt %s: not JSON (%s); treated as empty", where, exc)
        return []
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
        for m in value
    ):
        logger.warning(
            "chat_history_corrupt %s: not a list of {role, content}; treated as empty", where
        )
        return []
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _copy(history: Messages) -> Messages:
    return [dict(m) for m in history]


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


# ── Redis ─────────────────────────────────────────────────────────────────

# KEYS[1] the conversation key; ARGV[1] JSON array to append; ARGV[2] cap;
# ARGV[3] TTL seconds; ARGV[4] JSON array to start from when the key is
# missing ("" for none); ARGV[5] "1" to take ARGV[1] as (user, assistant) pairs
# and skip any pair the stored history already holds (a copy-back after a
# timed-out append that did land); ARGV[6] "1" to drop the stored last pair
# first when its question is ARGV[1]'s first message (a regenerated answer).
# Returns {corrupt (0|1), the stored JSON}.
_APPEND_LUA = r"""
local function valid(h)
  if type(h) ~= 'table' then return false end
  local n = 0
  for k, v in pairs(h) do
    if type(k) ~= 'number' then return false end
    if type(v) ~= 'table' or (v.role ~= 'user' and v.role ~= 'assistant')
        or type(v.content) ~= 'string' then
      return false
    end
    n = n + 1
  end
  return n == #h
end
local corrupt = 0
local hist = {}
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'table' and raw.err then
  corrupt = 1
elseif raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and valid(decoded) then hist = decoded else corrupt = 1 end
elseif ARGV[4] ~= '' then
  hist = cjson.decode(ARGV[4])
end
local new = cjson.decode(ARGV[1])
if ARGV[6] == '1' and #hist >= 2 and #new >= 1 then
  local q = hist[#hist - 1]
  if q.role == 'user' and hist[#hist].role == 'assistant' and q.content == new[1].content then
    hist[#hist] = nil
    hist[#hist] = nil
  end
end
if ARGV[5] == '1' then
  local seen = {}
  for i = 1, #hist - 1 do
    seen[hist[i].role .. '\0' .. hist[i].content .. '\0' .. hist[i + 1].role .. '\0' .. hist[i + 1].content] = true
  end
  for i = 1, #new - 1, 2 do
    local k = new[i].role .. '\0' .. new[i].content .. '\0' .. new[i + 1].role .. '\0' .. new[i + 1].content
    if not seen[k] then
      hist[#hist + 1] = new[i]
      hist[#hist + 1] = new[i + 1]
    end
  end
else
  for i = 1, #new do hist[#hist + 1] = new[i] end
end
local cap = tonumber(ARGV[2])
local out = {}
for i = math.max(1, #hist - cap + 1), #hist do
  out[#out + 1] = {role = hist[i].role, content = hist[i].content}
end
local encoded = '[]'
if #out > 0 then encoded = cjson.encode(out) end
redis.call('SET', KEYS[1], encoded, 'EX', tonumber(ARGV[3]))
return {corrupt, encoded}
"""


class RedisHistory:
    """Conversation memory in Redis: one JSON array per key, atomic appends (Lua).

    Short timeouts and no client-side retry: a dead server costs one
    connection attempt (`connect_timeout`), not redis-py's default seconds.
    Connection and server errors propagate (redis.RedisError / OSError /
    asyncio.TimeoutError); HistoryStore turns them into a fallback.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = DEFAULT_PREFIX,
        max_messages: int = MAX_MESSAGES,
        ttl: int = TTL_SECONDS,
        connect_timeout: float = 1.0,
        timeout: float = 1.0,
    ) -> None:
        if max_messages < 1 or ttl < 1:
            raise ValueError("max_messages and ttl must be positive")
        if client is None:
            if not url:
                raise ValueError("RedisHistory needs a url or a client")
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=connect_timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            )
        self.client = client
        self.prefix = prefix
        self.max_messages = max_messages
        self.ttl = ttl
        # Backstop for a hung server: one command never waits longer than this.
        self.op_timeout = connect_timeout + timeout + 0.25
        self._append_script = client.register_script(_APPEND_LUA)

    def key(self, cid: str) -> str:
        return self.prefix + cid

    async def _run(self, coro):
        return await asyncio.wait_for(coro, self.op_timeout)

    async def ping(self) -> None:
        """Raise when Redis does not answer."""
        await self._run(self.client.ping())

    async def load(self, cid: str) -> Messages:
        from redis.exceptions import ResponseError

        key = self.key(cid)
        try:
            raw = await self._run(self.client.get(key))
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                logger.warning("chat_history_corrupt redis %s: not a string; treated as empty", key)
                return []
            raise
        return parse_history(raw, where=f"redis {key}")[-self.max_messages :]

    async def append(
        self,
        cid: str,
        messages: Sequence[dict[str, str]],
        *,
        if_missing: Messages | None = None,
        dedupe: bool = False,
        replace_last: bool = False,
    ) -> Messages:
        """Append atomically, trim to the cap, refresh the TTL; returns the stored history.

        `if_missing`: the history to start from when the key does not exist.
        `dedupe`: `messages` are (user, assistant) pairs; skip any pair the
        stored history already holds. Both serve the copy-back of turns written locally while Redis
        was away (a timed-out append may have landed after all).
        `replace_last`: a regenerated answer: when the stored history ends with
        a pair asking `messages[0]`'s question, that pair is replaced.
        """
        key = self.key(cid)
        args = [
            json.dumps(_checked(messages), ensure_ascii=False),
            self.max_messages,
            self.ttl,
            json.dumps(if_missing, ensure_ascii=False) if if_missing else "",
            "1" if dedupe else "0",
            "1" if replace_last else "0",
        ]
        corrupt, encoded = await self._run(self._append_script(keys=[key], args=args))
        if int(corrupt):
            logger.warning("chat_history_corrupt redis %s: replaced by this turn", key)
        return parse_history(encoded, where=f"redis {key}")

    async def delete(self, cid: str) -> None:
        await self._run(self.client.delete(self.key(cid)))

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception:  # noqa: BLE001 - closing a dead connection is not an error
            logger.debug("redis close failed", exc_info=True)


# ── local (SQL) ───────────────────────────────────────────────────────────


class LocalHistory:
    """Conversation memory in the `chat_memory` table: same cap and expiry as Redis.

    Appends are atomic under concurrency: each locks the row (PostgreSQL) or the
    database (SQLite's single writer) before reading it, and writes `WHERE
    version = read version`; a lost race or a busy database is retried
    (`conflicts` counts the retries).
    """

    def __init__(
        self,
        db,
        *,
        max_messages: int = MAX_MESSAGES,
        ttl: int = TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 200,
    ) -> None:
        if max_messages < 1 or ttl < 1:
            raise ValueError("max_messages and ttl must be positive")
        self.db = db
        self.max_messages = max_messages
        self.ttl = ttl
        self.clock = clock
        self.max_attempts = max_attempts
        self.conflicts = 0

    async def load(self, cid: str) -> Messages:
        from tui.db.models import ChatMemory

        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(ChatMemory.messages, ChatMemory.expires_at).where(
                        ChatMemory.conversation_id == cid
                    )
                )
            ).first()
        if row is None or row.expires_at <= self.clock():
            return []
        return parse_history(row.messages, where=f"local {cid}")[-self.max_messages :]

    async def append(
        self,
        cid: str,
        messages: Sequence[dict[str, str]],
        *,
        base: Messages | None = None,
        replace_last: bool = False,
    ) -> Messages:
        """Append, trim to the cap, push the expiry an hour on; returns the stored history.

        `base`: when given, append to it instead of the stored history (a
        Redis history copied down when Redis went away). `replace_last`: as
        RedisHistory.append (a regenerated answer replaces the last pair).
        """
        for attempt in range(self.max_attempts):
            stored = await self._try_append(cid, _checked(messages), base, replace_last)
            if stored is not None:
                return stored
            self.conflicts += 1
            await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise RuntimeError(f"local history: gave up appending to {cid} after repeated conflicts")

    async def _try_append(
        self, cid: str, messages: Messages, base: Messages | None, replace_last: bool
    ):
        from tui.db.models import ChatMemory

        try:
            async with self.db.session() as session, session.begin():
                # Make sure the row exists (an expired, empty one if new), then lock it:
                # the INSERT takes SQLite's write lock for the whole transaction, and
                # FOR UPDATE the row lock on PostgreSQL, so concurrent appends queue
                # instead of colliding. The version check below stays as a guard.
                await session.execute(
                    _insert_ignore(self.db.dialect, ChatMemory).values(
                        conversation_id=cid, messages="[]", version=0, expires_at=0.0
                    )
                )
                row = (
                    await session.execute(
                        select(ChatMemory.messages, ChatMemory.version, ChatMemory.expires_at)
                        .where(ChatMemory.conversation_id == cid)
                        .with_for_update()
                    )
                ).one()
                now = self.clock()
                if base is not None:
                    history = list(base)
                elif row.expires_at <= now:
                    history = []
                else:
                    history = parse_history(row.messages, where=f"local {cid}")
                if replace_last:
                    history = _drop_last_pair(history, messages)
                history = (history + messages)[-self.max_messages :]
                result = await session.execute(
                    update(ChatMemory)
                    .where(ChatMemory.conversation_id == cid, ChatMemory.version == row.version)
                    .values(
                        messages=json.dumps(history, ensure_ascii=False),
                        version=row.version + 1,
                        expires_at=now + self.ttl,
                    )
                )
                if result.rowcount != 1:
                    raise _Conflict
        except (_Conflict, IntegrityError):
            return None
        except OperationalError as exc:  # SQLite: "database is locked" under contention
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                return None
            raise
        return history

    async def delete(self, cid: str) -> None:
        from tui.db.models import ChatMemory

        async with self.db.session() as session, session.begin():
            await session.execute(delete(ChatMemory).where(ChatMemory.conversation_id == cid))

    async def purge_expired(self) -> int:
        """Delete expired rows; returns how many."""
        from tui.db.models import ChatMemory

        async with self.db.session() as session, session.begin():
            result = await session.execute(
                delete(ChatMemory).where(ChatMemory.expires_at <= self.clock())
            )
        return int(result.rowcount or 0)


class _Conflict(Exception):
    pass


def _insert_ignore(dialect: str, model):
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()


def _drop_last_pair(history: Messages, messages: Sequence[dict[str, str]]) -> Messages:
    """`history` without its last (question, answer) pair if that asks `messages[0]`'s question."""
    if (
        len(history) >= 2 and messages
        and history[-2]["role"] == "user" and history[-1]["role"] == "assistant"
        and history[-2]["content"] == messages[0]["content"]
    ):
        return history[:-2]
    return history


# ── the one interface ─────────────────────────────────────────────────────


@dataclass(frozen=True)
class HistoryState:
    """Which memory store is live, for the status bar.

    backend: "redis" | "local". redis_configured: a Redis URL was given.
    redis_dropped: Redis is configured but not in use now (unreachable at
    start, or lost mid-session); calls keep probing it every few seconds.
    message: one line for the user. error: the last Redis error, if any.
    pending: conversations written locally that will be copied back to Redis.
    """

    backend: str
    redis_configured: bool
    redis_dropped: bool
    message: str
    error: str | None = None
    pending: int = 0
    # A Redis that answers but cannot serve as configured (password, TLS, read-only
    # replica): one line naming the setting, its source, the server and the fix. Redis
    # is not tried again this session; the local store serves.
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HistoryStore:
    """Conversation memory for the chat service: `load`, `append`, `state`, `close`.

    Never raises for a Redis failure (it falls back to the local store); raises
    ValueError for a conversation id that is not a UUID.
    """

    def __init__(
        self,
        local: LocalHistory,
        redis: RedisHistory | None = None,
        *,
        redis_error: str | None = None,
        problem: str | None = None,
        retry_interval: float = RETRY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        mirror_size: int = 256,
    ) -> None:
        self.local = local
        self.redis = redis
        self.retry_interval = retry_interval
        self.clock = clock
        self._mirror_size = mirror_size
        # Last history seen in Redis per conversation, to seed the local store if Redis drops.
        # (seen at, history); an entry older than the TTL has expired in Redis too.
        self._mirror: OrderedDict[str, tuple[float, Messages]] = OrderedDict()
        # Messages written locally while Redis was away, per conversation, to copy back.
        self._pending: dict[str, Messages] = {}
        # When each conversation last got a turn written locally (self.clock()).
        self._pending_at: dict[str, float] = {}
        self._listeners: list[Callable[[HistoryState], None]] = []
        self._lock = asyncio.Lock()
        self._next_probe = 0.0
        self.copied_back = 0  # messages copied back to Redis over this store's life
        if problem is not None:
            self._state = HistoryState(
                "local", True, True, f"memory: local (Redis: {redis_error})", redis_error,
                problem=problem,
            )
        elif redis is None:
            self._state = HistoryState("local", False, False, "memory: local")
        elif redis_error is None:
            self._state = HistoryState("redis", True, False, "memory: Redis")
        else:
            self._next_probe = clock() + retry_interval
            self._state = HistoryState(
                "local", True, True,
                f"memory: local (Redis unreachable: {redis_error})", redis_error,
            )

    # -- state --

    @property
    def state(self) -> HistoryState:
        return self._state

    def add_listener(self, callback: Callable[[HistoryState], None]) -> None:
        """Call `callback(state)` whenever the state changes (e.g. to update a status bar)."""
        self._listeners.append(callback)

    def _set_state(self, state: HistoryState) -> None:
        if state == self._state:
            return
        self._state = state
        for callback in list(self._listeners):
            try:
                callback(state)
            except Exception:  # noqa: BLE001 - a listener must not break memory
                logger.exception("history state listener failed")

    def _using_redis(self) -> bool:
        return self.redis is not None and self._state.backend == "redis"

    def _drop(self, exc: BaseException) -> None:
        error = _short(exc)
        logger.warning("chat_history_redis_lost %s; turns go to the local store", error)
        self._next_probe = self.clock() + self.retry_interval
        self._set_state(
            HistoryState(
                "local", True, True,
                f"memory: local (Redis lost: {error}; retrying)", error, len(self._pending),
            )
        )

    def _remember(self, cid: str, history: Messages) -> None:
        self._mirror[cid] = (self.clock(), history)
        self._mirror.move_to_end(cid)
        while len(self._mirror) > self._mirror_size:
            self._mirror.popitem(last=False)

    def _seen(self, cid: str) -> Messages | None:
        """The history last seen in Redis, unless turns were written locally since or it expired."""
        entry = self._mirror.get(cid)
        if cid in self._pending or entry is None:
            return None
        seen_at, history = entry
        ttl = self.redis.ttl if self.redis is not None else TTL_SECONDS
        if self.clock() - seen_at >= ttl:
            return []
        return history

    # -- recovery --

    async def probe(self, *, force: bool = False) -> HistoryState:
        """Try Redis again if it is configured but not in use (rate-limited unless `force`).

        On success the turns written locally meanwhile are copied back first.
        """
        if self.redis is None or self._using_redis():
            return self._state
        if not force and self.clock() < self._next_probe:
            return self._state
        async with self._lock:
            if self._using_redis() or (not force and self.clock() < self._next_probe):
                return self._state
            self._next_probe = self.clock() + self.retry_interval
            try:
                await self.redis.ping()
                copied = await self._copy_back()
            except Exception as exc:  # noqa: BLE001 - still away
                error = _short(exc)
                logger.debug("redis probe failed: %s", error)
                self._set_state(
                    HistoryState(
                        "local", True, True,
                        f"memory: local (Redis unreachable: {error}; retrying)",
                        error, len(self._pending),
                    )
                )
                return self._state
            note = f"; {copied} local messages copied back" if copied else ""
            logger.info("chat_history_redis_back%s", note)
            self._set_state(HistoryState("redis", True, False, f"memory: Redis (reconnected{note})"))
            return self._state

    async def _copy_back(self) -> int:
        """Append the turns written locally to Redis; delete the local copies. Raises if Redis fails."""
        copied = 0
        for cid in list(self._pending):
            pending = self._pending[cid][-self.local.max_messages :]
            # The turns themselves are this process's own (`pending`); the local row is
            # only the history before them, for a key Redis lost. Another terminal on the
            # same conversation may have copied back and deleted that row already: its
            # absence does not make these turns expired, only their age does.
            if self.clock() - self._pending_at.get(cid, self.clock()) < self.local.ttl:
                full = await self.local.load(cid)
                cut = max(0, len(full) - len(pending))
                stored = await self.redis.append(
                    cid, pending, if_missing=full[:cut] or None, dedupe=True
                )
                self._remember(cid, stored)
                copied += len(pending)
            # else: written over an hour ago; expired in Redis's terms, not copied.
            del self._pending[cid]
            self._pending_at.pop(cid, None)
            try:
                await self.local.delete(cid)
            except Exception:  # noqa: BLE001 - a stale local row is harmless: Redis wins now
                logger.warning("chat_history_local_delete_failed cid=%s", cid, exc_info=True)
        self.copied_back += copied
        return copied

    # -- the interface --

    async def load(self, cid: str) -> Messages:
        """The conversation's memory (oldest first), [] when new, expired or corrupt."""
        cid = validate_conversation_id(cid)
        await self.probe()
        if self._using_redis():
            try:
                history = await self.redis.load(cid)
            except Exception as exc:  # noqa: BLE001 - any Redis failure -> local
                self._drop(exc)
            else:
                self._remember(cid, history)
                return _copy(history)
        seen = self._seen(cid)
        if seen is not None:
            return _copy(seen)
        return await self.local.load(cid)

    async def append(
        self, cid: str, user_msg: str, assistant_msg: str, *, replace_last: bool = False
    ) -> None:
        """Add one turn (a user and an assistant message), atomically, trimmed to the cap.

        `replace_last=True` for a regenerated answer: if the memory ends with a
        turn asking `user_msg`, that turn is replaced instead of repeated.

        Redis failing -> the turn is stored locally and `state` says so. Raises
        only for a bad id or non-str messages, or if the local database fails too.
        """
        cid = validate_conversation_id(cid)
        turn = [_message("user", user_msg), _message("assistant", assistant_msg)]
        await self.probe()
        if self._using_redis() and await self._append_redis(cid, turn, replace_last):
            return
        # Degraded path: serialised with recovery so a copy-back never misses a turn.
        async with self._lock:
            if self._using_redis() and await self._append_redis(cid, turn, replace_last):
                return
            base = None
            if self.redis is not None:
                base = self._seen(cid)
            # (A regenerated answer written here replaces the local pair; if the copy-back
            # later finds the old pair in Redis, both versions stay there.)
            await self.local.append(cid, turn, base=base, replace_last=replace_last)
            if self.redis is not None:
                pending = self._pending.setdefault(cid, [])
                if replace_last:
                    pending[:] = _drop_last_pair(pending, turn)
                pending.extend(turn)
                self._pending_at[cid] = self.clock()
                self._mirror.pop(cid, None)
                s = self._state
                if s.pending != len(self._pending):
                    self._set_state(
                        HistoryState(s.backend, s.redis_configured, s.redis_dropped,
                                     s.message, s.error, len(self._pending))
                    )

    async def _append_redis(self, cid: str, turn: Messages, replace_last: bool = False) -> bool:
        try:
            stored = await self.redis.append(cid, turn, replace_last=replace_last)
        except Exception as exc:  # noqa: BLE001 - any Redis failure -> local
            self._drop(exc)
            return False
        self._remember(cid, stored)
        return True

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()


async def open_history(
    settings,
    db,
    *,
    budget: float = STARTUP_BUDGET,
    max_messages: int = MAX_MESSAGES,
    ttl: int = TTL_SECONDS,
    retry_interval: float = RETRY_INTERVAL,
    redis_timeout: float = 1.0,
) -> HistoryStore:
    """The memory store for this session: Redis if `settings.redis_url` answers within `budget`
    seconds, else the local store in `db` (and Redis is probed again every `retry_interval`).
    `redis_timeout`: Redis's connect and command timeout (see below)."""
    local = LocalHistory(db, max_messages=max_messages, ttl=ttl)
    try:
        await local.purge_expired()
    except Exception:  # noqa: BLE001 - housekeeping only
        logger.warning("chat_history_purge_failed", exc_info=True)
    if not settings.redis_url:
        return HistoryStore(local, retry_interval=retry_interval)
    redis = RedisHistory(
        settings.redis_url,
        prefix=settings.redis_key_prefix or DEFAULT_PREFIX,
        max_messages=max_messages,
        ttl=ttl,
        # Per connection and per command: long enough that a busy machine (a burst of
        # concurrent turns opening connections on a loaded event loop can take over 0.3 s)
        # is not taken for a dead server, short enough that a hung one costs a turn about a
        # second. The start-up probe below has its own, shorter budget.
        connect_timeout=redis_timeout,
        timeout=redis_timeout,
    )
    from tui.services import diagnose

    error = None
    diagnosis = None
    failure: BaseException | None = None
    wait = max(0.05, budget - 0.05)  # a margin for the client set-up around the ping
    try:
        await asyncio.wait_for(redis.client.ping(), wait)
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, auth, timeout...
        error = f"no answer in {budget:g} s" if isinstance(exc, asyncio.TimeoutError) else _short(exc)
        failure = exc
        diagnosis = await diagnose.redis_diagnosis_async(exc, settings, timeout=wait)
        if diagnosis is None:
            logger.warning("chat_history_redis_unreachable %s; using the local store", error)
    else:
        primary = await replica_of(redis.client, wait)
        if primary is not None:
            diagnosis = diagnose.redis_replica_diagnosis(settings, primary)
    if diagnosis is not None:
        # Misconfigured, not away: retrying every few seconds would fail the same way.
        problem = diagnosis.error(failure, part="redis").line
        logger.warning("chat_history_redis_misconfigured %s", problem)
        await redis.close()
        return HistoryStore(local, None, redis_error=diagnosis.problem, problem=problem,
                            retry_interval=retry_interval)
    return HistoryStore(local, redis, redis_error=error, retry_interval=retry_interval)


async def replica_of(client, wait: float) -> str | None:
    """"host:port" of the primary when this Redis is a replica (it refuses writes), else None.

    A server that does not allow ROLE (some managed services rename it) counts as a
    primary: a write that fails later still falls back to the local store."""
    try:
        role = await asyncio.wait_for(client.execute_command("ROLE"), wait)
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(role, list | tuple) or not role:
        return None
    fields = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in role[:3]]
    if fields[0] in ("slave", "replica"):
        host = fields[1] if len(fields) > 1 else "?"
        port = fields[2] if len(fields) > 2 else "?"
        return f"{host}:{port}"
    return None
