"""Teams under load: N terminals on one PostgreSQL and one Redis, an import and a Redis restart.

    .venv/bin/python bench/team_load.py --users 50 --minutes 2 --json
    .venv/bin/python bench/team_load.py --users 10 --minutes 0.5      # a quick run

Each simulated user is a separate process (`--worker`, no Textual) holding what a terminal
holds: a real `ChatService` over its own `Database` (opened by `open_database`, so its own
pool, the app's pool settings) and its own `HistoryStore` (`open_history`: Redis, the local
store behind it). Users ask at a human pace (a think time drawn between `--think` seconds)
and share conversations in pairs (users 2k and 2k+1 on one conversation id). The model is
the loopback fake server (tests/fake_openai.py) in its own process, streaming each answer at
a pace drawn between `--rate` tokens/s, first token at once.

The backend is PostgreSQL 127.0.0.1:5432 database `test`, in a schema of its own
(`?schema=bench_team_<pid>`, created with the demo pages before the run, dropped after), and
a private Redis (tests/redis_proc.py) with an append-only file fsynced on every write, on a
port of its own. Half-way through, `chrysopedia import` of `--videos` yt-dlp downloads
(bench/ytdlp_material.py) runs into the same schema in a subprocess, while this process
searches twice a second (timed, as a user browsing the KB would); a little later Redis is
killed (SIGKILL) and started again on the same port.

Every connection of the run carries an application_name (`$PGAPPNAME`,
`chrysopedia-bench-<pid>-…`): pg_stat_activity is sampled every 0.2 s for them.

Checked after the run:
- lost_turns: every answer given (a `done` event) must be in the transcript archive (its
  message row, status answered, the same text) and in the conversation's memory in Redis
  (after each user's copy-back of the turns it kept locally while Redis was away), once.
  The memory cap is raised (`--memory-cap`, default 1,000 messages) so every turn of a
  conversation can be counted; the product's cap (20 messages) is a window over the same
  list. Each question is unique (it names its user and number), so a turn is found by its
  question.
- errors: `error` events, and warnings or errors the services logged, except those a Redis
  restart explains (`chat_history_redis_lost`: the turn went to the local store).
- ttft: from the question to the first `token` event, minus the model server's own
  first-token delay for that request (its record: first token sent − request read).

JSON keys: users, answers, lost_turns, errors, ttft_p95_ms, search_p95_during_import_ms,
pg_connections_max, redis_restart_recovered, plus the parts behind them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

PG_DSN = os.environ.get("CHRYSOPEDIA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_URL = "postgresql+asyncpg" + PG_DSN[len("postgresql"):]

# Questions the demo pages answer; each asked as "QUESTION (U.N)" (user U, question N), a
# tag that makes it unique without adding words to the search: "(user 3, question 5)" made
# "How do I stop the low mids getting muddy?" tier `none` (two more words the KB lacks).
QUESTIONS = [
    "How do I use a filter envelope in subtractive synthesis?",
    "What FM ratios give a bell or a bass?",
    "How do I design a kick drum with a pitch envelope?",
    "How does pulse-width modulation make a pad breathe?",
    "How do I make impacts and downlifters for a drop?",
    "How much reverb pre-delay should a vocal send have?",
    "How do I build a Reese bass from detuned saws?",
    "How do I resample a sound and mangle it again?",
    "How do I make a riser from noise for a transition?",
    "How do I set up parallel compression on drums?",
    "How do I sidechain a bass to the kick?",
    "How do I stop the low mids getting muddy?",
    "What does unison detune do to a supersaw lead?",
    "How do I gain stage a mix before the master bus?",
    "How do I chop a soul sample into slices?",
    "How do I time stretch a loop without artifacts?",
]
SEARCH_QUERIES = [
    "parallel compression drums", "supersaw unison detune", "sidechain kick bass",
    "chopping soul samples", "filter envelope", "gain staging", "reverb send vocal",
    "time stretch artifacts", "wavetable oscillator", "low mids mud", "drum break swing",
    "resampling textures", "fm bass", "de-esser vocal", "mix bus glue",
]
# The answer the fake model streams, cycled to --answer-tokens tokens.
ANSWER_SCRIPT = ["Parallel", " compression", " adds", " sustain", " [1]", " while", " keeping",
                 " transients", " [2].", " Set", " the", " attack", " slow", " and", " blend",
                 " the", " wet", " signal", " under", " the", " dry", " one", " [1].", "\n\n"]
# Memory falling back to the local store: a Redis restart explains it (the turns are kept
# locally and copied back when Redis answers again, which the memory check verifies), and
# so does the start-up probe's 0.5 s budget running out on a saturated machine (reported
# apart: `memory_fallbacks`).
EXPLAINED = {"chat_history_redis_lost", "chat_history_redis_back"}
FALLBACK_AT_START = "chat_history_redis_unreachable"


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    if len(values) < 2:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=20)[18], 1)


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# ── one user (a worker process) ──────────────────────────────────────────


class _Collect(logging.Handler):
    """Warnings and errors the services log, by their first word (the event name)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.events: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.events.append({"t": record.created, "logger": record.name,
                            "level": record.levelname, "event": message.split(" ", 1)[0],
                            "message": message[:300]})


class _TimedHistory:
    """The user's HistoryStore, with the time of its last `load` (the memory read before
    a question's search)."""

    def __init__(self, store) -> None:
        self.store = store
        self.last_load_ms = 0.0

    async def load(self, cid: str):
        t0 = time.perf_counter()
        try:
            return await self.store.load(cid)
        finally:
            self.last_load_ms = (time.perf_counter() - t0) * 1000

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def _timed_search():
    from tui.services.search import SearchService

    class TimedSearch(SearchService):
        """The search, with the time of its last call."""

        last_ms = 0.0

        async def search(self, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await super().search(*args, **kwargs)
            finally:
                self.last_ms = (time.perf_counter() - t0) * 1000

    return TimedSearch


async def _user(spec: dict) -> dict:
    from tui.config import load_settings
    from tui.services.chat import ChatService
    from tui.services.database import open_database
    from tui.services.events import Done, Error, Reset, Sources, Token
    from tui.services.history import open_history

    collect = _Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger().setLevel(logging.INFO)
    settings = load_settings(env=os.environ)
    rng = random.Random(spec["seed"])
    db = await open_database(settings)
    history = await open_history(settings, db, max_messages=spec["memory_cap"])
    states: list[dict] = []
    history.add_listener(lambda s: states.append({"t": time.time(), **s.as_dict()}))
    timed_history = _TimedHistory(history)
    search = _timed_search()(settings)
    chat = ChatService(settings, db, timed_history, search=search)
    await chat.warm_up()  # as the app does once it is up
    Path(spec["ready"]).write_text("ready")
    go = Path(spec["go"])
    while not go.exists():
        await asyncio.sleep(0.05)
    start, end = json.loads(go.read_text())
    await asyncio.sleep(max(0.0, start - time.time()) + rng.uniform(0, spec["think"][1]))
    turns: list[dict] = []
    n = 0
    while time.time() < end:
        n += 1
        question = f"{rng.choice(QUESTIONS)} ({spec['user']}.{n})"
        cpu0 = time.process_time()
        turn = {"n": n, "question": question, "t0": time.time(), "first": None, "end": None,
                "sources": None, "search_ms": None, "memory_ms": None,
                "done": None, "error": None, "text": ""}
        parts: list[str] = []
        async with contextlib.aclosing(
            chat.stream_response(question, conversation_id=spec["cid"])
        ) as events:
            async for event in events:
                if isinstance(event, Token):
                    if turn["first"] is None:
                        turn["first"] = time.time()
                    parts.append(event.text)
                elif isinstance(event, Sources):
                    turn["sources"] = time.time()
                    turn["search_ms"] = round(search.last_ms, 1)
                    turn["memory_ms"] = round(timed_history.last_load_ms, 1)
                elif isinstance(event, Reset):
                    parts.clear()  # the fallback restarts the answer
                elif isinstance(event, Done):
                    turn["done"] = {"model": event.model, "tier": event.cascade_tier,
                                    "message_id": event.message_id, "turn": event.turn}
                elif isinstance(event, Error):
                    turn["error"] = event.message
        turn["end"] = time.time()
        turn["cpu_ms"] = round((time.process_time() - cpu0) * 1000, 1)
        text = "".join(parts)
        turn["text"] = digest(text)
        turn["chars"] = len(text)
        turn["backend"] = history.state.backend
        turns.append(turn)
        await asyncio.sleep(rng.uniform(*spec["think"]))
    # The user keeps the app open a little: the turns kept locally go back to Redis at the
    # next probe. Force it, up to 30 s.
    deadline = time.time() + 30
    while time.time() < deadline:
        state = await history.probe(force=True)
        if state.backend == "redis" and not state.pending:
            break
        await asyncio.sleep(1)
    final = history.state.as_dict()
    result = {"user": spec["user"], "cid": spec["cid"], "turns": turns, "states": states,
              "final": final, "copied_back": history.copied_back, "logs": collect.events,
              "local_conflicts": history.local.conflicts}
    await chat.aclose()
    await history.close()
    await db.dispose()
    return result


def worker_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = asyncio.run(_user(spec))
    except Exception as exc:  # noqa: BLE001 - reported to the coordinator, which counts it
        import traceback

        result = {"user": spec["user"], "crashed": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-3000:]}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# ── the coordinator ──────────────────────────────────────────────────────


class Sampler(threading.Thread):
    """pg_stat_activity every `interval` s: connections of this run, by application_name."""

    def __init__(self, prefix: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.prefix = prefix
        self.interval = interval
        self.samples: list[tuple[float, int, int, int]] = []  # t, ours, users, all on `test`
        self.stop = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_DSN, server_settings={
            "application_name": f"{self.prefix}-sampler"})
        try:
            while not self.stop.is_set():
                row = await conn.fetchrow(
                    "SELECT count(*) FILTER (WHERE application_name LIKE $1 || '%'),"
                    " count(*) FILTER (WHERE application_name LIKE $1 || '-u%'),"
                    " count(*) FROM pg_stat_activity WHERE datname = 'test'", self.prefix)
                self.samples.append((time.time(), row[0], row[1], row[2]))
                await asyncio.sleep(self.interval)
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            await conn.close()


def _pg(sql: str, *args, schema: str | None = None, fetch: bool = True):
    import asyncpg

    async def go():
        settings = {"application_name": "chrysopedia-bench-admin"}
        if schema:
            settings["search_path"] = f'"{schema}"'
        conn = await asyncpg.connect(PG_DSN, server_settings=settings)
        try:
            return await (conn.fetch(sql, *args) if fetch else conn.execute(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _fake_server(port: int, rate: tuple[float, float], tokens: int, log: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", str(port), "--mode", "slow"],
        cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            body = json.dumps({"mode": "slow", "rate": list(rate), "count": tokens,
                               "tokens": ANSWER_SCRIPT}).encode()
            req = urllib.request.Request(f"{url}/_control", body, method="POST",
                                         headers={"content-type": "application/json"})
            urllib.request.urlopen(req, timeout=2).read()
            return proc, f"{url}/v1"
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise SystemExit("the fake model server did not start") from None
            time.sleep(0.1)


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, ValueError, IndexError):
        return None


def _server_records(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_control", timeout=120) as resp:
        return json.loads(resp.read())["requests"]


def run(args, work: Path) -> dict:
    from redis_proc import RedisProcess, free_port
    from searcher import Searcher
    from ytdlp_material import generate

    pid = os.getpid()
    schema = f"bench_team_{pid}"
    prefix = f"chrysopedia-bench-{pid}"
    url = f"{PG_URL}?schema={schema}"
    key_prefix = f"bench_team_{pid}:chat:"
    material = work / "downloads"
    generate(material, args.videos, seed=args.seed)

    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("CHRYSOPEDIA_") and k not in ("OPENAI_API_KEY",
                                                                   "OPENAI_BASE_URL")}
    base_env.update({"CHRYSOPEDIA_DATABASE_URL": url, "CHRYSOPEDIA_DATA_DIR": str(work / "data"),
                     "CHRYSOPEDIA_CONFIG": str(work / "config.toml"),
                     "XDG_STATE_HOME": str(work / "state")})
    (work / "config.toml").write_text("")
    # The schema, with the demo pages (and their vectors), before anyone starts.
    setup = subprocess.run(
        [sys.executable, "-m", "tui", "import", "--demo", "--json"], cwd=ROOT,
        env={**base_env, "PGAPPNAME": f"{prefix}-setup"}, capture_output=True, text=True)
    if setup.returncode != 0:
        raise SystemExit(f"setting up the schema failed: {setup.stderr[-2000:]}")

    redis = RedisProcess(work / "redis", args=("--appendonly", "yes", "--appendfsync", "always"))
    redis.start()
    model_port = free_port()
    model_proc, model_url = _fake_server(model_port, tuple(args.rate), args.answer_tokens,
                                         work / "fake_openai.log")
    procs: list[subprocess.Popen] = []
    os.environ["PGAPPNAME"] = f"{prefix}-searcher"  # this process's searches
    sampler = Sampler(prefix)
    searcher = Searcher(url, SEARCH_QUERIES)
    import_proc = None
    result: dict = {}
    try:
        sampler.start()
        searcher.start()
        cids = [str(uuid.uuid4()) for _ in range((args.users + 1) // 2)]
        specs = []
        for u in range(args.users):
            spec = {"user": u, "cid": cids[u // 2], "seed": args.seed * 1000 + u,
                    "think": list(args.think), "memory_cap": args.memory_cap,
                    "ready": str(work / f"ready-{u}"), "go": str(work / "go"),
                    "result": str(work / f"result-{u}.json")}
            path = work / f"spec-{u}.json"
            path.write_text(json.dumps(spec))
            specs.append(spec)
            env = {**base_env, "PGAPPNAME": f"{prefix}-u{u}",
                   "CHRYSOPEDIA_REDIS_URL": redis.url,
                   "CHRYSOPEDIA_REDIS_KEY_PREFIX": key_prefix,
                   "CHRYSOPEDIA_LLM_API_URL": model_url,
                   "CHRYSOPEDIA_LLM_API_KEY": "bench",
                   "CHRYSOPEDIA_LLM_MODEL": f"bench-u{u}",
                   # A loaded 2-core machine can starve the loopback server's accept.
                   "CHRYSOPEDIA_LLM_CONNECT_TIMEOUT": "2",
                   "CHRYSOPEDIA_USER_ID": f"user-{u}"}
            procs.append(subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker", str(path)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                stderr=open(work / f"worker-{u}.err", "w")))
        t_spawn = time.time()
        while not all(Path(s["ready"]).exists() for s in specs):
            dead = [p.args[-1] for p in procs if p.poll() is not None]
            if dead or time.time() - t_spawn > 600:
                raise SystemExit(f"users did not start: {dead[:3]} (see {work}/worker-*.err)")
            time.sleep(0.2)
        startup_s = time.time() - t_spawn
        load_start = round(os.getloadavg()[0], 2)
        duration = args.minutes * 60
        # The terminals are open; their start-up (imports, the embedding model) is over
        # before anyone asks: `--settle` seconds for the machine to calm down.
        time.sleep(args.settle)
        start = time.time() + 1
        end = start + duration
        (work / "go.tmp").write_text(json.dumps([start, end]))
        (work / "go.tmp").rename(work / "go")

        # Half-way: the import, and a little later the Redis restart.
        time.sleep(max(0.0, start + duration * 0.5 - time.time()))
        t_import = time.time()
        import_out = open(work / "import.json", "w")
        import_proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "import", str(material), "--json"], cwd=ROOT,
            env={**base_env, "PGAPPNAME": f"{prefix}-import", "CHRYSOPEDIA_LLM_API_URL": "",
                 **({"CHRYSOPEDIA_IMPORT_NICE": str(args.import_nice)}
                    if args.import_nice is not None else {})},
            stdout=import_out, stderr=open(work / "import.err", "w"))
        time.sleep(max(0.0, start + duration * 0.6 - time.time()))
        t_kill = time.time()
        redis.kill()
        redis.start()
        t_up = time.time()

        # The end: users finish their question, copy back, report.
        for p in procs:
            try:
                p.wait(timeout=max(60.0, end + 90 - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
        import_proc.wait(timeout=1800)
        t_import_end = time.time()
        import_out.close()
        searcher.stop.set()
        searcher.join()
        sampler.stop.set()
        sampler.join()

        users = [json.loads(Path(s["result"]).read_text()) if Path(s["result"]).exists()
                 else {"user": s["user"], "crashed": "no result"} for s in specs]
        records = _server_records(model_port)
        model_cpu_s = _cpu_s(model_proc.pid)
        result = verify(users, records, schema, redis, key_prefix, args)
        import_report = {}
        if import_proc.returncode == 0:
            with contextlib.suppress(ValueError):
                import_report = json.loads((work / "import.json").read_text())
        during = searcher.ms(t_import, t_import_end)
        idle = [ms for t, ms in searcher.latencies if start <= t < t_import]
        ours = [s[1] for s in sampler.samples]
        result.update({
            "search_p95_during_import_ms": p95(during),
            "search_p95_idle_ms": p95(idle),
            "searches_during_import": len(during),
            "search_errors": len(searcher.errors),
            "pg_connections_max": max(ours) if ours else None,
            "pg_connections_budget": args.users + 10,
            "pg_connections_users_max": max((s[2] for s in sampler.samples), default=None),
            "pg_connections_db_max": max((s[3] for s in sampler.samples), default=None),
            "pg_sampler_error": sampler.error,
            "import_s": round(t_import_end - t_import, 1),
            "import_ok": import_proc.returncode == 0,
            "import_added": len(import_report.get("added", [])),
            "import_overlap_s": round(max(0.0, min(end, t_import_end) - t_import), 1),
            "redis_down_s": round(t_up - t_kill, 2),
            "users_startup_s": round(startup_s, 1),
            "minutes": args.minutes,
            "think_s": list(args.think),
            "rate_tokens_per_s": list(args.rate),
            "answer_tokens": args.answer_tokens,
            "load_average_1m_start": load_start,
            "load_average_1m_end": round(os.getloadavg()[0], 2),
            "model_server_cpu_s": model_cpu_s,
        })
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if import_proc is not None and import_proc.poll() is None:
            import_proc.kill()
        searcher.stop.set()
        sampler.stop.set()
        model_proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            model_proc.wait(timeout=10)
        if model_proc.poll() is None:
            model_proc.kill()
        redis.kill()
        if not args.keep_schema:
            _pg(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', fetch=False)


def verify(users: list[dict], records: list[dict], schema: str, redis, key_prefix: str,
           args) -> dict:
    """The run's figures, from what the users saw, the archive, Redis and the model server."""
    import redis as redis_lib

    crashed = [u for u in users if "crashed" in u]
    turns = [(u, t) for u in users if "turns" in u for t in u["turns"]]
    answered = [(u, t) for u, t in turns if t["done"] is not None]
    error_events = [t["error"] for _, t in turns if t["error"]]

    # The transcript archive: every answer's message row, answered, same text.
    rows = {r["id"]: r for r in _pg(
        "SELECT id, conversation_id, role, status, content, user_id FROM messages", schema=schema)}
    lost_transcript = 0
    for u, t in answered:
        row = rows.get(t["done"]["message_id"])
        if (row is None or row["status"] != "answered" or digest(row["content"]) != t["text"]
                or row["user_id"] != f"user-{u['user']}"):
            lost_transcript += 1
    answered_rows = sum(1 for r in rows.values() if r["role"] == "assistant"
                        and r["status"] == "answered")

    # Memory: each conversation's list in Redis holds each answer's turn, once.
    client = redis_lib.Redis.from_url(redis.url, decode_responses=True)
    memory: dict[str, list[dict]] = {}
    for cid in {u["cid"] for u in users if "cid" in u}:
        raw = client.get(key_prefix + cid)
        memory[cid] = json.loads(raw) if raw else []
    client.close()
    lost_memory = duplicated_memory = 0
    for u, t in answered:
        history = memory.get(u["cid"], [])
        found = [i for i in range(len(history) - 1)
                 if history[i]["role"] == "user" and history[i]["content"] == t["question"]]
        ok = [i for i in found if history[i + 1]["role"] == "assistant"
              and digest(history[i + 1]["content"]) == t["text"]]
        if not ok:
            lost_memory += 1
        elif len(found) > 1:
            duplicated_memory += 1
    memory_pairs = sum(len(h) // 2 for h in memory.values())
    local_left = _pg("SELECT count(*) AS n FROM chat_memory", schema=schema)[0]["n"]

    # Errors: events, and what the services logged that a Redis restart does not explain.
    logs = [e for u in users for e in u.get("logs", [])]
    at_start = [e for e in logs if e["event"] == FALLBACK_AT_START]
    unexplained = [e for e in logs if e["event"] not in EXPLAINED | {FALLBACK_AT_START}]
    kinds: dict[str, int] = {}
    for e in unexplained:
        kinds[e["event"]] = kinds.get(e["event"], 0) + 1
    for message in error_events:
        kinds[f"error event: {message[:80]}"] = kinds.get(f"error event: {message[:80]}", 0) + 1

    # Time to first token, minus the model server's own first-token delay for that request.
    by_model: dict[str, list[dict]] = {}
    for rec in records:
        if rec["path"].endswith("/chat/completions") and isinstance(rec["body"], dict):
            by_model.setdefault(rec["body"].get("model"), []).append(rec)
    ttft, ttft_raw, model_delay = [], [], []
    parts: dict[str, list[float]] = {"before_search": [], "memory": [], "search": [],
                                     "sources_to_first_token": []}
    unmatched = 0
    for u in users:
        recs = by_model.get(f"bench-u{u['user']}", [])
        asked = {}
        for rec in recs:
            messages = rec["body"].get("messages") or []
            asked[messages[-1]["content"] if messages else ""] = rec
        for t in u.get("turns", []):
            if t["first"] is None:
                continue
            raw = (t["first"] - t["t0"]) * 1000
            delay = 0.0
            if t["done"] and t["done"]["model"] not in ("no-sources", "offline"):
                rec = asked.get(t["question"])
                if rec is None or rec.get("first_token_at") is None:
                    unmatched += 1
                    continue
                delay = (rec["first_token_at"] - rec["received_at"]) * 1000
                model_delay.append(delay)
            ttft_raw.append(raw)
            ttft.append(raw - delay)
            if t["sources"] is not None:
                search_ms, memory_ms = t["search_ms"] or 0.0, t["memory_ms"] or 0.0
                parts["search"].append(search_ms)
                parts["memory"].append(memory_ms)
                parts["before_search"].append(
                    (t["sources"] - t["t0"]) * 1000 - search_ms - memory_ms)
                parts["sources_to_first_token"].append((t["first"] - t["sources"]) * 1000 - delay)

    dropped = [u for u in users if any(s["backend"] == "local" for s in u.get("states", []))]
    recovered = (
        not crashed
        and all(u.get("final", {}).get("backend") == "redis"
                and not u.get("final", {}).get("pending") for u in users)
        and lost_memory == 0 and local_left == 0
    )
    per_user = [sum(1 for t in u.get("turns", []) if t["done"]) for u in users]
    tiers: dict[str, int] = {}
    for _, t in answered:
        tiers[t["done"]["tier"]] = tiers.get(t["done"]["tier"], 0) + 1
    return {
        "users": args.users,
        "answers": len(answered),
        "lost_turns": lost_transcript + lost_memory,
        "errors": len(unexplained) + len(error_events),
        "ttft_p95_ms": p95(ttft),
        "search_p95_during_import_ms": None,
        "pg_connections_max": None,
        "redis_restart_recovered": recovered,
        "lost_turns_transcript": lost_transcript,
        "lost_turns_memory": lost_memory,
        "duplicated_turns_memory": duplicated_memory,
        "transcript_answered_rows": answered_rows,
        "memory_pairs": memory_pairs,
        "local_memory_rows_left": local_left,
        "error_kinds": kinds,
        "explained_events": sum(1 for e in logs if e["event"] in EXPLAINED),
        # Users whose memory started local (Redis's start-up probe had no answer in 0.5 s)
        # and went back to Redis at a later probe, their turns copied back.
        "memory_fallbacks_at_start": len(at_start),
        "cpu_ms_per_answer_p50": round(statistics.median(
            [t["cpu_ms"] for _, t in answered]), 1) if answered else None,
        "users_dropped_to_local": len(dropped),
        "turns_copied_back": sum(u.get("copied_back", 0) for u in users) // 2,
        "users_crashed": len(crashed),
        "crashes": [u["crashed"] for u in crashed][:3],
        "questions": len(turns),
        "answers_per_user_min": min(per_user) if per_user else 0,
        "answers_per_user_median": statistics.median(per_user) if per_user else 0,
        "answers_per_user_max": max(per_user) if per_user else 0,
        "tiers": tiers,
        "ttft_p50_ms": round(statistics.median(ttft), 1) if ttft else None,
        "ttft_raw_p95_ms": p95(ttft_raw),
        "model_first_token_p95_ms": p95(model_delay),
        "ttft_unmatched": unmatched,
        # Where the time to first token goes (p50 / p95 ms): the transcript write and the
        # rest before the memory read; the memory read; the search; from the sources to the
        # first token, minus the model's own delay (prompt, HTTP request, parsing).
        "ttft_parts_ms": {k: [round(statistics.median(v), 1), p95(v)] for k, v in parts.items()
                          if v},
        "model_requests": sum(len(v) for v in by_model.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--think", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN", "MAX"),
                        help="seconds between an answer and the next question (uniform)")
    parser.add_argument("--rate", type=float, nargs=2, default=(100.0, 300.0),
                        metavar=("MIN", "MAX"), help="the model's tokens per second (per answer)")
    parser.add_argument("--answer-tokens", type=int, default=200)
    parser.add_argument("--videos", type=int, default=200, help="yt-dlp downloads imported half-way")
    parser.add_argument("--memory-cap", type=int, default=1000,
                        help="memory messages kept per conversation (the app's: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--import-nice", type=int, metavar="N",
                        help="the import's import_nice (default: the product's, 10)")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds between the last terminal ready and the first question")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, results)")
    parser.add_argument("--keep-schema", action="store_true", help="do not drop the schema")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    if args.keep:
        work = Path(args.keep)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        result = run(args, work)
    else:
        with tempfile.TemporaryDirectory(prefix="chrysopedia-team-load-") as tmp:
            result = run(args, Path(tmp))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<32} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
