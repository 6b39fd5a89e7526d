"""The full-text search index over sections (owned by the search service).

`ensure_index(conn)` creates whatever the backend needs (idempotent, inside the
schema transaction); `rebuild_index(conn)` refreshes it after an import changed
the knowledge base (inside the import's transaction). An import of one file at
a time keeps it current page by page instead: `unindex_pages(conn, page_ids)`
before a page's rows change or go, `index_pages(conn, page_ids)` after they are
written, in the same transaction (work in proportion to the page, not the base).

One indexed document per section, with five fields in falling weight: page
title, section heading, page tags, page summary, section body.

- SQLite: `search_fts`, a contentless FTS5 table (`porter unicode61`), rowid =
  section id; ranked with `bm25()` and the weights in `SQLITE_BM25_WEIGHTS`.
  `search_head` indexes title, heading and tags alone (short posting lists for
  queries whose every word is very common).
- PostgreSQL: `search_docs`, one `tsvector` per section built with `setweight`
  (title and heading A, tags B, summary C, body D) under a GIN index; ranked by
  `ts_rank_cd` weighted by each term's IDF (the search service does that);
  `head` is the title, heading and tags part alone, under its own GIN index.

Both backends also keep the vocabulary for the fuzzy tier: `search_vocab`
(every word of the indexed text, folded to lower-case ASCII where possible,
with its section frequency) and `search_trigrams` (word trigrams, for finding
spelling neighbours). On PostgreSQL, when `pg_trgm` is installed or can be
installed, `search_vocab.term` also gets a trigram GIN index and the search
service uses `similarity()`; the trigram table is the fallback everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

# title, heading, tags, summary, body
SQLITE_BM25_WEIGHTS = (10.0, 8.0, 5.0, 2.0, 1.0)
# ts_rank_cd weights are given as {D, C, B, A}: body, summary, tags, title+heading.
PG_RANK_WEIGHTS = "{0.1, 0.25, 0.5, 1.0}"
PG_TS_CONFIG = "english"

# Bump when the index's shape or contents change: `ensure_index` then rebuilds it.
INDEX_VERSION = "2"
META_INDEX_VERSION = "search_index_version"
META_DOC_COUNT = "search_doc_count"

_WORD = re.compile(r"[^\W_]+")


def fold(word: str) -> str:
    """Lower-case, diacritics removed (as FTS5 unicode61 does)."""
    word = word.lower()
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text_: str) -> list[str]:
    """The words of a text as the search layer sees them (folded, split on non-letters)."""
    return [fold(w) for w in _WORD.findall(text_)]


def trigrams(word: str) -> set[str]:
    padded = f"^{word}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


# ---------------------------------------------------------------------- DDL

_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5("
    "title, heading, tags, summary, body, content='', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_head USING fts5("
    "title, heading, tags, content='', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TABLE IF NOT EXISTS search_vocab (term TEXT PRIMARY KEY, df INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_trigrams ("
    "tri TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (tri, term)) WITHOUT ROWID",
)

_PG_DDL = (
    "CREATE TABLE IF NOT EXISTS search_docs ("
    "section_id INTEGER PRIMARY KEY REFERENCES sections(id) ON DELETE CASCADE, "
    "page_id INTEGER NOT NULL, creator_id INTEGER NOT NULL, tsv tsvector NOT NULL, "
    "head tsvector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_search_docs_tsv ON search_docs USING GIN (tsv)",
    "CREATE INDEX IF NOT EXISTS ix_search_docs_head ON search_docs USING GIN (head)",
    "CREATE INDEX IF NOT EXISTS ix_search_docs_creator ON search_docs (creator_id)",
    "CREATE INDEX IF NOT EXISTS ix_search_docs_page ON search_docs (page_id)",
    "CREATE TABLE IF NOT EXISTS search_vocab (term TEXT PRIMARY KEY, df INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_trigrams ("
    "tri TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (tri, term))",
)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def pg_trgm_schema(conn: AsyncConnection) -> str | None:
    """The schema pg_trgm is installed in, or None."""
    row = await conn.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    )
    return row.scalar_one_or_none()


async def _ensure_pg_trgm(conn: AsyncConnection) -> str | None:
    """Install pg_trgm (in `public`, so per-test schemas do not own it) when allowed."""
    schema = await pg_trgm_schema(conn)
    if schema is not None:
        return schema
    try:
        async with conn.begin_nested():
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
    except (DBAPIError, ProgrammingError):
        pass  # not available or not allowed: the trigram table serves
    return await pg_trgm_schema(conn)


async def ensure_index(conn: AsyncConnection) -> None:
    if conn.dialect.name == "sqlite":
        for ddl in _SQLITE_DDL:
            await conn.execute(text(ddl))
        await _rebuild_if_stale(conn)
        return
    for ddl in _PG_DDL:
        await conn.execute(text(ddl))
    schema = await _ensure_pg_trgm(conn)
    if schema is not None:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    text(
                        "CREATE INDEX IF NOT EXISTS ix_search_vocab_trgm ON search_vocab "
                        f"USING GIN (term {_quote_ident(schema)}.gin_trgm_ops)"
                    )
                )
        except (DBAPIError, ProgrammingError):
            pass
    await merge_pending(conn)
    await _rebuild_if_stale(conn)


_PG_GIN = ("ix_search_docs_tsv", "ix_search_docs_head")


async def merge_pending(conn: AsyncConnection) -> None:
    """PostgreSQL: merge the GIN indexes' pending lists into the indexes.

    New entries of a GIN index (`fastupdate`, the default) wait in a pending list that
    every search reads through from start to end until a vacuum merges it; after a
    rebuild or an import it can hold up to 4 MB (`gin_pending_list_limit`). Measured at
    100k sections: a three-word title/heading lookup took 38 ms with the 261 + 126
    pages a rebuild left, 0.2 ms after the merge. Merged at the end of every index
    change and at start-up (a no-op when empty); not the owner of the index: the next
    (auto)vacuum merges them."""
    for index in _PG_GIN:
        try:
            async with conn.begin_nested():
                await conn.execute(text(f"SELECT gin_clean_pending_list('{index}'::regclass)"))
        except (DBAPIError, ProgrammingError):
            pass


async def _get_meta(conn: AsyncConnection, key: str) -> str | None:
    row = await conn.execute(text("SELECT value FROM chrysopedia_meta WHERE key = :k"), {"k": key})
    return row.scalar_one_or_none()


async def _set_meta(conn: AsyncConnection, key: str, value: str) -> None:
    await conn.execute(text("DELETE FROM chrysopedia_meta WHERE key = :k"), {"k": key})
    await conn.execute(
        text("INSERT INTO chrysopedia_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value}
    )


async def _rebuild_if_stale(conn: AsyncConnection) -> None:
    """A database indexed by an older version (or never) is re-indexed once."""
    if await _get_meta(conn, META_INDEX_VERSION) != INDEX_VERSION:
        await rebuild_index(conn)


# ------------------------------------------------------------------ rebuild

_SQLITE_FILL = """
INSERT INTO search_fts(rowid, title, heading, tags, summary, body)
SELECT s.id, p.title, s.heading,
       coalesce((SELECT group_concat(j.value, ' ') FROM json_each(p.tags) j
                 WHERE json_type(p.tags) = 'array'), ''),
       p.summary, s.body
FROM sections s JOIN technique_pages p ON p.id = s.page_id
"""

_SQLITE_FILL_HEAD = """
INSERT INTO search_head(rowid, title, heading, tags)
SELECT s.id, p.title, s.heading,
       coalesce((SELECT group_concat(j.value, ' ') FROM json_each(p.tags) j
                 WHERE json_type(p.tags) = 'array'), '')
FROM sections s JOIN technique_pages p ON p.id = s.page_id
"""

_PG_TAGS = (
    "coalesce((SELECT string_agg(t, ' ') FROM json_array_elements_text("
    "CASE WHEN json_typeof(p.tags) = 'array' THEN p.tags ELSE '[]'::json END) AS t), '')"
)

_PG_FILL = f"""
INSERT INTO search_docs (section_id, page_id, creator_id, tsv, head)
SELECT id, page_id, creator_id, head || setweight(to_tsvector('{PG_TS_CONFIG}', summary), 'C')
       || setweight(to_tsvector('{PG_TS_CONFIG}', body), 'D'), head
FROM (
  SELECT s.id, p.id AS page_id, p.creator_id, coalesce(p.summary, '') AS summary,
         coalesce(s.body, '') AS body,
         setweight(to_tsvector('{PG_TS_CONFIG}', coalesce(p.title, '')), 'A')
      || setweight(to_tsvector('{PG_TS_CONFIG}', coalesce(s.heading, '')), 'A')
      || setweight(to_tsvector('{PG_TS_CONFIG}', {_PG_TAGS}), 'B') AS head
  FROM sections s JOIN technique_pages p ON p.id = s.page_id
) x
"""

_TEXT_ROWS = """
SELECT s.page_id, p.title, p.tags, p.summary, s.heading, s.body
FROM sections s JOIN technique_pages p ON p.id = s.page_id
"""


def _tag_text(tags) -> str:
    if isinstance(tags, str):  # JSON not decoded by a text() query
        import json

        try:
            tags = json.loads(tags)
        except ValueError:
            return ""
    if isinstance(tags, list):
        return " ".join(t for t in tags if isinstance(t, str))
    return ""


def vocabulary(rows: Iterable[tuple], df: Counter[str] | None = None) -> Counter[str]:
    """Section frequency of every vocabulary word (≥ 3 characters, not only digits),
    added to `df` when given (rows read in chunks)."""
    df = Counter() if df is None else df
    # the page's words are kept for the page's next rows only (rows come page by page
    # in practice): memory stays flat however many pages there are
    last_page, pw = None, set()
    for page_id, title, tags, summary, heading, body in rows:
        if page_id != last_page or last_page is None:
            pw = set(words(f"{title or ''} {_tag_text(tags)} {summary or ''}"))
            last_page = page_id
        section = pw | set(words(f"{heading or ''} {body or ''}"))
        df.update(w for w in section if len(w) >= 3 and not w.isdigit())
    return df


# A transcript page its distilled page replaced stays out of the index: the distilled
# page answers for it (`tui/db/distill_store.py`).
_NOT_REPLACED = " WHERE s.page_id NOT IN (SELECT raw_page_id FROM distilled_pages)"


async def rebuild_index(conn: AsyncConnection) -> None:
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        await conn.execute(text("INSERT INTO search_fts(search_fts) VALUES('delete-all')"))
        await conn.execute(text(_SQLITE_FILL + _NOT_REPLACED))
        await conn.execute(text("INSERT INTO search_head(search_head) VALUES('delete-all')"))
        await conn.execute(text(_SQLITE_FILL_HEAD + _NOT_REPLACED))
    else:
        await conn.execute(text("DELETE FROM search_docs"))
        inner = _PG_FILL.rstrip().removesuffix(") x")
        await conn.execute(text(inner + _NOT_REPLACED + "\n) x"))

    if sqlite:
        df = vocabulary((await conn.execute(text(_TEXT_ROWS + _NOT_REPLACED))).all())
    else:  # a server-side cursor: a million sections' text is never in memory at once
        df = Counter()
        result = await conn.stream(text(_TEXT_ROWS + _NOT_REPLACED))
        async for chunk in result.partitions(5000):
            vocabulary(chunk, df)
    await conn.execute(text("DELETE FROM search_trigrams"))
    await conn.execute(text("DELETE FROM search_vocab"))
    if df:
        terms = sorted(df)
        await conn.execute(
            text("INSERT INTO search_vocab (term, df) VALUES (:term, :df)"),
            [{"term": t, "df": df[t]} for t in terms],
        )
        await conn.execute(
            text("INSERT INTO search_trigrams (tri, term) VALUES (:tri, :term)"),
            [{"tri": tri, "term": t} for t in terms for tri in sorted(trigrams(t))],
        )
    await _set_doc_count(conn)
    await _set_meta(conn, META_INDEX_VERSION, INDEX_VERSION)
    if not sqlite:
        await merge_pending(conn)
        await conn.execute(text("ANALYZE search_docs"))
        await conn.execute(text("ANALYZE search_vocab"))
        await conn.execute(text("ANALYZE search_trigrams"))


# ------------------------------------------------------- page by page

_SQLITE_UNFILL = """
INSERT INTO search_fts(search_fts, rowid, title, heading, tags, summary, body)
SELECT 'delete', s.id, p.title, s.heading,
       coalesce((SELECT group_concat(j.value, ' ') FROM json_each(p.tags) j
                 WHERE json_type(p.tags) = 'array'), ''),
       p.summary, s.body
FROM sections s JOIN technique_pages p ON p.id = s.page_id
"""

_SQLITE_UNFILL_HEAD = """
INSERT INTO search_head(search_head, rowid, title, heading, tags)
SELECT 'delete', s.id, p.title, s.heading,
       coalesce((SELECT group_concat(j.value, ' ') FROM json_each(p.tags) j
                 WHERE json_type(p.tags) = 'array'), '')
FROM sections s JOIN technique_pages p ON p.id = s.page_id
"""


def _in(column: str, ids: list[int]) -> tuple[str, dict[str, int]]:
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    return f" WHERE {column} IN ({marks})", {f"i{n}": i for n, i in enumerate(ids)}


async def _page_vocabulary(conn: AsyncConnection, page_ids: list[int]) -> Counter[str]:
    where, params = _in("s.page_id", page_ids)
    return vocabulary((await conn.execute(text(_TEXT_ROWS + where), params)).all())


async def _set_doc_count(conn: AsyncConnection) -> None:
    """The number of sections the index holds (what ranking divides by)."""
    count = (await conn.execute(text("SELECT count(*) FROM sections s" + _NOT_REPLACED))).scalar_one()
    await _set_meta(conn, META_DOC_COUNT, str(count))


def _chunks(items: list[str], size: int = 400) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def index_pages(conn: AsyncConnection, page_ids: Iterable[int]) -> None:
    """Add these pages' sections (as they are now in the tables) to the index.

    The pages must not be in the index already (`unindex_pages` first when they were).
    """
    ids = sorted(set(page_ids))
    if not ids:
        return
    where, params = _in("s.page_id", ids)
    if conn.dialect.name == "sqlite":
        await conn.execute(text(_SQLITE_FILL + where), params)
        await conn.execute(text(_SQLITE_FILL_HEAD + where), params)
    else:
        inner = _PG_FILL.rstrip().removesuffix(") x")
        await conn.execute(text(inner + where + "\n) x"), params)
        await merge_pending(conn)
    df = await _page_vocabulary(conn, ids)
    if df and conn.dialect.name != "sqlite":
        await _pg_vocab_add(conn, df, 1)
    elif df:
        terms = sorted(df)
        known: set[str] = set()
        for chunk in _chunks(terms):
            marks = ", ".join(f":t{n}" for n in range(len(chunk)))
            rows = await conn.execute(
                text(f"SELECT term FROM search_vocab WHERE term IN ({marks})"),
                {f"t{n}": t for n, t in enumerate(chunk)},
            )
            known.update(r[0] for r in rows)
        if known:
            await conn.execute(
                text("UPDATE search_vocab SET df = df + :df WHERE term = :term"),
                [{"term": t, "df": df[t]} for t in terms if t in known],
            )
        new = [t for t in terms if t not in known]
        if new:
            await conn.execute(
                text("INSERT INTO search_vocab (term, df) VALUES (:term, :df)"),
                [{"term": t, "df": df[t]} for t in new],
            )
            await conn.execute(
                text("INSERT INTO search_trigrams (tri, term) VALUES (:tri, :term)"),
                [{"tri": tri, "term": t} for t in new for tri in sorted(trigrams(t))],
            )
    await _set_doc_count(conn)


async def indexed_pages(conn: AsyncConnection, page_ids: list[int]) -> list[int]:
    """Those of `page_ids` whose sections are in the index (a page is in whole or not at all)."""
    if not page_ids:
        return []
    if conn.dialect.name == "sqlite":
        where, params = _in("s.page_id", page_ids)
        sql = ("SELECT DISTINCT s.page_id FROM sections s" + where
               + " AND EXISTS (SELECT 1 FROM search_fts f WHERE f.rowid = s.id)")
    else:
        where, params = _in("page_id", page_ids)
        sql = "SELECT DISTINCT page_id FROM search_docs" + where
    return sorted(r[0] for r in await conn.execute(text(sql), params))


async def unindex_pages(conn: AsyncConnection, page_ids: Iterable[int]) -> None:
    """Take these pages' sections out of the index, before their rows change or go.

    SQLite's contentless FTS5 tables forget a row only when given the text it was
    indexed with: that is read from the rows as they still are. Pages the index does
    not hold (a transcript page its distilled page replaced) are left alone: told to
    forget a row it never had, FTS5 corrupts its index.
    """
    ids = await indexed_pages(conn, sorted(set(page_ids)))
    if not ids:
        return
    where, params = _in("s.page_id", ids)
    df = await _page_vocabulary(conn, ids)
    if conn.dialect.name == "sqlite":
        await conn.execute(text(_SQLITE_UNFILL + where), params)
        await conn.execute(text(_SQLITE_UNFILL_HEAD + where), params)
    else:
        pg_where, pg_params = _in("page_id", ids)
        await conn.execute(text("DELETE FROM search_docs" + pg_where), pg_params)
    if df and conn.dialect.name != "sqlite":
        await _pg_vocab_add(conn, df, -1)
    elif df:
        terms = sorted(df)
        await conn.execute(
            text("UPDATE search_vocab SET df = df - :df WHERE term = :term"),
            [{"term": t, "df": df[t]} for t in terms],
        )
        for chunk in _chunks(terms):
            marks = ", ".join(f":t{n}" for n in range(len(chunk)))
            gone = [
                r[0]
                for r in await conn.execute(
                    text(f"SELECT term FROM search_vocab WHERE df <= 0 AND term IN ({marks})"),
                    {f"t{n}": t for n, t in enumerate(chunk)},
                )
            ]
            if gone:
                marks = ", ".join(f":g{n}" for n in range(len(gone)))
                values = {f"g{n}": t for n, t in enumerate(gone)}
                # by the whole primary key: a lookup by term alone scans the table
                await conn.execute(
                    text("DELETE FROM search_trigrams WHERE tri = :tri AND term = :term"),
                    [{"tri": tri, "term": t} for t in gone for tri in sorted(trigrams(t))],
                )
                await conn.execute(text(f"DELETE FROM search_vocab WHERE term IN ({marks})"), values)


async def _pg_vocab_add(conn: AsyncConnection, df: Counter[str], sign: int) -> None:
    """PostgreSQL: add (or take away) section counts in one upsert, arbitrated by the
    primary key. Looking terms up with `term IN (...)` lets the planner pick the
    pg_trgm GIN index, which answers equality slowly (seconds for a few hundred terms)."""
    terms = sorted(df)
    rows = (await conn.execute(
        text(
            "INSERT INTO search_vocab AS v (term, df) "
            "SELECT * FROM unnest(CAST(:terms AS text[]), CAST(:dfs AS integer[])) "
            "ON CONFLICT (term) DO UPDATE SET df = v.df + excluded.df "
            "RETURNING v.term, v.df, (v.xmax = 0) AS inserted"
        ),
        {"terms": terms, "dfs": [sign * df[t] for t in terms]},
    )).all()
    if sign > 0:
        new = [r[0] for r in rows if r[2]]
    else:
        new = [r[0] for r in rows if r[1] <= 0]
        if new:
            await conn.execute(text("DELETE FROM search_vocab WHERE df <= 0"))
    if not new:
        return
    pairs = [(tri, t) for t in new for tri in sorted(trigrams(t))]
    params = {"tris": [p[0] for p in pairs], "terms": [p[1] for p in pairs]}
    if sign > 0:
        await conn.execute(text(
            "INSERT INTO search_trigrams (tri, term) SELECT * FROM "
            "unnest(CAST(:tris AS text[]), CAST(:terms AS text[])) ON CONFLICT DO NOTHING"), params)
    else:
        await conn.execute(text(
            "DELETE FROM search_trigrams t USING unnest(CAST(:tris AS text[]), CAST(:terms AS text[])) "
            "AS u(tri, term) WHERE t.tri = u.tri AND t.term = u.term"), params)
