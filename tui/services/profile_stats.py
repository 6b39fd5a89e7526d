"""A creator's voice measured from their transcripts, without a model.

`measure_profiles(transcripts)` takes each creator's transcripts (lists of
`TimedSentence`, or `(start, end, text)` triples such as a section's times and
body) and returns, per creator, the parts of a `personality_profile` that can be
counted rather than guessed:

* ``vocabulary.signature_phrases``: word n-grams (2-5 words) this creator says
  often, in most of their videos, and the others rarely. Each n-gram's count
  for the creator is compared with its count in every other creator's
  transcripts by the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin'
  Words"): the prior for an n-gram is its share of the whole corpus, weighing a
  tenth of the corpus, and the score is the z-score of the log-odds difference.
  A phrase is kept when it occurs at least `min_count` times, in at least half
  of the creator's transcripts (and in two when they have two), its z-score is
  at least `min_z` (3.5), and the creator says it at least `min_ratio` times as
  often (per n-gram) as the others. The share of transcripts matters twice: a
  phrase of one video is its topic, not its speaker's habit; and among the many
  n-grams tested, chance gives some a high score in a few videos, never in
  most. Two kept phrases that overlap are joined when the joined phrase occurs
  `min_count` times (a habit longer than five words comes out whole); a phrase
  inside a longer kept phrase is dropped. N-grams never cross punctuation, so
  every phrase occurs verbatim (case-insensitive, spaces collapsed) in the
  creator's own transcripts.
* ``vocabulary.distinctive_terms``: single words by the same test, stopwords,
  numbers and words under three letters left out.
* ``tone.energy`` from the speaking rate, words per minute over the time the
  sentences span (pauses between sentences excluded): below 130 "calm", from
  130 to 170 "moderate", above 170 "energetic" (conversational English runs at
  about 140-160). Measured only from at least a minute of timed speech.

Nothing else is filled: the summary, teaching style, formality, descriptors,
sound descriptions and style markers need a model (`tui/services/distill.py`).
`profile["_source"]` names each measured field with "measured";
`profile["_measured"]` holds the numbers behind them. Both are extra keys the
KB format keeps and `personality.py` ignores.

Counting is done with numpy: each n-gram becomes a 64-bit key (exact for
single words, a multiplicative hash for longer ones: a collision among a few
million distinct n-grams has a probability near 1e-6 and would only merge two
counts), and sorting counts every (n-gram, transcript) pair (Counters of tuples
would hold every creator's counts at once, as Python objects, to know what the
others say). Per n-gram length the windows are split into buckets by key (about
`BUCKET_WINDOWS` each) and each bucket is sorted and scored alone: every window
of a key is in its bucket and the corpus totals are counted first, so the
result is that of one sort of all windows, while the memory beyond the word ids
is one position per window plus one bucket's work.
"""

from __future__ import annotations

import itertools
import re
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tui.materials.model import TimedSentence

MEASURED = "measured"
METHOD = "log-odds with an informative Dirichlet prior (Monroe et al. 2008)"

CALM_BELOW_WPM = 130.0
ENERGETIC_ABOVE_WPM = 170.0
MIN_TIMED_SECONDS = 60.0
MIN_TIMED_WORDS = 150
PRIOR_WEIGHT = 0.1

# Words that never end a phrase or begin one: a phrase cut there is a fragment
# of a longer one ("the sauce and", "of the filter").
_EDGE_END = frozenset(
    "a an the and or but of to with for in on at is are was were be my your our their "
    "this that these those his her its from by as if than".split()
)
_EDGE_START = frozenset("and or but of to by as than".split())

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't could couldn't did didn't do does
    doesn't doing don't down during each even every few for from further get gets getting
    go goes going gonna got had hadn't has hasn't have haven't having he he'd he'll he's her
    here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is
    isn't it it's its itself just let's like little lot me more most much mustn't my myself
    need no nor not now of off ok okay on once one only or other ought our ours ourselves out
    over own really right same say see so some something such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've
    thing things think this those through to too um uh under until up us use used using very
    want was wasn't way we we'd we'll we're we've well were weren't what what's when when's
    where where's which while who who's whom why why's will with won't would wouldn't yeah
    you you'd you'll you're you've your yours yourself yourselves""".split()
)

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# Anything that is not a word character, whitespace, an apostrophe or a hyphen
# ends a clause; so does an apostrophe or hyphen that is not inside a word.
_CLAUSE_BREAK = re.compile(r"[^\w\s'-]+|(?<!\w)['-]+|['-]+(?!\w)|_+")
_SPACES = re.compile(r"\s+")
_WORDY = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class Options:
    min_count: int = 3
    min_z: float = 3.5
    min_ratio: float = 3.0
    min_doc_share: float = 0.5
    max_phrases: int = 12
    max_terms: int = 15
    min_n: int = 2
    max_n: int = 5


def clauses(text: str) -> list[list[str]]:
    """The lower-case words of `text`, in runs unbroken by punctuation."""
    folded = text.translate(_APOSTROPHES).lower()
    out = []
    for part in _CLAUSE_BREAK.split(folded):
        words = part.split()
        if words:
            out.append(words)
    return out


def normalise(text: str) -> str:
    """`text` as phrases are matched against it: lower case, one space between words."""
    return _SPACES.sub(" ", text.translate(_APOSTROPHES).lower()).strip()


def occurs_verbatim(phrase: str, normalised_texts: Iterable[str]) -> bool:
    """Whether `phrase` occurs, whole words, case-insensitively, in one of the texts
    (each already passed through `normalise`)."""
    needle = normalise(phrase)
    if not needle:
        return False
    pattern = re.compile(r"(?<![\w'-])" + re.escape(needle) + r"(?![\w'-])")
    return any(pattern.search(text) for text in normalised_texts)


def _sentences(transcript: Iterable[Any]) -> Iterable[tuple[float | None, float | None, str]]:
    for item in transcript:
        if isinstance(item, TimedSentence):
            yield item.start, item.end, item.text
        elif isinstance(item, str):
            yield None, None, item
        else:
            start, end, text = item
            yield start, end, text


def energy_for(words_per_minute: float) -> str:
    if words_per_minute < CALM_BELOW_WPM:
        return "calm"
    if words_per_minute > ENERGETIC_ABOVE_WPM:
        return "energetic"
    return "moderate"


def measure_profiles(
    transcripts: Mapping[str, Sequence[Sequence[Any]]],
    *,
    background: Sequence[str] = (),
    options: Options = Options(),
) -> dict[str, dict[str, Any]]:
    """{creator: measured profile} for every creator with at least one word.

    `transcripts`: creator (slug) -> their transcripts, each a sequence of
    `TimedSentence` or `(start, end, text)` (times may be None) or plain strings.
    `background`: texts from elsewhere (for instance the bundled pages) counted
    as "the others" too, so one creator alone still has something to differ from.
    """
    import numpy as np

    vocab: defaultdict[str, int] = defaultdict(itertools.count().__next__)
    word_id = vocab.__getitem__  # a new word gets the next id
    ids = array("i")  # word ids, -1 after each clause: no n-gram spans a -1
    doc_ends: list[int] = []
    doc_creator: list[int] = []
    creators = list(transcripts)
    timing = [[0, 0.0] for _ in creators]  # words, seconds of timed speech
    word_total = [0] * len(creators)
    spoken: list[list[str]] = [[] for _ in creators]  # " w w w " per clause, for merging

    def add_text(text: str, ci: int | None = None) -> int:
        count = 0
        for clause in clauses(text):
            if ci is not None:
                spoken[ci].append(" " + " ".join(clause) + " ")
            ids.extend(map(word_id, clause))
            ids.append(-1)
            count += len(clause)
        return count

    for ci, creator in enumerate(creators):
        for transcript in transcripts[creator]:
            timed: list[str] = []
            untimed: list[str] = []
            seconds = 0.0
            for start, end, text in _sentences(transcript):
                if start is not None and end is not None and end > start and _WORDY.search(text):
                    timed.append(text)
                    seconds += end - start
                else:
                    untimed.append(text)
            # One pass over each transcript's text (a sentence ends a clause: ". " joins).
            n_timed = add_text(" . ".join(timed), ci)
            word_total[ci] += n_timed + add_text(" . ".join(untimed), ci)
            if n_timed:
                timing[ci][0] += n_timed
                timing[ci][1] += seconds
            doc_creator.append(ci)
            doc_ends.append(len(ids))
        # One string per creator rather than one per clause: what `_merged` reads, joined
        # the same way, without an object per clause held until then.
        spoken[ci] = ["\n".join(spoken[ci])] if spoken[ci] else []
    others = len(creators)  # the background's creator index
    for text in background:
        add_text(text)
        doc_creator.append(others)
        doc_ends.append(len(ids))

    profiles: dict[str, dict[str, Any]] = {}
    for ci, creator in enumerate(creators):
        if word_total[ci] == 0:
            continue
        n_words, seconds = timing[ci]
        prof: dict[str, Any] = {"_source": {}, "_measured": {
            "transcripts": len(transcripts[creator]), "words": word_total[ci], "method": METHOD,
        }}
        if seconds >= MIN_TIMED_SECONDS and n_words >= MIN_TIMED_WORDS:
            wpm = round(n_words / (seconds / 60.0), 1)
            prof["tone"] = {"energy": energy_for(wpm)}
            prof["_source"]["energy"] = MEASURED
            prof["_measured"]["words_per_minute"] = wpm
        profiles[creator] = prof
    if not ids:
        return profiles
    words = list(vocab)  # ids were given in insertion order

    # 32-bit word ids, positions and documents (a corpus of 2^31 words is far off): the
    # arrays below are one entry per word, and an import measures every creator at once.
    tok = np.frombuffer(ids, dtype=np.dtype(f"i{ids.itemsize}")).astype(np.int32)
    del ids[:]
    # A window's document: the first document ending after its start (looked up per
    # n-gram length rather than held as one entry per word).
    doc_end_arr = np.asarray(doc_ends, dtype=np.int64)
    word_at = tok >= 0  # False at a clause end
    doc_creator_arr = np.asarray(doc_creator, dtype=np.int32)
    docs_per_creator = np.bincount(doc_creator_arr, minlength=len(creators) + 1)
    stop_ids = np.zeros(len(words), dtype=bool)
    for w in STOPWORDS:
        if w in vocab:
            stop_ids[vocab[w]] = True

    min_docs_by_creator = np.maximum(
        np.minimum(2, docs_per_creator), np.ceil(options.min_doc_share * docs_per_creator)
    ).astype(np.int32)
    chosen: dict[int, list[tuple[float, int, str]]] = {ci: [] for ci in range(len(creators))}
    n_kinds = len(creators) + 1
    for n in [1, *range(options.min_n, options.max_n + 1)]:
        positions = len(tok) - n + 1
        if positions <= 0:
            continue
        # A window is an n-gram when no clause end falls inside it.
        valid = word_at[:positions].copy()
        for j in range(1, n):
            valid &= word_at[j:j + positions]
        grand_int = int(np.count_nonzero(valid))
        if not grand_int:
            continue
        # Every window of one key goes to the same bucket (its key modulo `parts`), so each
        # bucket is counted alone, exactly: only a bucket is ever sorted, and the one array
        # of one entry per window is its position (a bucket's keys are hashed again when
        # it is counted; sorting all windows at once holds about five times that).
        parts = -(-grand_int // BUCKET_WINDOWS)
        bucket_starts: list[list[Any]] = [[] for _ in range(parts)]
        totals_by_creator = np.zeros(n_kinds, dtype=np.float64)
        for lo in range(0, positions, BUCKET_WINDOWS):
            starts = np.flatnonzero(valid[lo:lo + BUCKET_WINDOWS]).astype(np.int32)
            if not len(starts):
                continue
            starts += np.int32(lo)
            totals_by_creator += np.bincount(
                doc_creator_arr[np.searchsorted(doc_end_arr, starts, side="right")],
                minlength=n_kinds,
            )
            if parts == 1:
                bucket_starts[0].append(starts)
                continue
            which = (_keys(np, tok, starts, n) % np.uint64(parts)).astype(np.intp)
            # Stable: a bucket's windows stay in position order, hence in document order.
            order = np.argsort(which, kind="stable")
            bounds = np.cumsum(np.bincount(which, minlength=parts))[:-1]
            for b, piece in enumerate(np.split(starts[order], bounds)):
                if len(piece):
                    bucket_starts[b].append(piece.copy())
            del starts, which, order
        del valid
        grand = float(grand_int)
        found_n: list[tuple[int, int, float, int, str]] = []
        for b in range(parts):
            if not bucket_starts[b]:
                continue
            starts = np.concatenate(bucket_starts[b])
            bucket_starts[b] = []
            keys = _keys(np, tok, starts, n)
            found_n.extend(_score_bucket(
                np, keys, starts, n, tok, words, doc_end_arr, doc_creator_arr, stop_ids,
                min_docs_by_creator, totals_by_creator, grand, len(creators), options,
            ))
            del keys, starts
        # In the order of the keys, as one sort of all of this length's windows gives them
        # (`_merged` keeps the first of two equal joins).
        found_n.sort(key=lambda c: (c[0], c[1]))
        for _key, owner, z, n_words, gram in found_n:
            chosen[owner].append((z, n_words, gram))

    for ci, creator in enumerate(creators):
        prof = profiles.get(creator)
        if prof is None:
            continue
        found = chosen[ci]
        terms = [g for _z, _n, g in sorted((c for c in found if c[1] == 1), reverse=True)]
        phrases = _maximal(_merged(
            [(z, n, g) for z, n, g in found if n > 1], "\n".join(spoken[ci]), options
        ))
        vocab_out: dict[str, list[str]] = {}
        if phrases:
            vocab_out["signature_phrases"] = phrases[: options.max_phrases]
            prof["_source"]["signature_phrases"] = MEASURED
        if terms:
            vocab_out["distinctive_terms"] = terms[: options.max_terms]
            prof["_source"]["distinctive_terms"] = MEASURED
        if vocab_out:
            prof["vocabulary"] = vocab_out
    return profiles


# Windows counted at once: a bucket of about this many n-grams is sorted at a time.
BUCKET_WINDOWS = 1 << 18


def _keys(np: Any, tok: Any, starts: Any, n: int) -> Any:
    """The 64-bit key of the n-gram starting at each of `starts`."""
    keys = tok[starts].astype(np.uint64)
    if n == 1:
        return keys
    # In place, through reused buffers. The words of a window are ids >= 0 (no clause end
    # inside), so uint32 is exact.
    word = np.empty(len(starts), dtype=np.int32)
    shifted = np.empty(len(starts), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(1, n):
            keys *= np.uint64(0x9E3779B97F4A7C15)
            np.take(tok[j:], starts, out=word)  # tok[starts + j], no index copy
            keys += word.view(np.uint32)
            np.right_shift(keys, np.uint64(29), out=shifted)
            keys ^= shifted
    return keys


def _score_bucket(
    np: Any, keys: Any, starts: Any, n: int, tok: Any, words: list[str], doc_end_arr: Any,
    doc_creator_arr: Any, stop_ids: Any, min_docs_by_creator: Any, totals_by_creator: Any,
    grand: float, n_creators: int, options: Options,
) -> list[tuple[int, int, float, int, str]]:
    """(key, creator, z, n, n-gram) for each n-gram of this bucket a creator says
    distinctively: every window of each of its keys is in `keys`/`starts`, in position order."""
    # By key, then document: positions rise with documents, so a stable sort of the keys
    # alone keeps each key's windows in document order (no sort key for documents).
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = starts[order]
    del order
    docs = np.searchsorted(doc_end_arr, starts, side="right").astype(np.int32)
    owners = doc_creator_arr[docs]
    size = len(keys)
    new_key = np.ones(size, dtype=bool)
    new_key[1:] = keys[1:] != keys[:-1]
    new_pair = new_key.copy()
    new_pair[1:] |= owners[1:] != owners[:-1]
    new_doc = new_key.copy()
    new_doc[1:] |= docs[1:] != docs[:-1]
    key_starts = np.flatnonzero(new_key).astype(np.int32)
    pair_starts = np.flatnonzero(new_pair).astype(np.int32)
    del new_pair
    key_totals = np.diff(np.append(key_starts, np.int32(size)))
    pair_counts = np.diff(np.append(pair_starts, np.int32(size)))
    del key_starts
    pair_docs = np.add.reduceat(new_doc.astype(np.int32), pair_starts)
    del new_doc, docs
    pair_key = np.cumsum(new_key, dtype=np.int32)[pair_starts] - 1
    pair_owner = owners[pair_starts]
    del owners, new_key

    # Per creator, then looked up per pair: whole numbers, as the document counts are.
    min_docs = min_docs_by_creator[pair_owner]
    keep = (pair_owner < n_creators) & (pair_counts >= options.min_count) & (pair_docs >= min_docs)
    if n == 1:
        keep &= ~stop_ids[tok[starts[pair_starts]]]
    cand = np.flatnonzero(keep)
    out: list[tuple[int, int, float, int, str]] = []
    if not len(cand):
        return out
    y_i = pair_counts[cand].astype(np.float64)
    y_all = key_totals[pair_key[cand]].astype(np.float64)
    y_j = y_all - y_i
    n_i = totals_by_creator[pair_owner[cand]]
    n_j = grand - n_i
    # Prior: the n-gram's share of the corpus, weighing a tenth of the corpus: strong
    # enough that a phrase said three times by one creator and never by the others is
    # not certain, weak enough that a habit seen in several videos clears `min_z`.
    alpha0 = PRIOR_WEIGHT * grand
    alpha = alpha0 * y_all / grand
    delta = np.log((y_i + alpha) / (n_i + alpha0 - y_i - alpha)) - np.log(
        (y_j + alpha) / (n_j + alpha0 - y_j - alpha)
    )
    z = delta / np.sqrt(1.0 / (y_i + alpha) + 1.0 / (y_j + alpha))
    rate_i = y_i / n_i
    rate_j = (y_j + 1.0) / (n_j + 1.0)
    ok = (z >= options.min_z) & (rate_i >= options.min_ratio * rate_j)
    for idx in np.flatnonzero(ok):
        p = cand[idx]
        at = int(starts[pair_starts[p]])
        gram = [words[t] for t in tok[at:at + n].tolist()]
        if n > 1 and (gram[-1] in _EDGE_END or gram[0] in _EDGE_START):
            continue
        if n == 1 and (len(gram[0]) < 3 or gram[0].replace("'", "").isdigit()):
            continue
        owner = int(pair_owner[p])
        out.append((int(keys[pair_starts[p]]), owner, float(z[idx]), n, " ".join(gram)))
    return out


MAX_MERGED_WORDS = 8


def _merged(
    found: list[tuple[float, int, str]], spoken: str, options: Options
) -> list[tuple[float, int, str]]:
    """`found` plus the phrases made by joining two that overlap ("big shout out to
    everyone" + "everyone in the comments"), when the joined phrase itself occurs at
    least `min_count` times: a habit longer than the longest n-gram comes out whole."""
    out = list(found)
    frontier = list(found)
    seen = {g for _z, _n, g in found}
    while frontier:
        grown = []
        for za, _na, a in frontier:
            wa = a.split()
            for zb, _nb, b in out:
                wb = b.split()
                for k in range(min(len(wa), len(wb)) - 1, 0, -1):
                    if wa[-k:] != wb[:k]:
                        continue
                    words = wa + wb[k:]
                    joined = " ".join(words)
                    if len(words) > MAX_MERGED_WORDS or joined in seen:
                        break
                    seen.add(joined)
                    if spoken.count(f" {joined} ") >= options.min_count:
                        grown.append((max(za, zb), len(words), joined))
                    break
        out.extend(grown)
        frontier = grown
    return out


def _maximal(found: list[tuple[float, int, str]]) -> list[str]:
    """Phrases by falling z-score, without those inside a longer kept phrase."""
    longest_first = sorted(found, key=lambda c: (-c[1], -c[0]))
    kept: list[tuple[float, str]] = []
    for z, _n, gram in longest_first:
        padded = f" {gram} "
        if any(padded in f" {longer} " for _z, longer in kept):
            continue
        kept.append((z, gram))
    return [g for _z, g in sorted(kept, key=lambda c: -c[0])]
