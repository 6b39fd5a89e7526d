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
summary 2, body 1 (porter stemming), plus HEAD_BONUS times the bm25 of the
words in title, heading and tags alone for the best matches. PostgreSQL:
`ts_rank_cd` over a weighted tsvector (A title+heading, B tags, C summary, D
body), per word, saturated as BM25's term frequency is (r/(r+0.1)) and weighted
by the word's IDF. Each query word also matches its plainer form (punchy ->
punch, louder -> loud). Ties fall to the section id. One page contributes at
most MAX_PER_PAGE sections.

Work is bounded: one ranking statement scores about SCORE_CAP sections at most
(PG_SCORE_CAP on PostgreSQL, where scoring a section costs more).
"Any word" ranks the rarest words whose matches add up to SCORE_CAP and leaves
the commoner (least informative) ones out; "all words" is bounded by its
rarest word; when even the rarest word is that common, the words are looked
for in the title, heading and tags alone (a separate, much smaller index), and
only the first SCORE_CAP such sections (by id) are ranked. On the bundled
knowledge base (a few hundred sections) none of this applies.

One topic, the search cascade, hence its length: the SQLite and PostgreSQL backends run
the same tiers and must rank alike, so they live side by side.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from tui.db import search_index
from tui.db.search_index import fold, trigrams, words
from tui.services.locators import locator_label, make_locator

logger = logging.getLogger(__name__)

ENOUGH_HITS = 3  # sections, after the per-page cap (or `limit`, if smaller)
CREATOR_ENOUGH_HITS = 1  # the chosen creator is left only when they have nothing
MAX_PER_PAGE = 2
MAX_TERMS = 12
MAX_QUERY_CHARS = 2000
MAX_WORD_CHARS = 40  # longer "words" are noise (pasted hashes, key mashing)
# a word's section frequency is counted up to this many (bounded work)
DF_COUNT_CAP = 1000
# PostgreSQL: how one word's ts_rank_cd becomes its share of the score (times its IDF).
PG_TERM_SCORE = "({rank} / ({rank} + 0.1))"  # saturates, as BM25 does
# SQLite: weight of the bm25 of the query's words in title, heading and tags alone,
# added to the best matches' bm25 (see _SQLite.rank).
HEAD_BONUS = 0.25
# Most sections one ranking statement may score (see _Run._rank).
SCORE_CAP = 1000
# ts_rank_cd reads each matching section's whole tsvector: PostgreSQL scores fewer.
PG_SCORE_CAP = 500
# candidates fetched per wanted item, before the per-page cap
CANDIDATE_FACTOR = 4

TIERS = ("creator", "global", "relaxed", "fuzzy", "semantic", "none")

# Fusion: weighted reciprocal rank fusion of the lexical ranking and the semantic one.
RRF_K = 60
W_LEXICAL = 1.0
W_SEMANTIC = 0.15  # measured on the eval set, both backends: see docs/BENCHMARKS.md
DENSE_K = 40  # semantic candidates per search
DENSE_FLOOR = 0.3  # semantic candidates below this cosine are not fused (measured: see BENCHMARKS)
# Answerability (see `answerable`): calibrated on tests/data/answerability.json.
EVIDENCE_ROWS = 3  # the best lexical rows whose words count as coverage
CORRECTED_SHARE = 0.25  # a spelling correction counts for this share of the rarest word
BODY_SHARE = 0.2  # a word only in a section's body, not its title, heading, tags or summary
# The same for imported material (a section with a locator: transcripts, notes, manuals):
# its title, headings and summary are made from its text or are the user's own short
# labels, not written to sum the section up, so its body says more of what it is about.
# Measured (docs/BENCHMARKS.md): 0.1-0.2 cost answerable queries recall, above 0.5 more
# off-topic questions pass; 0.3-0.5 is the plateau, all 30 transcript queries pass.
IMPORTED_BODY_SHARE = 0.4
# How much more often the KB's sections use the question's most KB-typical words than general
# English does (`_affinity`): "compression", "sidechain", "vocal" are far more frequent in the
# KB than in English; the words of a near miss ("publisher", "contract", "mortgage", "css")
# are not. English frequency: wordfreq's small English list (Zipf scale).
AFFINITY_WORDS = 2  # the mean of the query's this many most KB-typical words
AFFINITY_CLIP = 2.0  # a word's affinity is held to +-this (log10 units)
# Words of an average section for the English expectation (1 - exp(-L * f)): measured flat
# from 150 to 1000 (the floor moves with it; see docs/BENCHMARKS.md).
AFFINITY_SECTION_WORDS = 700
W_AFFINITY = 1.2
EVIDENCE_FLOOR = 2.02  # the middle of 1.94-2.10, where both backends reach 90 % within the recall bound
# No vectors (lexical-only search): `4 * coverage + W_AFFINITY_ALONE * affinity >= LEXICAL_FLOOR`,
# swept on the same sets (docs/BENCHMARKS.md): 1.5 is inside the plateau 1.4-1.6 of w 0.8.
W_AFFINITY_ALONE = 0.8
LEXICAL_FLOOR = 1.5
SEMANTIC_ALONE = 0.5
NEAREST_TITLES = 3
MIN_CREATOR_WORD = 4  # a one-word creator name shorter than this is not looked for

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


def variants(word: str) -> list[str]:
    """Plainer forms of adjectives the stemmers leave alone: producers ask for punchy,
    muddy, punchier, louder sounds; pages explain punch, mud and loudness."""
    if not word.isalpha() or len(word) < 5:
        return []
    out: list[str] = []
    if word.endswith("iest") and len(word) >= 7:
        out.append(word[:-4])  # punchiest -> punch
    elif word.endswith("ier") and len(word) >= 6:
        out.append(word[:-3])  # punchier -> punch
    elif word.endswith("er") and len(word) >= 6 and word[-3] not in "aeiouy":
        out.append(word[:-2])  # louder -> loud, fatter -> fatt (-> fat below)
    elif word.endswith("y") and word[-2] not in "aeiouy":
        out.append(word[:-1])  # plucky -> pluck, warbly -> warbl (as "warble" stems)
    if out and len(out[0]) >= 3 and out[0][-1] == out[0][-2] and out[0][-1] not in "ls":
        out.append(out[0][:-1])  # muddy -> mudd -> mud, fatter -> fat
    return out


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

# A ranking `r(id, score)` (best first) joined to everything an item shows, in one statement.
_WITH_DETAILS = (
    "SELECT s.id, s.page_id, s.anchor, s.heading, s.body, s.video_id, s.start_time, s.end_time, "
    "p.slug, p.title, p.topic_category, p.summary, c.slug, c.name, v.title, v.filename, v.url, "
    "r.score, s.locator, s.first_page, s.last_page, s.line, s.source_path, p.source_file, "
    "p.tags, v.upload_date FROM r JOIN sections s ON s.id = r.id "
    "JOIN technique_pages p ON p.id = s.page_id JOIN creators c ON c.id = p.creator_id LEFT JOIN videos v ON v.id = s.video_id "
    "ORDER BY r.pos"
)
# The same columns for given section ids (the semantic side's candidates), in any order.
_DETAILS_BY_ID = (
    "SELECT s.id, s.page_id, s.anchor, s.heading, s.body, s.video_id, s.start_time, s.end_time, "
    "p.slug, p.title, p.topic_category, p.summary, c.slug, c.name, v.title, v.filename, v.url, "
    "0.0, s.locator, s.first_page, s.last_page, s.line, s.source_path, p.source_file, "
    "p.tags, v.upload_date FROM sections s JOIN technique_pages p ON p.id = s.page_id "
    "JOIN creators c ON c.id = p.creator_id LEFT JOIN videos v ON v.id = s.video_id "
    "WHERE s.id IN :ids"
)


class _Exec:
    """Runs one statement and returns its rows. A list parameter `:name` written as
    `IN :name` is expanded to one bound value per element."""

    def rows(self, sql: str, params: dict[str, Any]) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def savepoint(self) -> Any:  # pragma: no cover
        raise NotImplementedError


class _SessionExec(_Exec):
    """Through a SQLAlchemy Session (inside `AsyncSession.run_sync`)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        stmt = text(sql)
        lists = [k for k, v in params.items() if isinstance(v, list)]
        if lists:
            stmt = stmt.bindparams(*(bindparam(k, expanding=True) for k in lists))
        return list(self.session.execute(stmt, params).all())

    def savepoint(self) -> Any:
        return self.session.begin_nested()


class _SQLiteExec(_Exec):
    """Straight on the driver's sqlite3 connection, in the driver's own thread: one
    hop from the event loop per search instead of several per statement."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        flat: dict[str, Any] = {}
        for key, value in params.items():
            if isinstance(value, list):
                names = [f"{key}_{i}" for i in range(len(value))]
                sql = re.sub(rf":{key}\b", "(" + ", ".join(":" + n for n in names) + ")", sql)
                flat.update(zip(names, value, strict=True))
            else:
                flat[key] = value
        return self.conn.execute(sql, flat).fetchall()


class _Backend:
    # the vocabulary's counts of the words in :terms
    VOCAB_DF = "SELECT term, df FROM search_vocab WHERE term IN :terms"

    def __init__(self, x: _Exec) -> None:
        self.x = x

    @staticmethod
    def term_list(terms: list[str]) -> Any:
        return terms

    def score_cap(self) -> int:
        # read at call time, so a test can lower the module's constants
        return PG_SCORE_CAP if isinstance(self, _Postgres) else SCORE_CAP

    def dfs(self, terms: Sequence[str], cap: int) -> tuple[int, dict[str, int]]:
        """The number of indexed sections, and each word's section frequency: the
        vocabulary's count for the word as written, else the index's count for its
        stem, counted up to `cap` (bounded work)."""
        rows = self.x.rows(
            "SELECT '', CAST(value AS INTEGER) FROM chrysopedia_meta WHERE key = :k "
            "UNION ALL " + self.VOCAB_DF,
            {"k": search_index.META_DOC_COUNT, "terms": self.term_list(list(terms) or [""])},
        )
        found = {r[0]: int(r[1]) for r in rows}
        n_docs = found.pop("", 0)
        found.pop(" pin", None)  # PostgreSQL's VOCAB_DF
        rest = [t for t in terms if t not in found]
        if rest:  # counted far enough to tell a word too common to score everywhere
            found.update(self.counts(rest, max(cap, self.score_cap() + 1)))
        return n_docs, {t: found.get(t, 0) for t in terms}

    def counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:  # pragma: no cover
        raise NotImplementedError

    def containing(self, forms: Sequence[str], ids: Sequence[int]) -> set[int]:  # pragma: no cover
        raise NotImplementedError

    def containing_each(self, groups: Sequence[Sequence[str]], ids: Sequence[int]) -> list[set[int]]:
        """For each group of word forms, those of `ids` that contain one of them."""
        return [self.containing(forms, ids) for forms in groups]

    def neighbours(self, word: str) -> list[tuple[str, int]]:
        """Vocabulary words sharing trigrams with `word`: (term, df), best first."""
        tris = sorted(trigrams(word))
        rows = self.x.rows(
            "SELECT t.term, v.df, count(*) AS shared FROM search_trigrams t "
            "JOIN search_vocab v ON v.term = t.term WHERE t.tri IN :tris "
            "GROUP BY t.term, v.df ORDER BY shared DESC, v.df DESC, t.term LIMIT 40",
            {"tris": tris},
        )
        return [(r[0], int(r[1])) for r in rows]

    def completions(self, word: str) -> list[tuple[str, int]]:
        rows = self.x.rows(
            "SELECT term, df FROM search_vocab WHERE term > :lo AND term < :hi "
            "ORDER BY df DESC, term LIMIT 3",
            {"lo": word, "hi": word + "\uffff"},
        )
        return [(r[0], int(r[1])) for r in rows]


class _SQLite(_Backend):
    WEIGHTS = ", ".join(str(w) for w in search_index.SQLITE_BM25_WEIGHTS)
    HEAD_WEIGHTS = ", ".join(str(w) for w in search_index.SQLITE_BM25_WEIGHTS[:3])

    @staticmethod
    def _phrase(word: str) -> str:
        return '"' + word.replace('"', '""') + '"'

    def expression(self, groups: Sequence[Group], mode: str) -> str:
        parts = []
        for g in groups:
            alts = [self._phrase(w) for w in g.all]
            parts.append("(" + " OR ".join(alts) + ")" if len(alts) > 1 else alts[0])
        return (" AND " if mode == "and" else " OR ").join(parts)

    def counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        cols = ", ".join(
            f"(SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH :t{i} "
            f"LIMIT :cap))"
            for i in range(len(terms))
        )
        params: dict[str, Any] = {f"t{i}": self._phrase(t) for i, t in enumerate(terms)}
        params["cap"] = cap
        row = self.x.rows(f"SELECT {cols}", params)[0]
        return {t: int(row[i]) for i, t in enumerate(terms)}

    def rank(
        self, groups: Sequence[Group], mode: str, n: int, creator_id: int | None,
        head_only: bool = False,
    ) -> list[Any]:
        params: dict[str, Any] = {"q": self.expression(groups, mode), "n": n}
        # search_head holds title, heading and tags only: much shorter posting lists.
        table, weights = ("search_head", self.HEAD_WEIGHTS) if head_only else ("search_fts", self.WEIGHTS)
        where = f"{table} MATCH :q"
        if head_only:  # the first SCORE_CAP matches (by section id) are ranked
            where += (
                f" AND {table}.rowid <= coalesce((SELECT rowid FROM {table} WHERE {table} MATCH :q "
                "ORDER BY rowid LIMIT 1 OFFSET :cap), 9223372036854775807)"
            )
            params["cap"] = self.score_cap()
        if creator_id is not None:
            where += (
                # `+`: filter the matches; probing the index once per section is far slower
                f" AND +{table}.rowid IN (SELECT s.id FROM sections s JOIN technique_pages p "
                "ON p.id = s.page_id WHERE p.creator_id = :cid)"
            )
            params["cid"] = creator_id
        if head_only:
            sql = (
                "WITH r AS (SELECT id, -score AS score, row_number() OVER (ORDER BY score, id) "
                f"AS pos FROM (SELECT {table}.rowid AS id, bm25({table}, {weights}) AS score "
                f"FROM {table} WHERE {where} ORDER BY score, {table}.rowid LIMIT :n)) "
                + _WITH_DETAILS
            )
            return self.x.rows(sql, params)
        # bm25 saturates a word's weighted count, so a word in the title adds little more
        # than the same word a few times in the body. The best matches get a small bonus
        # for the query's words in their title, heading and tags (HEAD_BONUS).
        params.update(qh=self.expression(groups, "or"), bonus=HEAD_BONUS)
        sql = (
            f"WITH f AS MATERIALIZED (SELECT search_fts.rowid AS id, bm25(search_fts, {weights}) "
            f"AS score FROM search_fts WHERE {where} ORDER BY score, search_fts.rowid LIMIT :n), "
            "h AS (SELECT search_head.rowid AS id, bm25(search_head, 1.0, 1.0, 1.0) AS score "
            "FROM search_head WHERE search_head MATCH :qh "
            # `+`: filter the matches; probing the index once per section is far slower
            "AND +search_head.rowid IN (SELECT id FROM f)), "
            "r AS (SELECT f.id, -(f.score + :bonus * coalesce(h.score, 0)) AS score, "
            "row_number() OVER (ORDER BY f.score + :bonus * coalesce(h.score, 0), f.id) AS pos "
            "FROM f LEFT JOIN h ON h.id = f.id) "
            + _WITH_DETAILS
        )
        return self.x.rows(sql, params)

    def containing(self, forms: Sequence[str], ids: Sequence[int]) -> set[int]:
        rows = self.x.rows(
            # `+`: filter the word's matches; probing the index per section is far slower
            "SELECT rowid FROM search_fts WHERE search_fts MATCH :q AND +rowid IN :ids",
            {"q": " OR ".join(self._phrase(w) for w in forms), "ids": list(ids)},
        )
        return {int(r[0]) for r in rows}


class _Postgres(_Backend):
    CONFIG = search_index.PG_TS_CONFIG
    # By the primary key: for `term IN (...)` or `term = t.term` the planner picks
    # pg_trgm's GIN index on the same column (it answers equality too), which is far slower
    # at 1M sections (docs/BENCHMARKS.md); a range on the term only the btree serves.
    PIN_SCANS = ("set_config('synchronize_seqscans', 'off', true), "
                 "set_config('max_parallel_workers_per_gather', '0', true)")
    # The same statement pins this search's scans (see `rank`), saving a round trip: a
    # row of its own (always evaluated; its key, with a space, is never a query word)
    # whose set_config calls last for the rest of the transaction.
    VOCAB_DF = (
        "SELECT ' pin', length(set_config('synchronize_seqscans', 'off', true) "
        "|| set_config('max_parallel_workers_per_gather', '0', true)) "
        "UNION ALL SELECT v.term, v.df FROM unnest(CAST(:terms AS text[])) AS t(term) "
        "JOIN search_vocab v ON v.term >= t.term AND v.term <= t.term"
    )

    @staticmethod
    def term_list(terms: list[str]) -> Any:
        return tuple(terms)  # one array parameter (a list would be expanded for IN)

    def __init__(self, x: _Exec) -> None:
        super().__init__(x)
        self._trgm_schema: str | None | bool = False  # False: not looked up yet
        self._scan_fixed = False

    def _group_query(self, g: Group, i: int, params: dict[str, Any]) -> str:
        parts = []
        for j, w in enumerate(g.all):
            params[f"w{i}_{j}"] = w
            parts.append(f"plainto_tsquery('{self.CONFIG}', :w{i}_{j})")
        return "(" + " || ".join(parts) + ")"

    def dfs(self, terms: Sequence[str], cap: int) -> tuple[int, dict[str, int]]:
        found = super().dfs(terms, cap)
        self._scan_fixed = True  # by VOCAB_DF
        return found

    def counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        params: dict[str, Any] = {"cap": cap}
        cols = []
        for i, t in enumerate(terms):
            params[f"t{i}"] = t
            cols.append(
                f"(SELECT count(*) FROM (SELECT 1 FROM search_docs WHERE tsv @@ "
                f"plainto_tsquery('{self.CONFIG}', :t{i}) LIMIT :cap) x{i})"
            )
        row = self.x.rows("SELECT " + ", ".join(cols), params)[0]
        return {t: int(row[i]) for i, t in enumerate(terms)}

    def rank(
        self, groups: Sequence[Group], mode: str, n: int, creator_id: int | None,
        head_only: bool = False, idf: Sequence[float] | None = None,
    ) -> list[Any]:
        params: dict[str, Any] = {"n": n}
        queries = [self._group_query(g, i, params) for i, g in enumerate(groups)]
        weights = search_index.PG_RANK_WEIGHTS
        # `head` holds title, heading and tags only: much shorter posting lists.
        vector = "d.head" if head_only else "d.tsv"
        ranks, terms = [], []
        for i, q in enumerate(queries):
            params[f"idf{i}"] = idf[i] if idf else 1.0
            # each word's ts_rank_cd once (the score's formula names it twice)
            ranks.append(f"ts_rank_cd('{weights}', {vector}, {q}, 1) AS r{i}")
            terms.append(f":idf{i} * " + PG_TERM_SCORE.format(rank=f"r{i}"))
        match = "(" + (" && " if mode == "and" else " || ").join(queries) + ")"
        where = f"{vector} @@ {match}"
        if creator_id is not None:
            where += " AND d.creator_id = :cid"
            params["cid"] = creator_id
        # At most SCORE_CAP matches are scored, the first in the table's order: the scan
        # stops there instead of reading (and sorting) every section that has the words.
        # Head only: a common word's matches are most of a large index. The whole text:
        # the words' counts come from the vocabulary, and a stem can match more sections
        # than the word as typed (`required` matches `requirement`: 1,136 sections at 100k,
        # not the vocabulary's 500). Seq scans start at the table's first block (not where
        # another scan is) and run in one process, so the same data gives the same rows.
        if not self._scan_fixed:  # for the rest of this search's transaction
            self.x.rows("SELECT " + self.PIN_SCANS, {})
            self._scan_fixed = True
        params["cap"] = self.score_cap()
        column = vector.removeprefix("d.")
        # OFFSET 0: not folded into the statement below, which would compute each rank twice
        source = (
            f"(SELECT d.section_id, {', '.join(ranks)} FROM (SELECT section_id, {column} "
            f"FROM search_docs d WHERE {where} LIMIT :cap) d OFFSET 0)"
        )
        sql = (
            "WITH r AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS pos "
            f"FROM (SELECT m.section_id AS id, ({' + '.join(terms)}) AS score FROM {source} m "
            "ORDER BY score DESC, m.section_id LIMIT :n) top) "
            + _WITH_DETAILS
        )
        return self.x.rows(sql, params)

    def containing(self, forms: Sequence[str], ids: Sequence[int]) -> set[int]:
        params: dict[str, Any] = {"ids": list(ids)}
        query = self._group_query(Group(forms[0], list(forms[1:])), 0, params)
        rows = self.x.rows(
            f"SELECT section_id FROM search_docs WHERE section_id IN :ids AND tsv @@ {query}",
            params,
        )
        return {int(r[0]) for r in rows}

    def containing_each(self, groups: Sequence[Sequence[str]], ids: Sequence[int]) -> list[set[int]]:
        """One statement for every group: the sections are read by id and each group is
        tested on their text (in the select list, so no word's posting list is read: at 1M
        sections the planner sometimes intersected a common word's whole GIN posting list
        with the ids, 95-140 ms under load, against ~5 ms for the look-ups by id)."""
        if not groups:
            return []
        params: dict[str, Any] = {"ids": list(ids)}
        tests = [f"tsv @@ {self._group_query(Group(f[0], list(f[1:])), i, params)}"
                 for i, f in enumerate(groups)]
        rows = self.x.rows(
            f"SELECT section_id, {', '.join(tests)} FROM search_docs WHERE section_id IN :ids", params)
        return [{int(r[0]) for r in rows if r[i + 1]} for i in range(len(groups))]

    def neighbours(self, word: str) -> list[tuple[str, int]]:
        if self._trgm_schema is False:
            found = self.x.rows(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm' AND EXISTS ("
                "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_search_vocab_trgm' "
                "AND schemaname = current_schema())",
                {},
            )
            self._trgm_schema = found[0][0] if found else None
        if self._trgm_schema:
            s = '"' + str(self._trgm_schema).replace('"', '""') + '"'
            try:
                with self.x.savepoint():
                    rows = self.x.rows(
                        f"SELECT term, df FROM search_vocab WHERE term OPERATOR({s}.%) :w "
                        f"ORDER BY {s}.similarity(term, :w) DESC, df DESC, term LIMIT 40",
                        {"w": word},
                    )
                return [(r[0], int(r[1])) for r in rows]
            except Exception:  # the extension went away: the trigram table serves
                self._trgm_schema = None
        return super().neighbours(word)


# ------------------------------------------------------------------- service



class SearchService:
    """Cascade search over sections. Construction is cheap; state lives per call.

    `scope` is kept for the seed's call signature; "all" (sections of every page) is the
    only scope there is. `db` is a `tui.db.engine.Database` or an `AsyncSession`.
    """

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
        # a creator is a slug or a name: anything else (control characters, NUL, which
        # PostgreSQL text cannot hold, a paragraph) simply matches no creator
        if creator is not None:
            creator = "".join(ch for ch in str(creator) if ch.isprintable()).strip()[:200]
        if self.settings is not None and getattr(self.settings, "embed_model", None):
            from tui.db import vectors

            vectors.configure(self.settings)
        if isinstance(db, AsyncSession):
            return await _run(db, query, limit, creator)
        async with db.session() as session:
            return await _run(session, query, limit, creator)


async def _run(session: AsyncSession, query: str, limit: int, creator: str | None) -> dict:
    """The cascade is synchronous code; on SQLite it runs in the driver's thread."""
    bind = session.get_bind()
    key = bind.url.render_as_string(hide_password=True)
    if bind.dialect.name == "sqlite":
        conn = await session.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        # aiosqlite runs every call on its connection in one worker thread; `_execute`
        # queues a function there. Without it (another driver), the session serves.
        submit = getattr(driver, "_execute", None)
        sqlite_conn = getattr(driver, "_conn", None)
        if submit is not None and sqlite_conn is not None:
            run = _Run(_SQLiteExec(sqlite_conn), "sqlite", limit, key)
            return await submit(lambda: run.search(query, creator))
    dialect = bind.dialect.name
    return await session.run_sync(
        lambda sync: _Run(_SessionExec(sync), dialect, limit, key).search(query, creator)
    )


class _Run:
    """One search call: the statements' runner, the backend and what was learned so far."""

    def __init__(self, x: _Exec, dialect: str, limit: int, key: str = "") -> None:
        self.limit = limit
        self.enough = min(ENOUGH_HITS, limit)
        self.backend: _SQLite | _Postgres = _SQLite(x) if dialect == "sqlite" else _Postgres(x)
        self.n_docs = 0
        self.df: dict[str, int] = {}
        self.key = key
        self.semantic = semantic_enabled()
        self._matrix: Any = False  # False: not loaded yet; None: the database has no vectors
        self._qv: Any = None
        self._dense: dict[int | None, list[tuple[int, float]]] = {}
        self._corrected: dict[str, str] = {}  # typed word -> its spelling correction

    def search(self, query: str, creator: str | None) -> dict[str, Any]:
        detected: dict[str, Any] | None = None
        if creator is None:
            detected = self._detect_creator(query)
            if detected is not None:
                creator = detected["slug"]
                query = detected["rest"] or query
        result = self._cascade(query, creator)
        if detected is not None:
            result["creator_detected"] = {"slug": detected["slug"], "name": detected["name"]}
        return result

    def _cascade(self, query: str, creator: str | None) -> dict[str, Any]:
        terms = query_terms(query)
        if not terms:
            return _none()
        self.query = query
        typed = {t: Group(t, variants(t)) for t in terms}
        forms = sorted({w for g in typed.values() for w in g.all})
        self.n_docs, dfs = self.backend.dfs(forms, DF_COUNT_CAP)
        self.df.update(dfs)
        known = [t for t in terms if self._group_df(typed[t]) > 0]
        unknown = [t for t in terms if t not in known]
        groups_known = [typed[t] for t in known]
        self.typed = [typed[t] for t in terms]

        fallback: tuple[str, list[Any], list[Group], int | None] | None = None

        def take(tier: str, rows: list[Any], groups: list[Group], cid: int | None) -> bool:
            nonlocal fallback
            n = self._count(rows)
            if n and fallback is None:
                fallback = (tier, rows, groups, cid)
            return n >= (CREATOR_ENOUGH_HITS if tier == "creator" else self.enough)

        # creator
        cid = None
        if creator:
            cid = self._creator_id(creator)
            if cid is not None and known:
                rows = self._creator_tier(len(terms), groups_known, cid)
                if take("creator", rows, groups_known, cid):
                    return self._finish("creator", rows, groups_known, cid)

        # global: every word must be there (an unknown word matches nothing)
        if known and not unknown:
            rows = self._ranked(groups_known, "and", None)
            if take("global", rows, groups_known, None):
                return self._finish("global", rows, groups_known, None)

        corrections = {t: self._corrections(t) for t in unknown}
        correctable = any(corrections.values())
        # relaxed: any word, as typed (skipped when a typo can be corrected instead)
        if known and not correctable and (len(known) > 1 or unknown):
            rows = self._ranked(groups_known, "or", None)
            if take("relaxed", rows, groups_known, None):
                return self._finish("relaxed", rows, groups_known, None)

        # fuzzy: unknown words replaced by their spelling neighbours
        if correctable:
            groups = list(groups_known)
            for t in terms:
                if corrections.get(t):
                    alts = corrections[t]
                    groups.append(Group(alts[0], alts[1:]))
            self._corrected = {t: corrections[t][0] for t in terms if corrections.get(t)}
            # the semantic side reads the question as corrected, too
            self.query = " ".join(corrections[t][0] if corrections.get(t) else t for t in terms)
            self._qv = None
            new = sorted({w for g in groups for w in g.all if w not in self.df})
            self.df.update(self.backend.dfs(new, DF_COUNT_CAP)[1])
            rows = self._ranked(groups, "and", None)
            if take("fuzzy", rows, groups, None):
                return self._finish("fuzzy", rows, groups, None)
            if len(groups) > 1:
                rows = self._ranked(groups, "or", None)
                if take("fuzzy", rows, groups, None):
                    return self._finish("fuzzy", rows, groups, None)

        if fallback is not None:
            return self._finish(*fallback)
        # no word matched: the semantic side alone, when it is sure enough
        return self._finish("semantic", [], [], cid if creator else None)

    # ------------------------------------------------------------ fusion and the gate

    def _finish(self, tier: str, rows: list[Any], groups: list[Group], cid: int | None
                ) -> dict[str, Any]:
        dense = self._dense_top(cid)
        evidence = self._evidence(tier, rows, groups, dense)
        if _GATE[0] and not answerable(evidence):
            return {**_none(), "evidence": evidence,
                    "nearest": self._nearest(rows, dense)}
        items = self._fuse(rows, dense)
        if not items:
            return {**_none(), "evidence": evidence, "nearest": []}
        return {"items": items, "cascade_tier": tier, "evidence": evidence}

    def _fuse(self, rows: list[Any], dense: list[tuple[int, float]]) -> list[dict[str, Any]]:
        """Weighted reciprocal rank fusion of the lexical rows and the semantic top list."""
        dense = [d for d in dense if d[1] >= DENSE_FLOOR]
        if not dense:
            return self._items(rows)
        fused: dict[int, float] = {}
        for i, r in enumerate(rows):
            fused[r[0]] = fused.get(r[0], 0.0) + W_LEXICAL / (RRF_K + i + 1)
        for i, (sid, _sim) in enumerate(dense):
            fused[sid] = fused.get(sid, 0.0) + W_SEMANTIC / (RRF_K + i + 1)
        by_id = {r[0]: r for r in rows}
        # the per-page cap and the limit decide which semantic-only sections are shown:
        # only those are read from the database
        pages = self._matrix.pages_of([sid for sid in fused if sid not in by_id])
        order, per_page = [], {}
        for sid in sorted(fused, key=lambda i: (-fused[i], i)):
            page = by_id[sid][1] if sid in by_id else pages.get(sid)
            if page is None or per_page.get(page, 0) >= MAX_PER_PAGE:
                continue
            per_page[page] = per_page.get(page, 0) + 1
            order.append(sid)
            if len(order) >= self.limit:
                break
        missing = [sid for sid in order if sid not in by_id]
        if missing:
            for r in self.backend.x.rows(_DETAILS_BY_ID, {"ids": missing}):
                by_id[r[0]] = r
        out = []
        for sid in order:
            if sid in by_id:
                r = list(by_id[sid])
                r[17] = fused[sid]
                out.append(r)
        return self._items(out)

    def _vector(self) -> Any:
        """The question's vector by the model the matrix holds; None when that model is
        not at hand or its server fails (the search is lexical only then)."""
        if self._qv is None:
            from tui.db import vectors

            m = self._load_matrix()
            embedder = vectors.embedder_for(m.model) if m is not None else None
            self._qv = False
            if embedder is not None:
                try:
                    self._qv = embedder.embed([self.query])[0]
                except vectors.EmbedError as exc:
                    logger.warning("search_embed_error %s", exc)
        return self._qv if self._qv is not False else None

    def _load_matrix(self) -> Any:
        if self._matrix is False:
            self._matrix = None
            if self.semantic:
                from tui.db import vectors

                meta = dict(self.backend.x.rows(
                    "SELECT key, value FROM chrysopedia_meta WHERE key IN :k",
                    {"k": [vectors.META_GENERATION, vectors.META_MODEL]},
                ))
                model = meta.get(vectors.META_MODEL) or vectors.LOCAL_MODEL
                self._matrix = vectors.cached_matrix(
                    self.key, meta.get(vectors.META_GENERATION), model,
                    lambda: self.backend.x.rows(vectors.MATRIX_ROWS, {"m": model}),
                )
        return self._matrix

    def _dense_top(self, cid: int | None) -> list[tuple[int, float]]:
        """The semantic side's best sections (all creators, or one), best first."""
        if cid not in self._dense:
            m = self._load_matrix()
            q = self._vector() if m is not None else None
            self._dense[cid] = m.top(q, DENSE_K, cid) if q is not None else []
        return self._dense[cid]

    def _evidence(self, tier: str, rows: list[Any], groups: list[Group],
                  dense: list[tuple[int, float]]) -> dict[str, Any]:
        """What says the knowledge base is about the question (see `answerable`).

        `coverage`: the largest share of the query's information (the IDF of its words; a
        word the index lacks weighs as the rarest) that one of the best lexical sections
        holds, a word counting fully in the title, heading, tags or summary and
        BODY_SHARE in the body alone; a spelling correction counts for CORRECTED_SHARE
        of the rarest word. `similarity`: how close in meaning the best of those
        sections is to the question; `semantic`: the best section's closeness overall."""
        weights = [_idf(self.n_docs, self._group_df(g)) for g in self.typed]
        total = sum(weights) or 1.0
        checks = [(w, g.all) for g, w in zip(self.typed, weights, strict=True)
                  if self._group_df(g) > 0]
        typed = {g.word for g in self.typed}
        checks += [(CORRECTED_SHARE * max(weights), g.all) for g in groups if g.word not in typed]
        coverage = 0.0
        for r in rows[:EVIDENCE_ROWS]:
            head, body = _Stems(_head_stems(r)), None
            got = 0.0
            for w, forms in checks:
                stems = {_stem(f) for f in forms}
                if _holds(stems, head):
                    got += w
                    continue
                if body is None:
                    body = _Stems(_body_stems(r))
                if _holds(stems, body):
                    got += w * (BODY_SHARE if r[18] is None else IMPORTED_BODY_SHARE)
            coverage = max(coverage, got / total)
        similarity = None
        m = self._load_matrix() if rows else None
        if m is not None and self._vector() is not None:
            sims = m.similarity(self._vector(), [r[0] for r in rows[:EVIDENCE_ROWS]])
            similarity = max(sims.values(), default=None)
        return {
            "tier": tier,
            "words": len(self.typed),
            "coverage": round(coverage, 3),
            "similarity": None if similarity is None else round(similarity, 3),
            "affinity": round(self._affinity(groups, tier == "creator"), 3),
            "semantic": round(dense[0][1], 3) if dense else None,
        }

    def _affinity(self, groups: list[Group], creator: bool = False) -> float:
        """How typical of the KB, against general English, the question's most KB-typical
        words are: the mean of the AFFINITY_WORDS highest `word_affinity` values (a missing
        one counts 0). A word neither the KB nor English knows is a typo: its spelling
        correction counts instead, when the search used one; else it is left out. In the
        creator tier the creator's name, a word of the KB's own that the creator's sections
        matched with the question's words, counts as one word at AFFINITY_CLIP."""
        df_of = {g.word: self._group_df(g) for g in groups}
        out = []
        for g in self.typed:
            word, df = g.word, self._group_df(g)
            fix = self._corrected.get(word)
            if df == 0 and fix in df_of and english_zipf(word) <= 0:
                word, df = fix, df_of[fix]
            a = word_affinity(word, df, self.n_docs)
            if a is not None:
                out.append(a)
        if creator:
            out.append(AFFINITY_CLIP)
        out.sort(reverse=True)
        return sum(out[:AFFINITY_WORDS]) / AFFINITY_WORDS

    def _nearest(self, rows: list[Any], dense: list[tuple[int, float]]) -> list[str]:
        """Titles of the pages closest to the question, for saying what the KB does hold."""
        ids = [sid for sid, _ in dense[:12]] or [r[0] for r in rows[:12]]
        if not ids:
            return []
        got = {int(r[0]): r[1] for r in self.backend.x.rows(
            "SELECT s.id, p.title FROM sections s JOIN technique_pages p ON p.id = s.page_id "
            "WHERE s.id IN :ids", {"ids": ids})}
        titles: list[str] = []
        for sid in ids:
            t = got.get(sid)
            if t and t not in titles:
                titles.append(t)
        return titles[:NEAREST_TITLES]

    def _detect_creator(self, query: str) -> dict[str, Any] | None:
        """A creator named in the question (name or slug as whole words, any case or
        accent, possessive too; a name glued to more by a hyphen is not one): the longest
        name found wins."""
        folded = fold(query[:MAX_QUERY_CHARS])
        best: tuple[int, int, str, str, str] | None = None
        for cid, slug, name in self.backend.x.rows("SELECT id, slug, name FROM creators", {}):
            for form, size in _creator_forms(name or "", slug or ""):
                if not all(w in folded for w in form):  # cheap: most names are absent
                    continue
                found = _name_pattern(form).search(folded)
                if found and (best is None or size > best[0]):
                    rest = (folded[: found.start()] + " " + folded[found.end() :]).strip()
                    best = (size, int(cid), slug, name, rest)
        if best is None:
            return None
        return {"id": best[1], "slug": best[2], "name": best[3], "rest": best[4]}

    # ------------------------------------------------------------ tiers

    def _group_df(self, g: Group) -> int:
        return sum(self.df.get(w, 0) for w in g.all)

    # ------------------------------------------------------------ tiers

    def _creator_tier(self, n_terms: int, groups: list[Group], cid: int) -> list[Any]:
        """Ranked rows (before the per-page cap) of the creator's sections."""
        if len(groups) == n_terms:
            rows = self._ranked(groups, "and", cid)
            if self._count(rows) >= self.enough or n_terms == 1:
                return rows
        need = math.ceil(n_terms / 2)
        if len(groups) < need:
            return []
        candidates = self._rank(groups, "or", cid, self._fetch_n())
        if not candidates:
            return []
        ids = [row[0] for row in candidates]
        counts = dict.fromkeys(ids, 0)
        for found in self.backend.containing_each([g.all for g in groups], ids):
            for sid in found:
                counts[sid] += 1
        return [row for row in candidates if counts[row[0]] >= need]

    def _ranked(self, groups: list[Group], mode: str, cid: int | None) -> list[Any]:
        """Ranked rows, enough of them to fill `limit` items after the per-page cap."""
        n = self._fetch_n()
        ranked = self._rank(groups, mode, cid, n)
        if self._count(ranked) < self.limit and len(ranked) >= n:
            ranked = self._rank(groups, mode, cid, n * 8)  # the per-page cap ate them
        return ranked

    def _rank(self, groups: list[Group], mode: str, cid: int | None, n: int) -> list[Any]:
        def rank(groups: list[Group], head_only: bool = False) -> list[Any]:
            if isinstance(self.backend, _Postgres):
                idf = [_idf(self.n_docs, self._group_df(g)) for g in groups]
                return self.backend.rank(groups, mode, n, cid, head_only=head_only, idf=idf)
            return self.backend.rank(groups, mode, n, cid, head_only=head_only)

        # Bounded work: one statement scores at most about SCORE_CAP sections (on a
        # large index). Any word: the rarest words whose matches add up to SCORE_CAP are
        # ranked, the commoner ones (least informative) left out. All words: the rarest
        # word bounds the work. When even that is too common, the words are looked for
        # in the title, heading and tags only.
        cap = self.backend.score_cap()
        dfs = [self._group_df(g) for g in groups]
        if mode == "or" and min(sum(dfs), self.n_docs) > cap:
            order = sorted(range(len(groups)), key=lambda i: (dfs[i], i))
            if dfs[order[0]] > cap:
                return rank(groups, head_only=True)
            keep, total = [], 0
            for i in order:
                if keep and total + dfs[i] > cap:
                    break
                keep.append(i)
                total += dfs[i]
            return rank([groups[i] for i in sorted(keep)])
        if mode == "and" and min(dfs) > cap:
            return rank(groups, head_only=True)
        return rank(groups)

    def _fetch_n(self) -> int:
        return max(20, self.limit * CANDIDATE_FACTOR)

    def _corrections(self, word: str) -> list[str]:
        """Spelling neighbours then prefix completions of a word the index lacks."""
        if not word.isalpha():
            return []
        bound = allowed_distance(word)
        found: list[tuple[int, int, str]] = []
        if bound:
            for term, df in self.backend.neighbours(word):
                d = edit_distance(word, term, bound)
                if d <= bound:
                    found.append((d, -df, term))
        found.sort()
        # the nearest spellings only: a word one edit away beats any two edits away
        best = [t for d, _, t in found if d == found[0][0]][:2] if found else []
        if len(word) >= 4:
            for term, _df in self.backend.completions(word):
                if term not in best and len(best) < 4:
                    best.append(term)
        return best

    def _creator_id(self, creator: str) -> int | None:
        rows = self.backend.x.rows(
            "SELECT id FROM creators WHERE slug = :c OR lower(name) = :lc "
            "OR lower(slug) = :lc ORDER BY id LIMIT 1",
            {"c": creator, "lc": fold(creator)},
        )
        return int(rows[0][0]) if rows else None

    def _count(self, rows: list[Any]) -> int:
        """How many items `_items(rows)` gives, without making them."""
        per_page: dict[int, int] = {}
        n = 0
        for r in rows:
            if per_page.get(r[1], 0) >= MAX_PER_PAGE:
                continue
            per_page[r[1]] = per_page.get(r[1], 0) + 1
            n += 1
            if n >= self.limit:
                break
        return n

    def _items(self, rows: list[Any]) -> list[dict[str, Any]]:
        """Items in rank order, at most MAX_PER_PAGE per page and `limit` in all."""
        per_page: dict[int, int] = {}
        items = []
        for r in rows:
            if per_page.get(r[1], 0) >= MAX_PER_PAGE:
                continue
            per_page[r[1]] = per_page.get(r[1], 0) + 1
            items.append(_item(r))
            if len(items) >= self.limit:
                break
        return items


def _idf(n_docs: int, df: int) -> float:
    n = max(n_docs, df, 1)
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _item(r: Sequence[Any]) -> dict[str, Any]:
    locator = make_locator(
        r[18], video_id=r[5], start_time=r[6], end_time=r[7], first_page=r[19],
        last_page=r[20], line=r[21], path=r[22], file=r[23], heading=r[3],
    )
    item = {
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
        "video_upload_date": r[25] if len(r) > 25 else None,
        "start_time": r[6],
        "end_time": r[7],
        "score": round(float(r[17]), 6),
        "locator": locator,
    }
    item["locator_label"] = locator_label(item)
    return item


@functools.lru_cache(maxsize=4096)
def _creator_forms(name: str, slug: str) -> tuple[tuple[tuple[str, ...], int], ...]:
    """A creator's name and slug as word tuples worth looking for, with their letter
    counts (the longest name found wins); cached, as the creators are read every search."""
    out = []
    for form in {tuple(words(name)), tuple(words(slug))}:
        if not form or (len(form) == 1 and len(form[0]) < MIN_CREATOR_WORD):
            continue
        out.append((form, sum(len(w) for w in form)))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _name_pattern(form: tuple[str, ...]) -> re.Pattern[str]:
    """A creator's name words as whole words (joined by spaces, dots, dashes or
    underscores), a possessive allowed, not glued to another word by a hyphen."""
    return re.compile(r"(?<![\w'-])" + r"[\s._-]+".join(re.escape(w) for w in form)
                      + r"(?:['\u2019]s\b|s'|['\u2019])?(?![\w-])")


def _none() -> dict[str, Any]:
    return {"items": [], "cascade_tier": "none"}


_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "ly", "s")


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A rough stem, for telling whether a section holds a query word (evidence only;
    the ranking uses the index's own stemmer)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _head_stems(r: Sequence[Any]) -> set[str]:
    """Stems of a result row's title, heading, tags and summary."""
    from tui.db.search_index import _tag_text

    tags = r[24] if len(r) > 24 else None
    return {_stem(w) for w in words(f"{r[9] or ''} {r[3] or ''} {_tag_text(tags)} {r[11] or ''}")}


class _Stems:
    """A section's stems and, made on first need, each of them cut by 0-3 letters down to
    at least 5: `_holds` looks a query stem up in both instead of comparing it with every
    stem of the section (that loop was a quarter of a search's evidence at 10k sections)."""

    __slots__ = ("stems", "_cut")

    def __init__(self, stems: set[str]) -> None:
        self.stems = stems
        self._cut: set[str] | None = None

    def cut(self) -> set[str]:
        if self._cut is None:
            self._cut = {d[: len(d) - k] for d in self.stems for k in range(4) if len(d) - k >= 5}
        return self._cut


def _holds(stems: set[str], doc: _Stems) -> bool:
    """A stem in the document, or one of at least 5 letters that another extends by at
    most 3 (the rough stemmer leaves compress/compression, harmon/harmonics apart):
    `_near(s, d)` for some d, by look-ups."""
    if stems & doc.stems:
        return True
    for s in stems:
        if len(s) < 5:
            continue
        # A section stem of at least 5 letters that this one extends by 1-3 ...
        if any(s[: len(s) - k] in doc.stems for k in range(1, 4) if len(s) - k >= 5):
            return True
        # ... or one that extends this one by 0-3.
        if s in doc.cut():
            return True
    return False


def _near(a: str, b: str) -> bool:
    """What `_holds` looks for, pair by pair (the definition its look-ups answer)."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 5 and len(long_) - len(short) <= 3 and long_.startswith(short)


def _body_stems(r: Sequence[Any]) -> set[str]:
    return {_stem(w) for w in words(r[4] or "")}


def english_zipf(word: str) -> float:
    """The word's frequency in general English on the Zipf scale (log10 of uses per billion
    words; 0 for a word the list lacks), from wordfreq's small English list. wordfreq is
    imported on first use (0.2 s, 10 MB): `ChatService.warm_up` loads it ahead."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en", wordlist="small")


def word_affinity(word: str, df: int, n_docs: int) -> float | None:
    """log10 of how much more often the KB's sections hold the word than general English
    predicts for a section of AFFINITY_SECTION_WORDS words, held to +-AFFINITY_CLIP. None
    for a word neither knows (a typo). A word English lacks but the KB holds (a plugin's
    name, "sidechain") counts as a rare English word (Zipf 1)."""
    zipf = english_zipf(word)
    if df == 0 and zipf <= 0:
        return None
    expected = -math.expm1(-AFFINITY_SECTION_WORDS * 10 ** (max(zipf, 1.0) - 9))
    a = math.log10((df + 0.5) / max(n_docs, 1)) - math.log10(expected)
    return max(-AFFINITY_CLIP, min(AFFINITY_CLIP, a))


def answerable(ev: dict[str, Any]) -> bool:
    """Whether the evidence says the knowledge base is about the question.

    Lexical and semantic evidence must agree: the best lexical sections must hold the
    query's informative words (in their titles and summaries more than in passing) and be
    close to it in meaning, and the question's words must be the KB's kind of words rather
    than general English the KB lacks ("music publisher", "record label contract"), weighed
    as `similarity + 4 * coverage + W_AFFINITY * affinity >= EVIDENCE_FLOOR` (calibrated on
    tests/data/answerability.json against tests/data/search_eval.json, both backends).
    With no lexical match, the semantic side alone must be sure; with no vectors, coverage
    and affinity alone decide (`LEXICAL_FLOOR`, calibrated the same way)."""
    cov, sim, semantic = ev["coverage"], ev["similarity"], ev["semantic"]
    if ev["tier"] == "semantic":
        return semantic is not None and semantic >= SEMANTIC_ALONE
    if ev["words"] == 1 and cov > 0:  # one word the index holds (or completes) is a lookup
        return True
    if sim is None:
        return 4 * cov + W_AFFINITY_ALONE * ev["affinity"] >= LEXICAL_FLOOR
    return sim + 4 * cov + W_AFFINITY * ev["affinity"] >= EVIDENCE_FLOOR


def semantic_enabled() -> bool:
    return _SEMANTIC[0]


def set_semantic(enabled: bool) -> None:
    """Lexical-only search (the eval's side-by-side and the benchmark's baseline)."""
    _SEMANTIC[0] = bool(enabled)


def set_gate(enabled: bool) -> None:
    """Results even when the evidence says the KB is not about the question (the eval
    measures what the gate costs)."""
    _GATE[0] = bool(enabled)


_SEMANTIC = [True]
_GATE = [True]
