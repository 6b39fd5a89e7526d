"""Two terminals on one conversation while Redis restarts (found by bench/team_load.py's
pairs): each keeps its turns locally, and each one's copy-back brings them all to Redis,
whichever copies back first (the first deletes the shared local row). Against a private
redis-server, on SQLite and PostgreSQL local stores."""

from __future__ import annotations

import pytest
from redis_proc import REDIS_SERVER, RedisProcess

from tui.config import Settings
from tui.services.history import open_history, validate_conversation_id

needs_redis_server = pytest.mark.skipif(REDIS_SERVER is None,
                                        reason="redis-server is not installed")

AOF = ("--appendonly", "yes", "--appendfsync", "always")


@needs_redis_server
@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "no-persistence"])
async def test_two_terminals_keep_turns_locally_and_both_copy_back(db, tmp_path, persistent):
    server = RedisProcess(tmp_path / "redis", args=AOF if persistent else ()).start()
    settings = Settings(data_dir=tmp_path / "data", redis_url=server.url)
    a = await open_history(settings, db, retry_interval=3600, max_messages=100)
    b = await open_history(settings, db, retry_interval=3600, max_messages=100)
    cid = validate_conversation_id(None)
    try:
        await a.append(cid, "a0", "A0")
        await b.append(cid, "b0", "B0")
        server.kill()
        server.start()  # back at once, but each terminal learns it at its next probe
        a._drop(ConnectionError("killed"))
        b._drop(ConnectionError("killed"))
        await a.append(cid, "a1", "A1")
        await b.append(cid, "b1", "B1")
        await a.append(cid, "a2", "A2")
        assert a.state.backend == b.state.backend == "local"
        # A copies back first (and deletes the local row both wrote to), then B.
        assert (await a.probe(force=True)).backend == "redis"
        assert (await b.probe(force=True)).backend == "redis"
        stored = await a.redis.load(cid)
        questions = [m["content"] for m in stored if m["role"] == "user"]
        answers = {m["content"] for m in stored if m["role"] == "assistant"}
        # Every turn written while Redis was away, once; with the server's file, also the
        # turns from before (without it, those Redis forgot come from the local seeds).
        assert sorted(questions) == ["a0", "a1", "a2", "b0", "b1"]
        assert answers == {"A0", "A1", "A2", "B0", "B1"}
        assert b.copied_back == 2 and a.copied_back == 4
    finally:
        await a.close()
        await b.close()
        server.kill()
