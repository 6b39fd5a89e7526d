"""Engine, sessions and the versioned schema, for SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg).

The schema version lives in `chrysopedia_meta`. A new database is created at
the current version; an older one is upgraded by the explicit steps in
MIGRATIONS; a newer one is refused with SchemaError.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tui.db import search_index, vectors
from tui.db.models import Base, Meta
from tui.errors import SchemaError

SCHEMA_VERSION = 7


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


async def _v5_to_v6(conn: AsyncConnection) -> None:
    # v6: an answer keeps its claim check (messages.claims, JSON).
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    if "claims" not in await conn.run_sync(columns, "messages"):
        await conn.execute(text("ALTER TABLE messages ADD COLUMN claims JSON"))


async def _unchanged(conn: AsyncConnection) -> None:
    """A version number whose step changes nothing in this schema."""


async def _v6_to_v7(conn: AsyncConnection) -> None:
    # v7: usage rows say what the model was asked for ("answer", "distill"); older rows answered.
    # (The distilled_pages table of v7 is new: create_all, run before the steps, makes it.)
    def columns(sync_conn, table: str) -> set[str]:
        return {c["name"] for c in inspect(sync_conn).get_columns(table)}

    if "purpose" not in await conn.run_sync(columns, "chat_usage_log"):
        await conn.execute(text(
            "ALTER TABLE chat_usage_log ADD COLUMN purpose VARCHAR(16) NOT NULL DEFAULT 'answer'"
        ))


# version N -> the step that upgrades a database at N-1 to N.
MIGRATIONS: dict[int, Callable[[AsyncConnection], Awaitable[None]]] = {
    2: _v1_to_v2,
    3: _v2_to_v3,
    4: _unchanged,
    5: vectors.migrate,
    6: _v5_to_v6,
    7: _v6_to_v7,
}


def make_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An async engine for `url`. `schema` sets the PostgreSQL search_path (tests use it)."""
    u = make_url(url)
    # `?schema=NAME` on a PostgreSQL URL selects a schema (several KBs in one database).
    if "schema" in u.query:
        schema = schema or u.query["schema"]
        u = u.difference_update_query(["schema"])
        url = u.render_as_string(hide_password=False)
    kwargs: dict = {}
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 15}
    elif schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
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

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.engine = make_engine(url, schema=schema)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def init(self) -> int:
        return await init_schema(self.engine)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def dispose(self) -> None:
        await self.engine.dispose()
