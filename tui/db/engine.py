"""Engine, sessions and the versioned schema, for SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg).

The schema version lives in `chrysopedia_meta`. A new database is created at
the current version; an older one is upgraded by the explicit steps in
MIGRATIONS; a newer one is refused with SchemaError.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tui.config import check_schema_name
from tui.db import search_index, vectors
from tui.db.models import Base, Meta
from tui.errors import SchemaError

SCHEMA_VERSION = 8


async def _v1_to_v2(conn: AsyncConnection) -> None:
    # v2: failed-turn messages keep their error; usage rows say when tokens were estimated.
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    msg_cols = await conn.run_sync(columns, "messages")
    if "error" not in msg_cols:
        await conn.execute(text("ALTER TABLE messages ADD COLUMN error TEXT"))
    usage_cols = await conn.run_sync(columns, "chat_usage_log")
    if "usage_estimated" not in usage_cols:
        await conn.execute(
            text("ALTER TABLE chat_usage_log ADD COLUMN usage_estimated BOOLEAN DEFAULT FALSE")
        )


async def _v2_to_v3(conn: AsyncConnection) -> None:
    # v3: imported material. Sections say where they are in their source (locator), pages
    # where they came from (origin, material key), creators their channel id; the
    # kb_files table (created by create_all) remembers every imported file.
    import json
    from importlib import resources

    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    added = {
        "creators": (("source_key", "VARCHAR(200)"),),
        "technique_pages": (
            ("origin", "VARCHAR(16) DEFAULT 'kb' NOT NULL"), ("material_key", "VARCHAR(1000)"),
            ("source_file", "TEXT"),
        ),
        "sections": (
            ("locator", "VARCHAR(16)"), ("first_page", "INTEGER"), ("last_page", "INTEGER"),
            ("line", "INTEGER"), ("source_path", "TEXT"),
        ),
    }
    for table, cols in added.items():
        have = await conn.run_sync(columns, table)
        for name, ddl in cols:
            if name not in have:
                await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    for ddl in (
        "CREATE INDEX IF NOT EXISTS ix_creators_source_key ON creators (source_key)",
        "CREATE INDEX IF NOT EXISTS ix_technique_pages_origin ON technique_pages (origin)",
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_technique_pages_material_key "
        "ON technique_pages (material_key)",
    ):
        await conn.execute(text(ddl))
    # The bundled pages loaded before v3 are the demo: marked so, they can be told apart
    # from the user's own and removed with `kb remove --demo`.
    if await get_meta(conn, "bundled_kb_hash") is not None:
        slugs: list[str] = []
        for file in (resources.files("tui") / "data" / "kb").iterdir():
            if file.name.endswith(".json"):
                doc = json.loads(file.read_text(encoding="utf-8"))
                slugs.extend(t["slug"] for t in doc.get("techniques", []))
        for start in range(0, len(slugs), 500):
            chunk = slugs[start : start + 500]
            marks = ", ".join(f":s{i}" for i in range(len(chunk)))
            await conn.execute(
                text(f"UPDATE technique_pages SET origin = 'demo' WHERE slug IN ({marks})"),
                {f"s{i}": slug for i, slug in enumerate(chunk)},
            )


async def _v3_to_v4(conn: AsyncConnection) -> None:
    # v4: each transcript message records who asked (`user_id`), as usage rows do.
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    if "user_id" not in await conn.run_sync(columns, "messages"):
        await conn.execute(text("ALTER TABLE messages ADD COLUMN user_id VARCHAR(200)"))


async def _v5_to_v6(conn: AsyncConnection) -> None:
    # v6: an answer keeps its claim check (messages.claims, JSON).
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    if "claims" not in await conn.run_sync(columns, "messages"):
        await conn.execute(text("ALTER TABLE messages ADD COLUMN claims JSON"))


async def _v6_to_v7(conn: AsyncConnection) -> None:
    # v7: usage rows say what the model was asked for ("answer", "distill"); older rows answered.
    # (The distilled_pages table of v7 is new: create_all, run before the steps, makes it.)
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    if "purpose" not in await conn.run_sync(columns, "chat_usage_log"):
        await conn.execute(text(
            "ALTER TABLE chat_usage_log ADD COLUMN purpose VARCHAR(16) NOT NULL DEFAULT 'answer'"
        ))


async def _v7_to_v8(conn: AsyncConnection) -> None:
    # v8: a video keeps the day it was published (info.json's upload_date, ISO YYYY-MM-DD).
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    if "upload_date" not in await conn.run_sync(columns, "videos"):
        await conn.execute(text("ALTER TABLE videos ADD COLUMN upload_date VARCHAR(10)"))
        # The yt-dlp downloads imported before were read without keeping the day: their file
        # records are made stale, so the next `chrysopedia import` of their folder reads them
        # once more (pages and sections keep their identities) instead of skipping them as
        # unchanged forever.
        await conn.execute(text(
            "UPDATE kb_files SET mtime = -1, content_hash = '' WHERE material_key LIKE 'youtube:%'"
        ))


# version N -> the step that upgrades a database at N-1 to N.
MIGRATIONS: dict[int, Callable[[AsyncConnection], Awaitable[None]]] = {
    2: _v1_to_v2,
    3: _v2_to_v3,
    4: _v3_to_v4,
    5: vectors.migrate,
    6: _v5_to_v6,
    7: _v6_to_v7,
    8: _v7_to_v8,
}


# PostgreSQL connections per process: kept open, and allowed on top for a moment. One
# terminal does one thing at a time (a question's statements run one after another), so
# each keeps one connection and may borrow a second (the TUI loading a list while an
# answer is saved); fifty terminals stay within the server's default max_connections of
# 100 with room for an import and for administration. Settings `database_pool_size`,
# `database_max_overflow`. SQLite keeps SQLAlchemy's defaults (a file has no such limit).
PG_POOL_SIZE = 1
PG_MAX_OVERFLOW = 1
# Seconds a statement waits for a pooled connection before failing (SQLAlchemy's default).
PG_POOL_TIMEOUT = 30.0


def application_name() -> str:
    """What pg_stat_activity shows for our connections: $PGAPPNAME as libpq reads it,
    else "chrysopedia" (a database administrator can count the app's connections)."""
    import os

    name = os.environ.get("PGAPPNAME", "").strip()
    return (name or "chrysopedia")[:63]


def _pg_connect_args(schema: str | None, connect_timeout: float | None) -> dict:
    connect_args: dict = {}
    server_settings = {"application_name": application_name()}
    if schema:
        if not isinstance(schema, str):
            raise SchemaError("?schema= is given more than once")
        try:
            check_schema_name(schema)
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
        # Quoted, so the name keeps its case (search_path folds bare names).
        server_settings["search_path"] = f'"{schema}"'
    connect_args["server_settings"] = server_settings
    if connect_timeout is not None:
        connect_args["timeout"] = connect_timeout
    return connect_args


def _engine_url(url: str, schema: str | None) -> tuple[str, str | None]:
    u = make_url(url)
    # `?schema=NAME` on a PostgreSQL URL selects a schema (several KBs in one database).
    if "schema" in u.query:
        schema = schema or u.query["schema"]
        u = u.difference_update_query(["schema"])
    # libpq's `?sslmode=` is asyncpg's `ssl` argument (same values).
    if "sslmode" in u.query and "ssl" not in u.query:
        u = u.update_query_dict({"ssl": u.query["sslmode"]}).difference_update_query(["sslmode"])
    return u.render_as_string(hide_password=False), schema


def make_engine(
    url: str, *, schema: str | None = None, connect_timeout: float | None = None,
    pool_size: int | None = None, max_overflow: int | None = None,
) -> AsyncEngine:
    """An async engine for `url`. `schema` sets the PostgreSQL search_path (tests use it);
    `connect_timeout` bounds each new PostgreSQL connection, start-up included (seconds);
    `pool_size` / `max_overflow`: PostgreSQL connections kept / borrowed on top (default
    PG_POOL_SIZE, PG_MAX_OVERFLOW)."""
    u = make_url(url)
    url, schema = _engine_url(url, schema)
    kwargs: dict = {}
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 15}
    else:
        kwargs["connect_args"] = _pg_connect_args(schema, connect_timeout)
        kwargs["pool_size"] = PG_POOL_SIZE if pool_size is None else pool_size
        kwargs["max_overflow"] = PG_MAX_OVERFLOW if max_overflow is None else max_overflow
        kwargs["pool_timeout"] = PG_POOL_TIMEOUT
    engine = create_async_engine(url, **kwargs)
    if u.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no branch
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

    return engine


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, through SQLAlchemy's and asyncpg's wrappers."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 6:
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
        seen += 1
    return None


async def ensure_pg_schema(engine: AsyncEngine, schema: str) -> bool:
    """Create the PostgreSQL schema `schema` unless it exists; True when it was created.

    Existence is checked first: `CREATE SCHEMA IF NOT EXISTS` needs CREATE on the
    database even when the schema is there, and a role that was given its schema
    by the owner has no such right. A role that may not create it gets SchemaError
    with the statement a database owner would run."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :name),"
                    " quote_ident(current_user), quote_ident(:name), current_database()"
                ),
                {"name": schema},
            )
        ).one()
        exists, role, quoted, database = row
        await conn.rollback()  # ends the read's implicit transaction
        if exists:
            return False
        try:
            async with conn.begin():
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        except DBAPIError as exc:
            state = sqlstate(exc)
            if state == "42501":  # insufficient_privilege
                raise SchemaError(
                    f"role {role} may not create schema {quoted} in database {database}; "
                    f"a database owner can run: CREATE SCHEMA {quoted} AUTHORIZATION {role};"
                ) from None
            if state in ("23505", "42P06"):  # another process created it just now
                return False
            raise
    return True


async def get_meta(conn: AsyncConnection, key: str) -> str | None:
    row = await conn.execute(select(Meta.value).where(Meta.key == key))
    return row.scalar_one_or_none()


async def set_meta(conn: AsyncConnection, key: str, value: str) -> None:
    existing = await get_meta(conn, key)
    if existing is None:
        await conn.execute(Meta.__table__.insert().values(key=key, value=value))
    elif existing != value:
        await conn.execute(Meta.__table__.update().where(Meta.key == key).values(value=value))


async def init_schema(engine: AsyncEngine) -> int:
    """Create, upgrade or refuse the schema. Returns the version now in place."""
    async with engine.begin() as conn:
        has_meta = await conn.run_sync(lambda c: inspect(c).has_table(Meta.__tablename__))
        version = None
        if has_meta:
            raw = await get_meta(conn, "schema_version")
            version = int(raw) if raw is not None and raw.isdigit() else None
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaError(
                f"the database has schema version {version}, newer than this Chrysopedia "
                f"understands ({SCHEMA_VERSION}); upgrade Chrysopedia or use another --db"
            )
        await conn.run_sync(Base.metadata.create_all)
        if version is None:
            version = SCHEMA_VERSION
        for step in range(version + 1, SCHEMA_VERSION + 1):
            if step in MIGRATIONS:
                await MIGRATIONS[step](conn)
        await set_meta(conn, "schema_version", str(SCHEMA_VERSION))
        await search_index.ensure_index(conn)
    return SCHEMA_VERSION


class Database:
    """An engine plus a session factory; `await db.init()` before use."""

    def __init__(
        self, url: str, *, schema: str | None = None, connect_timeout: float | None = None,
        pool_size: int | None = None, max_overflow: int | None = None,
    ) -> None:
        self.url = url
        self._connect_timeout = connect_timeout
        self.engine = make_engine(url, schema=schema, connect_timeout=connect_timeout,
                                  pool_size=pool_size, max_overflow=max_overflow)
        query = make_url(url).query
        self.schema = schema or (query.get("schema") if self.dialect == "postgresql" else None)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def init(self) -> int:
        """Make the database ready: its PostgreSQL schema created when new, then the
        tables created, upgraded or refused (`init_schema`)."""
        if self.schema:
            await ensure_pg_schema(self.engine, self.schema)
        return await init_schema(self.engine)

    def session(self) -> AsyncSession:
        return self.sessions()

    @contextlib.asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        """One process at a time through start-up (schema, tables, bundled KB) on PostgreSQL.

        A studio starts several terminals at once on a new schema; without this, all
        but one fail creating the same tables. An advisory lock on its own connection,
        keyed by the schema, outside the pool (the pool's connections, one or two, stay
        free for the start-up's own statements), closed when start-up is done.
        SQLite needs none: its writers already queue on the file lock."""
        if self.dialect != "postgresql":
            yield
            return
        from sqlalchemy.pool import NullPool

        key = f"chrysopedia:startup:{self.schema or ''}"
        url, schema = _engine_url(self.url, self.schema)
        lock_engine = create_async_engine(
            url, poolclass=NullPool,
            connect_args=_pg_connect_args(schema, self._connect_timeout),
        )
        try:
            async with lock_engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
                await conn.commit()
                try:
                    yield
                finally:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
                    await conn.commit()
        finally:
            await lock_engine.dispose()

    async def dispose(self) -> None:
        await self.engine.dispose()
