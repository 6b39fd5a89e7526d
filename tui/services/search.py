"""SearchService: cascade retrieval over the knowledge base's sections.

`await SearchService(settings).search(query, scope="all", limit=10, db=database,
creator=None)` returns `{"items": [...], "cascade_tier": str}`.

The query is reduced to its informative words (folded to lower case, split on
anything that is not a letter or digit, stopwords removed unless nothing else
is left, at most MAX_TERMS of them). Only those words reach the database, each
one quoted (FTS5) or passed as its own bind parameter (PostgreSQL), so no user
text is ever SQL or full-text syntax.

The cascade stops at the first tier with at least ENOUGH_HITS (3) sections
(or `limit`, if smaller; the creator tier: any section); when no tier has that
many, the first tier with any hit wins, and `none` means nothing matched:

- `creator`: only the chosen creator's sections (slug or name) that contain at
  least half of the query's words (all words first). The cascade leaves the
  chosen creator only when they have nothing.
- `global`: all creators, sections containing every word.
- `relaxed`: all creators, sections containing any word, ranked by BM25 (rare
  words and several matched words rank first). Skipped when a word the index
  does not know looks like a misspelling of one it does: that is `fuzzy`'s job.
- `fuzzy`: words the index does not know are replaced by their spelling
  neighbours in the index vocabulary (trigram candidates, then Damerau
  edit distance ≤ 1, or ≤ 2 for words of 8+ letters, plus prefix completions);
  all word groups first, then any.
- `none`: nothing matched; `items` is empty.

Ranking: SQLite FTS5 `bm25()` with field weights title 10, heading 8, tags 5,
summary 2, body 1 (porter stemming). PostgreSQL: `ts_rank_cd` over a weighted
tsvector (A title+heading, B tags, C summary, D body), summed per word and
weighted by the word's IDF. Ties fall to the section id. One page contributes
at most MAX_PER_PAGE sections.

Work is bounded: ranking reads at most the matches of the query's words, and a
query whose words are all very common (each in more than COMMON_FRACTION of the
sections) is first answered from the title, heading and tag fields only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from tui.db import search_index
from tui.db.search_index import fold, trigrams, words

ENOUGH_HITS = 3  # sections, after the per-page cap (or `limit`, if smaller)
CREATOR_ENOUGH_HITS = 1  # the chosen creator is left only when they have nothing
MAX_PER_PAGE = 2
MAX_TERMS = 12
MAX_QUERY_CHARS = 2000
MAX_WORD_CHARS = 40  # longer "words" are noise (pasted hashes, key mashing)
# a word's section frequency is counted up to this many (bounded work)
DF_COUNT_CAP = 1000
COMMON_FRACTION = 0.2
# candidates fetched per wanted item, before the per-page cap
CANDIDATE_FACTOR = 4

TIERS = ("creator", "global", "relaxed", "fuzzy", "none")

# Snowball's English list (PostgreSQL's `english` stopwords) plus the filler of
# producers' questions. Removed from queries; they never drive the ranking.
STOPWORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some
    such no nor not only own same so than too very s t can will just don should now d ll m o re
    ve y ain aren couldn didn doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn
    weren won wouldn
    also get gets getting got make makes making want wanted need needs would could might
    really way ways thing things something anything stuff good best better tips tip trick
    tricks help please know let lets use using used like one someone whats hows im ive id
    dont doesnt cant wont isnt youre
    """.split()
)


def query_terms(query: str) -> list[str]:
    """The informative words of a query, in order, unique, at most MAX_TERMS."""
    seen: list[str] = []
    for word in words(query[:MAX_QUERY_CHARS]):
        if (len(word) >= 2 or word.isdigit()) and len(word) <= MAX_WORD_CHARS and word not in seen:
            seen.append(word)
    informative = [w for w in seen if w not in STOPWORDS]
    return (informative or seen)[:MAX_TERMS]


def edit_distance(a: str, b: str, bound: int) -> int:
    """Optimal string alignment distance (a swap counts 1), or bound+1 when above bound."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > bound:
            return bound + 1
        prev2, prev = prev, cur
    return prev[-1]


def allowed_distance(word: str) -> int:
    if len(word) < 4:
        return 0
    return 1 if len(word) < 8 else 2


@dataclass
class Group:
    """One query word and its alternatives (spelling neighbours, prefix completions)."""

    word: str
    alternatives: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [self.word, *[a for a in self.alternatives if a != self.word]]


# ------------------------------------------------------------------ backends


class _Backend:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return (await self.session.execute(text(sql), params or {})).scalar()

    async def doc_count(self) -> int:
        raw = await self.scalar(
            "SELECT value FROM chrysopedia_meta WHERE key = :k",
            {"k": search_index.META_DOC_COUNT},
        )
        return int(raw) if raw and str(raw).isdigit() else 0

    async def dfs(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        """Section frequency of each word: the vocabulary's count for the word as written,
        else the index's count for its stem, counted up to `cap` (bounded work)."""
        if not terms:
            return {}
        stmt = text("SELECT term, df FROM search_vocab WHERE term IN :terms").bindparams(
            bindparam("terms", expanding=True)
        )
        found = {r[0]: int(r[1]) for r in await self.session.execute(stmt, {"terms": list(terms)})}
        rest = [t for t in terms if t not in found]
        if rest:
            found.update(await self.counts(rest, cap))
        return {t: found.get(t, 0) for t in terms}

    async def counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:  # pragma: no cover
        raise NotImplementedError

    async def neighbours(self, word: str) -> list[tuple[str, int]]:
        """Vocabulary words sharing trigrams with `word`: (term, df), best first."""
        tris = sorted(trigrams(word))
        stmt = text(
            "SELECT t.term, v.df, count(*) AS shared FROM search_trigrams t "
            "JOIN search_vocab v ON v.term = t.term WHERE t.tri IN :tris "
            "GROUP BY t.term, v.df ORDER BY shared DESC, v.df DESC, t.term LIMIT 40"
        ).bindparams(bindparam("tris", expanding=True))
        rows = (await self.session.execute(stmt, {"tris": tris})).all()
        return [(r[0], int(r[1])) for r in rows]

    async def completions(self, word: str) -> list[tuple[str, int]]:
        rows = (
            await self.session.execute(
                text(
                    "SELECT term, df FROM search_vocab WHERE term > :lo AND term < :hi "
                    "ORDER BY df DESC, term LIMIT 3"
                ),
                {"lo": word, "hi": word + "\uffff"},
            )
        ).all()
        return [(r[0], int(r[1])) for r in rows]


class _SQLite(_Backend):
    WEIGHTS = ", ".join(str(w) for w in search_index.SQLITE_BM25_WEIGHTS)

    @staticmethod
    def _phrase(word: str) -> str:
        return '"' + word.replace('"', '""') + '"'

    def expression(self, groups: Sequence[Group], mode: str, head_only: bool = False) -> str:
        parts = []
        for g in groups:
            alts = [self._phrase(w) for w in g.all]
            parts.append("(" + " OR ".join(alts) + ")" if len(alts) > 1 else alts[0])
        expr = (" AND " if mode == "and" else " OR ").join(parts)
        if head_only:
            expr = "{title heading tags} : (" + expr + ")"
        return expr

    async def counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        cols = ", ".join(
            f"(SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH :t{i} "
            f"LIMIT :cap))"
            for i in range(len(terms))
        )
        params: dict[str, Any] = {f"t{i}": self._phrase(t) for i, t in enumerate(terms)}
        params["cap"] = cap
        row = (await self.session.execute(text(f"SELECT {cols}"), params)).one()
        return {t: int(row[i]) for i, t in enumerate(terms)}

    async def rank(
        self, groups: Sequence[Group], mode: str, n: int, creator_id: int | None,
        head_only: bool = False,
    ) -> list[tuple[int, float]]:
        params: dict[str, Any] = {"q": self.expression(groups, mode, head_only), "n": n}
        where = "search_fts MATCH :q"
        if creator_id is not None:
            where += (
                " AND search_fts.rowid IN (SELECT s.id FROM sections s JOIN technique_pages p "
                "ON p.id = s.page_id WHERE p.creator_id = :cid)"
            )
            params["cid"] = creator_id
        sql = (
            f"SELECT search_fts.rowid, bm25(search_fts, {self.WEIGHTS}) AS r FROM search_fts "
            f"WHERE {where} ORDER BY r, search_fts.rowid LIMIT :n"
        )
        rows = (await self.session.execute(text(sql), params)).all()
        return [(int(r[0]), -float(r[1])) for r in rows]

    async def containing(self, word: str, ids: Sequence[int]) -> set[int]:
        stmt = text(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH :q AND rowid IN :ids"
        ).bindparams(bindparam("ids", expanding=True))
        rows = await self.session.execute(stmt, {"q": self._phrase(word), "ids": list(ids)})
        return {int(r[0]) for r in rows}


class _Postgres(_Backend):
    CONFIG = search_index.PG_TS_CONFIG

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._trgm_schema: str | None | bool = False  # False: not looked up yet

    def _group_query(self, g: Group, i: int, params: dict[str, Any]) -> str:
        parts = []
        for j, w in enumerate(g.all):
            params[f"w{i}_{j}"] = w
            parts.append(f"plainto_tsquery('{self.CONFIG}', :w{i}_{j})")
        return "(" + " || ".join(parts) + ")"

    async def counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        params: dict[str, Any] = {"cap": cap}
        cols = []
        for i, t in enumerate(terms):
            params[f"t{i}"] = t
            cols.append(
                f"(SELECT count(*) FROM (SELECT 1 FROM search_docs WHERE tsv @@ "
                f"plainto_tsquery('{self.CONFIG}', :t{i}) LIMIT :cap) x{i})"
            )
        row = (await self.session.execute(text("SELECT " + ", ".join(cols)), params)).one()
        return {t: int(row[i]) for i, t in enumerate(terms)}

    async def rank(
        self, groups: Sequence[Group], mode: str, n: int, creator_id: int | None,
        head_only: bool = False, idf: dict[str, float] | None = None,
    ) -> list[tuple[int, float]]:
        params: dict[str, Any] = {"n": n}
        queries = [self._group_query(g, i, params) for i, g in enumerate(groups)]
        weights = search_index.PG_RANK_WEIGHTS
        terms = []
        for i, (g, q) in enumerate(zip(groups, queries, strict=True)):
            params[f"idf{i}"] = (idf or {}).get(g.word, 1.0)
            terms.append(f":idf{i} * ts_rank_cd('{weights}', d.tsv, {q}, 1)")
        match = "(" + (" && " if mode == "and" else " || ").join(queries) + ")"
        # `head` holds title, heading and tags only: a much smaller posting list.
        where = f"d.head @@ {match}" if head_only else f"d.tsv @@ {match}"
        if creator_id is not None:
            where += " AND d.creator_id = :cid"
            params["cid"] = creator_id
        sql = (
            f"SELECT d.section_id, ({' + '.join(terms)}) AS r FROM search_docs d "
            f"WHERE {where} ORDER BY r DESC, d.section_id LIMIT :n"
        )
        rows = (await self.session.execute(text(sql), params)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    async def containing(self, word: str, ids: Sequence[int]) -> set[int]:
        stmt = text(
            f"SELECT section_id FROM search_docs WHERE section_id IN :ids AND "
            f"tsv @@ plainto_tsquery('{self.CONFIG}', :w)"
        ).bindparams(bindparam("ids", expanding=True))
        rows = await self.session.execute(stmt, {"w": word, "ids": list(ids)})
        return {int(r[0]) for r in rows}

    async def neighbours(self, word: str) -> list[tuple[str, int]]:
        if self._trgm_schema is False:
            conn = await self.session.connection()
            schema = await search_index.pg_trgm_schema(conn)
            has_index = await self.scalar(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_search_vocab_trgm' "
                "AND schemaname = current_schema()"
            )
            self._trgm_schema = schema if has_index else None
        if self._trgm_schema:
            s = '"' + str(self._trgm_schema).replace('"', '""') + '"'
            try:
                async with self.session.begin_nested():
                    rows = (
                        await self.session.execute(
                            text(
                                f"SELECT term, df FROM search_vocab WHERE term OPERATOR({s}.%) :w "
                                f"ORDER BY {s}.similarity(term, :w) DESC, df DESC, term LIMIT 40"
                            ),
                            {"w": word},
                        )
                    ).all()
                return [(r[0], int(r[1])) for r in rows]
            except Exception:  # the extension went away: the trigram table serves
                self._trgm_schema = None
        return await super().neighbours(word)


# ------------------------------------------------------------------- service

_DETAILS = text(
    "SELECT s.id, s.page_id, s.anchor, s.heading, s.body, s.video_id, s.start_time, s.end_time, "
    "p.slug, p.title, p.topic_category, p.summary, c.slug, c.name, v.title, v.filename, v.url "
    "FROM sections s JOIN technique_pages p ON p.id = s.page_id "
    "JOIN creators c ON c.id = p.creator_id LEFT JOIN videos v ON v.id = s.video_id "
    "WHERE s.id IN :ids"
).bindparams(bindparam("ids", expanding=True))


class SearchService:
    """Cascade search over sections. Construction is cheap; state lives per call."""

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    async def search(
        self,
        query: str,
        scope: str = "all",
        limit: int = 10,
        db: Any = None,
        creator: str | None = None,
    ) -> dict[str, Any]:
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the search query is empty: type some words to search for")
        if db is None:
            raise ValueError("search needs a database (db=)")
        limit = max(1, min(int(limit), 100))
        if isinstance(db, AsyncSession):
            return await _Run(db, limit).search(query, creator)
        async with db.session() as session:
            return await _Run(session, limit).search(query, creator)


class _Run:
    """One search call: the session, the backend and what was learned so far."""

    def __init__(self, session: AsyncSession, limit: int) -> None:
        self.session = session
        self.limit = limit
        self.enough = min(ENOUGH_HITS, limit)
        dialect = session.get_bind().dialect.name
        self.backend: _SQLite | _Postgres = (
            _SQLite(session) if dialect == "sqlite" else _Postgres(session)
        )
        self.idf: dict[str, float] = {}

    async def search(self, query: str, creator: str | None) -> dict[str, Any]:
        terms = query_terms(query)
        if not terms:
            return {"items": [], "cascade_tier": "none"}
        n_docs = await self.backend.doc_count()
        dfs = await self.backend.dfs(terms, DF_COUNT_CAP)
        for t in terms:
            self.idf[t] = _idf(n_docs, dfs[t])
        known = [t for t in terms if dfs[t] > 0]
        unknown = [t for t in terms if dfs[t] == 0]
        common = bool(known) and n_docs >= 1000 and all(
            dfs[t] > COMMON_FRACTION * n_docs for t in known
        )

        fallback: tuple[str, list[dict[str, Any]]] | None = None

        def take(tier: str, items: list[dict[str, Any]]) -> bool:
            nonlocal fallback
            if items and fallback is None:
                fallback = (tier, items)
            return len(items) >= (CREATOR_ENOUGH_HITS if tier == "creator" else self.enough)

        # creator
        if creator is not None and str(creator).strip():
            cid = await self._creator_id(str(creator).strip())
            if cid is not None and known:
                items = await self._creator_tier(terms, known, cid, common)
                if take("creator", items):
                    return _result("creator", items)

        groups_known = [Group(t) for t in known]
        # global: every word must be there (an unknown word matches nothing)
        if known and not unknown:
            items = await self._ranked(groups_known, "and", None, common)
            if take("global", items):
                return _result("global", items)

        corrections = {t: await self._corrections(t) for t in unknown}
        correctable = any(corrections.values())
        # relaxed: any word, as typed (skipped when a typo can be corrected instead)
        if known and not correctable and (len(known) > 1 or unknown):
            items = await self._ranked(groups_known, "or", None, common)
            if take("relaxed", items):
                return _result("relaxed", items)

        # fuzzy: unknown words replaced by their spelling neighbours
        if correctable:
            groups = [Group(t) for t in known]
            for t in terms:
                if corrections.get(t):
                    alts = corrections[t]
                    groups.append(Group(alts[0], alts[1:]))
            new = [g.word for g in groups if g.word not in self.idf]
            for w, df in (await self.backend.dfs(new, DF_COUNT_CAP)).items():
                self.idf[w] = _idf(n_docs, df)
            items = await self._ranked(groups, "and", None, False)
            if take("fuzzy", items):
                return _result("fuzzy", items)
            if len(groups) > 1:
                items = await self._ranked(groups, "or", None, False)
                if take("fuzzy", items):
                    return _result("fuzzy", items)

        if fallback is not None:
            return _result(*fallback)
        return {"items": [], "cascade_tier": "none"}

    # ------------------------------------------------------------ tiers

    async def _creator_tier(
        self, terms: list[str], known: list[str], cid: int, common: bool
    ) -> list[dict[str, Any]]:
        groups = [Group(t) for t in known]
        if len(known) == len(terms):
            items = await self._ranked(groups, "and", cid, common)
            if len(items) >= self.enough or len(terms) == 1:
                return items
        need = math.ceil(len(terms) / 2)
        if len(known) < need:
            return []
        candidates = await self._rank(groups, "or", cid, common, self._fetch_n())
        if not candidates:
            return []
        ids = [sid for sid, _ in candidates]
        counts = dict.fromkeys(ids, 0)
        for t in known:
            for sid in await self.backend.containing(t, ids):
                counts[sid] += 1
        kept = [(sid, score) for sid, score in candidates if counts[sid] >= need]
        return await self._items(kept)

    async def _ranked(
        self, groups: list[Group], mode: str, cid: int | None, common: bool
    ) -> list[dict[str, Any]]:
        n = self._fetch_n()
        ranked = await self._rank(groups, mode, cid, common, n)
        items = await self._items(ranked)
        if len(items) < self.limit and len(ranked) >= n:  # the per-page cap ate the candidates
            ranked = await self._rank(groups, mode, cid, common, n * 8)
            items = await self._items(ranked)
        return items

    async def _rank(
        self, groups: list[Group], mode: str, cid: int | None, common: bool, n: int
    ) -> list[tuple[int, float]]:
        kwargs: dict[str, Any] = {}
        if isinstance(self.backend, _Postgres):
            kwargs["idf"] = self.idf
        if common:
            # Every word is very common: ranking all their matches would score most of
            # the index for little information. Title, heading and tags answer first.
            ranked = await self.backend.rank(groups, mode, n, cid, head_only=True, **kwargs)
            if len(ranked) >= min(n, self.limit):
                return ranked
        return await self.backend.rank(groups, mode, n, cid, **kwargs)

    def _fetch_n(self) -> int:
        return max(20, self.limit * CANDIDATE_FACTOR)

    async def _corrections(self, word: str) -> list[str]:
        """Spelling neighbours then prefix completions of a word the index lacks."""
        if not word.isalpha():
            return []
        bound = allowed_distance(word)
        found: list[tuple[int, int, str]] = []
        if bound:
            for term, df in await self.backend.neighbours(word):
                d = edit_distance(word, term, bound)
                if d <= bound:
                    found.append((d, -df, term))
        found.sort()
        best = [t for _, _, t in found[:2]]
        if len(word) >= 4:
            for term, _df in await self.backend.completions(word):
                if term not in best and len(best) < 4:
                    best.append(term)
        return best

    async def _creator_id(self, creator: str) -> int | None:
        row = (
            await self.session.execute(
                text(
                    "SELECT id FROM creators WHERE slug = :c OR lower(name) = :lc "
                    "OR lower(slug) = :lc ORDER BY id LIMIT 1"
                ),
                {"c": creator, "lc": fold(creator)},
            )
        ).first()
        return int(row[0]) if row else None

    async def _items(self, ranked: list[tuple[int, float]]) -> list[dict[str, Any]]:
        if not ranked:
            return []
        rows = (await self.session.execute(_DETAILS, {"ids": [sid for sid, _ in ranked]})).all()
        by_id = {r[0]: r for r in rows}
        per_page: dict[int, int] = {}
        items = []
        for sid, score in ranked:
            r = by_id.get(sid)
            if r is None:
                continue
            if per_page.get(r[1], 0) >= MAX_PER_PAGE:
                continue
            per_page[r[1]] = per_page.get(r[1], 0) + 1
            items.append(_item(r, score))
            if len(items) >= self.limit:
                break
        return items


def _idf(n_docs: int, df: int) -> float:
    n = max(n_docs, df, 1)
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _item(r: Sequence[Any], score: float) -> dict[str, Any]:
    return {
        "title": r[9],
        "technique_page_slug": r[8],
        "creator_name": r[13],
        "creator_slug": r[12],
        "topic_category": r[10],
        "summary": r[11],
        "section_anchor": r[2],
        "section_heading": r[3],
        "section_body": r[4],
        "source_video_id": r[5],
        "video_title": r[14],
        "video_filename": r[15],
        "video_url": r[16],
        "start_time": r[6],
        "end_time": r[7],
        "score": round(score, 6),
    }


def _result(tier: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "cascade_tier": tier}
