"""Oracle improvisation in latent space: VMO navigation and query-guided resynthesis (PAPER.md section 8).

The VAE decodes latent states but has no sense of time; the Variable Markov Oracle (VMO) knows which
bar may follow which but its features cannot be decoded. Built on **latent means** (cosine distance),
the oracle chooses a new order of latent states and the VAE decodes them, so *which bar follows which*
becomes a second knob next to the bit budget. Two generators:

* **Navigation** over the query's own oracle (:func:`navigate_path`): start on the first bar; at each
  bar continue to the next state with probability ``continuity``, otherwise jump along the suffix link
  or a reverse suffix link of the current state to a state that shares a context (longest repeated
  suffix) of at least ``min_context`` bars with it, and continue from that state's successor.
  ``continuity = 1`` replays the query: the output equals :func:`qbdi_utils.improvise.improvise`
  note for note at every bit budget and seed.
* **Query-guided resynthesis** over the oracle of the model's training corpus
  (:func:`qbdi_utils.navigate_guided.guided_path`, after Wang, Hsu & Dubnov 2016): among all
  paths through the corpus oracle's moves, the one whose latent means are closest (summed cosine
  distance) to the query's, found exactly by dynamic programming (Viterbi over oracle states). The moves out of state j are the forward transitions of j
  and of every state linked to j by a suffix or reverse suffix link (the root excluded), minus the
  artificial step from the last bar of one piece to the first bar of the next. ``vmo.analysis.query``
  differs: it keeps one greedy path per starting symbol and lets each step go to any state of the
  reached symbol, so its cost is not the optimum; here the brute force over all paths is the reference.

Both chosen latent sequences then go through the rate-limited channel in any statistics mode and bit
budget and are decoded exactly as :func:`qbdi_utils.improvise.improvise_batch` does it (the path's
latent means and log-variances replace the query's in an :class:`~qbdi_utils.improvise.EncodedQuery`;
"query" statistics are those of the transmitted sequence, which for continuity 1 is the query itself).
The channel noise uses ``default_rng(seed)`` like ``improvise``; the path uses its own stream derived
from the same seed.

Oracles: the query oracle is :func:`qbdi_utils.dynamics.build_oracle` on the query's latent means at
the threshold of maximal information rate (as notebook 05 picks it; 200 thresholds). The corpus oracle
(~6,000 bars) uses the same construction (``dynamics.oracle_from_rows``) on a float32 cosine-distance matrix
(about 140 MB for the chorales, freed after the build) and its threshold maximises the information rate
over a coarser grid (``n_thresholds``, default 20).

The guided path's dynamic programme is :mod:`qbdi_utils.navigate_guided`; the path's JSON record is
:mod:`qbdi_utils.navigate_output`; notebook 07's measures and sweep are
:mod:`qbdi_utils.navigate_sweep`, its measures against random-jump baselines and the corpus path's
jump-cost frontier :mod:`qbdi_utils.navigate_measures`.

Imports: corpus, dynamics, vmo_features, improvise, model, training, errors, navigate_guided.
Used in: notebooks/07_oracle_improvisation.ipynb, ``qbdi navigate``, benchmarks/bench_navigate.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import dynamics, improvise, vmo_features
from qbdi_utils.model import DEFAULT_CONFIG, frames_fingerprint
from qbdi_utils.training import recorded_corpus, same_config
from qbdi_utils.errors import CorpusError, OptionError
from qbdi_utils.improvise import EncodedQuery, Improvisation
from qbdi_utils.navigate_guided import cosine_to, guided_path

__all__ = [
    "SOURCES",
    "LatentOracle",
    "Navigation",
    "DEFAULT_CONTINUITY",
    "check_continuity",
    "check_min_context",
    "query_oracle",
    "corpus_oracle",
    "model_corpus",
    "navigate_path",
    "jump_candidates",
    "decode_path",
    "navigate",
    "navigate_batch",
]

#: Where the oracle comes from: the query itself, or the model's training corpus.
SOURCES: tuple = ("query", "corpus")

#: Probability of playing the next bar when a caller gives none (``qbdi navigate``, :func:`navigate`);
#: 1 replays the query, as :func:`qbdi_utils.improvise.improvise` does.
DEFAULT_CONTINUITY: float = 0.8

# the path's random stream: SeedSequence([seed, _PATH_STREAM]), independent of the channel's default_rng(seed)
_PATH_STREAM = 0x6E6176


@dataclass
class LatentOracle:
    """A VMO built on a sequence of latent means, with where each state came from.

    Attributes:
        oracle: the :class:`qbdi_utils.dynamics.Oracle`; its state i + 1 is frame i.
        mean: (N, L) float32 latent means (the oracle's features).
        logvar: (N, L) float32 log-variances of the same frames.
        frames: (N, spec.frame_size) uint8 frames, or None.
        piece_index: (N,) int piece of each frame (all 0 for a query).
        piece_names: names of the pieces.
        piece_bar: (N,) int bar (frame) of each frame within its piece, 0-based.
        source: "query" or "corpus".
        threshold: cosine-distance threshold of the oracle.
        build_seconds: wall time of encoding, distances, threshold search and build.
    """

    oracle: dynamics.Oracle
    mean: np.ndarray
    logvar: np.ndarray
    frames: np.ndarray | None
    piece_index: np.ndarray
    piece_names: list
    piece_bar: np.ndarray
    source: str
    threshold: float
    build_seconds: float = 0.0

    @property
    def n_frames(self) -> int:
        """Number of frames (oracle states minus the root)."""
        return int(self.mean.shape[0])

    def label(self, i: int) -> tuple[str, int]:
        """(piece name, 0-based bar within the piece) of frame ``i``."""
        return self.piece_names[int(self.piece_index[i])], int(self.piece_bar[i])


@dataclass
class Navigation(Improvisation):
    """An :class:`~qbdi_utils.improvise.Improvisation` whose bars follow an oracle path.

    Attributes (beyond :class:`Improvisation`'s):
        source: "query" or "corpus".
        continuity: probability of continuing (navigation), None for the corpus source.
        min_context: shortest shared context of a jump (navigation), None for the corpus source.
        path: (N,) int frame of the oracle's sequence that each output bar decodes.
        jumps: (N,) bool, the bar was reached by a jump (not the next bar of the same piece).
        labels: N (piece name, bar) pairs, where each output bar came from.
        oracle_threshold: cosine threshold of the oracle.
        path_cost: summed cosine distance of the path to the query's latent means (corpus source;
            nan for navigation).
    """

    source: str = "query"
    continuity: float | None = None
    min_context: int | None = None
    path: np.ndarray | None = None
    jumps: np.ndarray | None = None
    labels: list = field(default_factory=list)
    oracle_threshold: float = float("nan")
    path_cost: float = float("nan")


# ----------------------------------------------------------------------------------------------
# options


def check_continuity(value) -> float:
    """Parse a continuity: a probability in [0, 1].

    Args:
        value: number or string.

    Returns:
        the continuity as a float.

    Raises:
        OptionError: not a number, or outside [0, 1].

    Used in: ``qbdi navigate``.
    """
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"continuity {value!r} is not a number; give a probability in [0, 1]") from None
    if not 0.0 <= p <= 1.0:
        raise OptionError(f"continuity {p:g} lies outside [0, 1]; it is the probability of playing the next bar")
    return p


def check_min_context(value) -> int:
    """Parse a minimum shared context: a whole number of bars >= 0.

    Args:
        value: int or string.

    Returns:
        the number of bars.

    Raises:
        OptionError: not a whole number, or negative.

    Used in: ``qbdi navigate``.
    """
    try:
        k = int(str(value).strip())
    except ValueError:
        raise OptionError(f"min-context {value!r} is not a whole number of bars") from None
    if k < 0:
        raise OptionError(f"min-context {k} is negative; give 0 or more bars of shared context")
    return k


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise OptionError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    return source


# ----------------------------------------------------------------------------------------------
# oracles


def query_oracle(model, query, threshold: float | None = None) -> tuple[EncodedQuery, LatentOracle]:
    """Encode ``query`` and build the VMO on its latent means (cosine distance).

    Args:
        model: a StyleVAE.
        query: the query :class:`~qbdi_utils.pianoroll.Piece` (or an already encoded
            :class:`~qbdi_utils.improvise.EncodedQuery`).
        threshold: cosine threshold; None picks the one of maximal information rate over 200
            thresholds (:func:`qbdi_utils.dynamics.ir_curve`, as notebook 05 does).

    Returns:
        (encoded query, :class:`LatentOracle` over its N frames).

    Raises:
        OptionError: a negative threshold.
        NoNotesError, ModelError: from :func:`qbdi_utils.improvise.encode_query`.

    Used in: notebooks/07_oracle_improvisation.ipynb, ``qbdi navigate``.
    """
    t0 = time.perf_counter()
    enc = query if isinstance(query, EncodedQuery) else improvise.encode_query(model, query)
    d = vmo_features.pairwise_distances(enc.mean, "cosine")
    if threshold is None:
        threshold = dynamics.ir_curve(None, metric="cosine", distances=d).best_threshold
    elif not float(threshold) >= 0:
        raise OptionError(f"oracle threshold {threshold} must be >= 0")
    oracle = dynamics.build_oracle(threshold=float(threshold), distances=d)
    n = enc.mean.shape[0]
    lo = LatentOracle(oracle=oracle, mean=enc.mean, logvar=enc.logvar, frames=enc.frames,
                      piece_index=np.zeros(n, np.int64), piece_names=[enc.query.name or "query"],
                      piece_bar=np.arange(n), source="query", threshold=float(threshold),
                      build_seconds=time.perf_counter() - t0)
    return enc, lo


class _Rows:
    """Row access of a distance matrix for ``dynamics.oracle_from_rows`` without a nested-list copy."""

    def __init__(self, d):
        self.d = d

    def __getitem__(self, i):
        return self.d[i]


def _cosine_matrix(x: np.ndarray) -> np.ndarray:
    """(N, N) float32 cosine distances with the silence rule of vmo_features.pairwise_distances."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1)
    zero = norm == 0
    u = np.divide(x, norm[:, None], out=np.zeros_like(x), where=~zero[:, None])
    d = u @ u.T
    np.subtract(np.float32(1.0), d, out=d)
    if zero.any():
        d[zero, :] = 1.0
        d[:, zero] = 1.0
        d[np.ix_(zero, zero)] = 0.0
    return d


def _oracle_on(d: np.ndarray, threshold: float) -> dynamics.Oracle:
    return dynamics.oracle_from_rows(d, _Rows(d), float(threshold))


def corpus_oracle(model, corpus=None, threshold: float | None = None, n_thresholds: int = 20,
                  progress: bool = False) -> LatentOracle:
    """Encode the model's training corpus and build the VMO on its latent means, in piece order.

    Args:
        model: a StyleVAE.
        corpus: a :class:`~qbdi_utils.corpus.Corpus` or a corpus source ("chorales" or a folder);
            None finds the model's own (:func:`model_corpus`). Its frames must be the model's
            training frames (same fingerprint).
        threshold: cosine threshold; None maximises the total information rate over
            ``n_thresholds`` evenly spaced thresholds from 0 to the largest distance.
        n_thresholds: size of that grid (>= 2).
        progress: progress bars while a corpus is parsed.

    Returns:
        :class:`LatentOracle` over the corpus's frames (``build_seconds``: encoding, distances,
        threshold search and build together).

    Raises:
        CorpusError: the training corpus is unknown, unavailable or not the one the model was
            trained on.

    Used in: notebooks/07_oracle_improvisation.ipynb, ``qbdi navigate --source corpus``,
    benchmarks/bench_navigate.py.
    """
    t0 = time.perf_counter()
    c = model_corpus(model, corpus, progress=progress)
    mean, logvar = model.encode(c.frames)
    mean = np.asarray(mean, np.float32)
    d = _cosine_matrix(mean)
    if threshold is None:
        if int(n_thresholds) < 2:
            raise OptionError(f"n_thresholds {n_thresholds} must be at least 2")
        best, best_ir = 0.0, -np.inf
        for t in dynamics.default_thresholds(d, int(n_thresholds)):
            ir = float(dynamics.ir_per_frame(_oracle_on(d, t)).sum())
            if ir > best_ir:
                best, best_ir = float(t), ir
        threshold = best
    elif not float(threshold) >= 0:
        raise OptionError(f"oracle threshold {threshold} must be >= 0")
    oracle = _oracle_on(d, float(threshold))
    del d
    pidx = np.asarray(c.piece_index, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(pidx)) + 1]
    lengths = np.diff(np.r_[starts, len(pidx)])
    piece_bar = np.arange(len(pidx)) - np.repeat(starts, lengths)
    return LatentOracle(oracle=oracle, mean=mean, logvar=np.asarray(logvar, np.float32), frames=c.frames,
                        piece_index=pidx, piece_names=list(c.piece_names), piece_bar=piece_bar,
                        source="corpus", threshold=float(threshold), build_seconds=time.perf_counter() - t0)


def model_corpus(model, corpus=None, progress: bool = False):
    """The corpus the model was trained on, checked against the model's frame fingerprint.

    Where it comes from: ``corpus`` when given; else ``model.info["corpus"]`` (source and options,
    recorded by ``qbdi train``); else, for a model with the default configuration (as
    :func:`qbdi_utils.training.default_model` trains it), the default chorale corpus.

    Args:
        model: a StyleVAE (``fingerprint``, ``info``, ``config``, ``spec``).
        corpus: optional :class:`~qbdi_utils.corpus.Corpus` or source ("chorales", a folder).
        progress: progress bars while parsing.

    Returns:
        :class:`~qbdi_utils.corpus.Corpus` whose frames have the model's fingerprint.

    Raises:
        CorpusError: the model records no corpus, the recorded corpus is gone, or its frames are not
            the model's training frames.

    Used in: :func:`corpus_oracle`.
    """
    if corpus is None:
        rec = recorded_corpus(model)
        if rec is not None:
            source, kw = rec
        elif same_config(model.config, DEFAULT_CONFIG):
            source, kw = "chorales", {}
        else:
            raise CorpusError("the model does not record the corpus it was trained on (models from "
                              "`qbdi train` do); use --source query, or retrain the model with `qbdi train`")
        if source not in corpus_mod.NAMED_SOURCES and not Path(source).exists():
            raise CorpusError("the model's training corpus no longer exists; restore it or retrain the "
                              "model (--source query needs no corpus)", source)
        c = corpus_mod.load_corpus(source, spec=model.spec, progress=progress, **kw)
    elif isinstance(corpus, corpus_mod.Corpus):
        c = corpus
    else:
        c = corpus_mod.load_corpus(corpus, spec=model.spec, progress=progress)
    if frames_fingerprint(c.frames) != model.fingerprint:
        raise CorpusError(f"the corpus ({c.n_frames} frames) is not the one the model was trained on "
                          "(frame fingerprints differ); the corpus changed since training, so retrain "
                          "the model or use --source query")
    return c


# ----------------------------------------------------------------------------------------------
# navigation


def jump_candidates(oracle: dynamics.Oracle, p: int, min_context: int = 1) -> list[int]:
    """States a navigation may jump to from state ``p``: its suffix link, then its reverse suffix links.

    Args:
        oracle: :class:`qbdi_utils.dynamics.Oracle` on N frames.
        p: oracle state (frame p - 1).
        min_context: shortest shared context (``lrs`` of the link, in frames).

    Returns:
        linked states s (1 <= s < N, so s has a successor) sharing at least ``min_context`` frames.

    Used in: :func:`navigate_path`, :mod:`qbdi_utils.navigate_measures`.
    """
    o, n = oracle, oracle.n_frames
    out = []
    s = o.sfx[p]
    if s:
        out.append((s, o.lrs[p]))
    out.extend((r, o.lrs[r]) for r in o.rsfx[p])
    return [s for s, ctx in out if ctx >= min_context and 1 <= s < n]


def navigate_path(oracle: dynamics.Oracle, length: int, continuity: float, min_context: int = 1,
                  rng: np.random.Generator | None = None, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A new path of ``length`` frames through ``oracle`` (the classic oracle improviser).

    Frame t + 1 follows frame t: with probability ``continuity`` (one ``rng.random()`` draw per
    step, ``u < continuity``) it is the next frame; otherwise a jump: among the state's suffix link
    and reverse suffix links (state s sharing a context of ``lrs`` >= ``min_context`` frames, with a
    successor), one is drawn uniformly (``rng.integers``) and the path continues from its successor.
    With no such link the path continues (not a jump); at the last frame with no link it restarts
    from the successor of the suffix link (a jump).

    Args:
        oracle: :class:`qbdi_utils.dynamics.Oracle` on N frames.
        length: frames to generate (>= 1).
        continuity: probability in [0, 1] of playing the next frame.
        min_context: shortest shared context (frames) of a jump.
        rng: numpy Generator (required unless ``continuity`` is 1).
        start: first frame (0-based).

    Returns:
        (path (length,) int64 0-based frames, jumps (length,) bool; jumps[0] is False).

    Raises:
        OptionError: continuity outside [0, 1] or negative min_context.

    Used in: :func:`navigate`, notebooks/07_oracle_improvisation.ipynb.
    """
    continuity = check_continuity(continuity)
    min_context = check_min_context(min_context)
    n = oracle.n_frames
    if not 0 <= start < n:
        raise ValueError(f"start {start} outside 0..{n - 1}")
    if rng is None:
        if continuity < 1.0:
            raise ValueError("a Generator rng is needed when continuity < 1")
        rng = np.random.default_rng(0)
    path = np.empty(int(length), np.int64)
    jumps = np.zeros(int(length), bool)
    p = start + 1  # oracle state
    if length:
        path[0] = start
    for t in range(1, int(length)):
        if rng.random() < continuity and p < n:
            p += 1
        else:
            cands = jump_candidates(oracle, p, min_context)
            if cands:
                p = cands[int(rng.integers(len(cands)))] + 1
                jumps[t] = True
            elif p < n:
                p += 1
            else:
                p = (oracle.sfx[p] or 0) + 1
                jumps[t] = True
        path[t] = p - 1
    return path, jumps




# ----------------------------------------------------------------------------------------------
# decoding a path


def _path_and_jumps(enc: EncodedQuery, source: str, qo: LatentOracle | None, co: LatentOracle | None, *,
                    continuity, min_context, seed, jump_cost=0.0):
    """(oracle, path, jumps, path cost) of one seed: navigation over ``qo`` or the guided path over ``co``."""
    n = enc.mean.shape[0]
    if source == "query":
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _PATH_STREAM]))
        path, jumps = navigate_path(qo.oracle, n, continuity, min_context, rng)
        return qo, path, jumps, float("nan")
    cost = cosine_to(enc.mean, co.mean)
    path, total = guided_path(co.oracle, cost, co.piece_index, jump_cost=jump_cost)
    if not np.isfinite(total):
        raise CorpusError(f"no path of {n} bars through the corpus oracle; the corpus is too small")
    jumps = np.zeros(n, bool)
    jumps[1:] = ~((path[1:] == path[:-1] + 1) & (co.piece_index[path[1:]] == co.piece_index[path[:-1]]))
    return co, path, jumps, total


def decode_path(model, enc: EncodedQuery, oracle: LatentOracle, path, jumps, *, rates=(None,), seeds=(0,),
                mode: str = "query", threshold: float | None = None, tag: str = "path") -> dict:
    """Send the latent states of ``oracle`` along ``path`` through the channel and decode them.

    The path's latent means and log-variances replace the query's in ``enc``; the rest is
    :func:`qbdi_utils.improvise.improvise_batch` (channel noise ``default_rng(seed)``).

    Args:
        model: a StyleVAE.
        enc: the encoded query (its length, tempo and meter are kept).
        oracle: the :class:`LatentOracle` whose frames ``path`` indexes.
        path: (N,) int frames of ``oracle``, N = the query's frames.
        jumps: (N,) bool, bar reached by a jump.
        rates, seeds, mode, threshold: as :func:`qbdi_utils.improvise.improvise_batch`.
        tag: what the output's name says it is.

    Returns:
        dict ``(bits, seed) -> Navigation`` (source "query" or "corpus" from the oracle; continuity,
        min_context and path cost left for the caller).

    Used in: :func:`navigate_batch`, :mod:`qbdi_utils.navigate_measures` (random-jump baselines).
    """
    path = np.asarray(path, np.int64)
    if path.shape != (enc.mean.shape[0],):
        raise ValueError(f"path must have shape ({enc.mean.shape[0]},), got {path.shape}")
    lo = oracle
    sent = replace(enc, mean=lo.mean[path], logvar=lo.logvar[path],
                   frames=None if lo.frames is None else lo.frames[path])
    pieces = improvise.improvise_batch(model, sent, rates, seeds, mode, threshold=threshold)
    labels = [lo.label(i) for i in path]
    out = {}
    for (bits, s), imp in pieces.items():
        base = {f.name: getattr(imp, f.name) for f in fields(Improvisation)}
        base["name"] = f"{enc.query.name or 'query'} {tag} @ {improvise.rate_label(bits)}"
        out[(bits, s)] = Navigation(**base, source=lo.source, path=path.copy(),
                                    jumps=np.asarray(jumps, bool).copy(), labels=labels,
                                    oracle_threshold=lo.threshold)
    return out


def navigate_batch(model, query, source: str = "query", continuity: float = DEFAULT_CONTINUITY,
                   min_context: int = 1, *, rates=(None,), seeds=(0,), mode: str = "query",
                   threshold: float | None = None, oracle: LatentOracle | None = None,
                   oracle_threshold: float | None = None, jump_cost: float = 0.0) -> dict:
    """Navigate (or resynthesise) once per seed and decode each path at every bit budget.

    For each seed: the path (:func:`navigate_path` with ``SeedSequence([seed, ...])``, or the seed-free
    :func:`qbdi_utils.navigate_guided.guided_path`); then the path's latent means/log-variances go through
    :func:`qbdi_utils.improvise.improvise_batch` with that seed (channel noise ``default_rng(seed)``).

    Args:
        model: a StyleVAE.
        query: the query Piece or an EncodedQuery.
        source: "query" (navigation) or "corpus" (query-guided resynthesis).
        continuity, min_context: navigation parameters (ignored for the corpus source).
        rates: bit budgets, ``None``/"full" = full rate.
        seeds: seeds (or an int K: 0..K-1).
        mode: channel statistics mode.
        threshold: binarization threshold (None: the model's).
        oracle: a prebuilt :class:`LatentOracle` (the query's for "query", e.g. from
            :func:`corpus_oracle` for "corpus"); None builds it.
        oracle_threshold: cosine threshold when the oracle is built here (None: max IR).
        jump_cost: cost per jump of the guided path (corpus source; see
            :func:`qbdi_utils.navigate_guided.guided_path`).

    Returns:
        dict ``(bits, seed) -> Navigation``.

    Raises:
        OptionError: a bad source, continuity, min_context, mode or budget.
        CorpusError: corpus source without the model's training corpus.

    Used in: notebooks/07_oracle_improvisation.ipynb, ``qbdi navigate``.
    """
    _check_source(source)
    if source == "query":
        continuity = check_continuity(continuity)
        min_context = check_min_context(min_context)
    improvise.check_stats_mode(mode)
    rates = [improvise.parse_bits(b) for b in rates]
    seeds = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    enc = query if isinstance(query, EncodedQuery) else improvise.encode_query(model, query)
    qo = co = None
    if source == "query":
        qo = oracle if oracle is not None else query_oracle(model, enc, oracle_threshold)[1]
        if qo.n_frames != enc.mean.shape[0]:
            raise ValueError("the query oracle was built on another query")
    else:
        co = oracle if oracle is not None else corpus_oracle(model, threshold=oracle_threshold)
    out = {}
    guided = None
    for seed in seeds:
        if source == "corpus" and guided is not None:
            lo, path, jumps, total = guided
        else:
            lo, path, jumps, total = _path_and_jumps(enc, source, qo, co, continuity=continuity,
                                                     min_context=min_context, seed=seed, jump_cost=jump_cost)
            if source == "corpus":
                guided = (lo, path, jumps, total)
        tag = f"navigated (p={continuity:g}, k={min_context})" if source == "query" else "corpus-guided"
        for key, nav in decode_path(model, enc, lo, path, jumps, rates=rates, seeds=[seed], mode=mode,
                                    threshold=threshold, tag=tag).items():
            nav.source = source
            nav.continuity = float(continuity) if source == "query" else None
            nav.min_context = int(min_context) if source == "query" else None
            nav.path_cost = total
            out[key] = nav
    return out


def navigate(model, query, source: str = "query", continuity: float = DEFAULT_CONTINUITY,
             min_context: int = 1, *, bits=None, mode: str = "query", seed: int = 0,
             threshold: float | None = None, oracle: LatentOracle | None = None,
             oracle_threshold: float | None = None, jump_cost: float = 0.0) -> Navigation:
    """One oracle improvisation on ``query``: a new bar order, sent through the channel, decoded.

    ``navigate(model, q, "query", continuity=1, bits=B, mode=M, seed=S)`` equals
    ``improvise(model, q, B, M, S)`` note for note.

    Args:
        model: a StyleVAE.
        query: the query Piece (or EncodedQuery).
        source: "query" (navigate the query's oracle) or "corpus" (query-guided path through the
            model's training corpus).
        continuity: probability of playing the next bar (navigation).
        min_context: shortest shared context (bars) of a jump (navigation).
        bits: bits per frame, None/"full" for full rate.
        mode: channel statistics mode ("query" = statistics of the transmitted sequence).
        seed: seed of the path and of the channel noise.
        threshold: binarization threshold (None: the model's).
        oracle: a prebuilt :class:`LatentOracle` (see :func:`navigate_batch`).
        oracle_threshold: cosine threshold when building the oracle here (None: max IR).
        jump_cost: cost per jump of the guided path (corpus source).

    Returns:
        :class:`Navigation` with the query's length, tempo and meter, and its path.

    Raises:
        OptionError: bad source, continuity, min_context, mode or budget.
        CorpusError: corpus source and the model's corpus is unavailable.

    Used in: ``qbdi navigate``, notebooks/07_oracle_improvisation.ipynb.
    """
    b = improvise.parse_bits(bits)
    return navigate_batch(model, query, source, continuity, min_context, rates=[b], seeds=[seed], mode=mode,
                          threshold=threshold, oracle=oracle, oracle_threshold=oracle_threshold,
                          jump_cost=jump_cost)[(b, int(seed))]
