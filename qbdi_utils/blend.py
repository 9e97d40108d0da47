"""The blend on both sides: query fidelity against style fidelity over bit budgets, beside baselines.

PAPER.md section 9. For one query, every generation becomes a point in the plane (query fidelity:
chroma cosine / triad agreement with the query; style fidelity: :func:`qbdi_utils.style.style_fit_corpus`),
with :func:`qbdi_utils.style.fidelity` as the one measurement:

- :func:`channel_curve`: the paper's channel over bit budgets (:func:`qbdi_utils.improvise.improvise_batch`),
  thresholded or Bernoulli-sampled decoding, means over channel seeds;
- :func:`interpolation_curve`: latent interpolation z = a mu_query + (1 - a) mean_corpus, no channel;
- :func:`retrieval`: each query bar replaced by its nearest corpus training bar (by chroma, by latent);
- :func:`query_end`, :func:`corpus_end`: the two ends (the query itself; corpus test bars drawn at random);
- :func:`decoding`: the keyword arguments of a decoding of :data:`qbdi_utils.improvise.DECODE_MODES`
  for a model, its training bars found through its recorded corpus;
- :func:`matched`: a baseline against the channel's curve at the same query fidelity;
- :func:`thesis`, :func:`findings`: does style fidelity rise as bits fall; sentences with the numbers.

Imports improvise, navigate, style, harmony, pianoroll and claims (never the other way round).

Used in: notebooks/08_blend.ipynb.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qbdi_utils import harmony, improvise, navigate, style
from qbdi_utils.claims import spearman
from qbdi_utils.errors import ModelError
from qbdi_utils.training.threshold import sustain_threshold_of

__all__ = [
    "BLEND_RATES", "ALPHAS", "POINT_KEYS", "TARGET_KEYS", "decoding", "targets", "thinning", "measure", "channel_curve", "interpolation_curve",
    "retrieval", "retrieval_rows", "query_end", "corpus_end", "matched", "thesis", "findings",
    "SWEEP_STYLE_COLUMNS", "sweep_with_fidelity",
]

#: Bit budgets of the blend curve (bits per frame; None = full rate).
BLEND_RATES: tuple = (None, 1024, 256, 128, 64, 32, 16, 8, 0)
#: Weights a of the query's latent means in the interpolation baseline (1 = full rate, 0 = corpus mean).
ALPHAS: tuple = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
#: Numeric columns of every point: the fidelity line plus the classifier's mean P(corpus style).
POINT_KEYS = style.FIDELITY_KEYS + ("p_corpus",)
#: The targets of issue 23, in the order :func:`targets` returns them.
TARGET_KEYS = ("onsets_within_25pct", "empty_at_most_corpus_plus_002", "full_rate_fit_query_plus_01",
               "fit_holds_to_16_bits", "full_rate_triads_kept")


def measure(query, output, corpus_ref, query_ref=None, classifier=None) -> dict:
    """:func:`qbdi_utils.style.fidelity` of one output plus the classifier's mean P(corpus style) per bar.

    Returns:
        dict with :data:`POINT_KEYS` (``p_corpus`` nan without a classifier).
    """
    d = style.fidelity(query, output, corpus_ref, query_ref)
    if classifier is None:
        d["p_corpus"] = float("nan")
    else:
        d["p_corpus"] = float(np.mean(classifier.p_corpus(style.bar_descriptors(output, output.spec,
                                                                               query.bar_offset_steps))))
    return d


def _mean_rows(label: str, method: str, knob, measured: Sequence[dict]) -> dict:
    row = {"method": method, "label": label, "knob": knob, "n": len(measured)}
    for k in POINT_KEYS:
        v = np.array([m[k] for m in measured], np.float64)
        row[k] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        row[f"{k}_sd"] = float(np.nanstd(v)) if np.isfinite(v).any() else float("nan")
    return row


def decoding(model, mode: str, corpus=None) -> dict:
    """Keyword arguments of ``improvise.improvise`` / ``improvise_batch`` for one decoding of a model.

    The one entry point of ``qbdi improvise --decode MODE``: "paper" needs nothing; "floor" and
    "typical" need the model's training bars, taken from its corpus
    (:func:`qbdi_utils.navigate.model_corpus`, fingerprint checked) and its split
    (:func:`qbdi_utils.style.split_masks`), then :func:`qbdi_utils.improvise.decode_options`.

    Args:
        model: a StyleVAE.
        mode: one of :data:`qbdi_utils.improvise.DECODE_MODES`.
        corpus: the model's Corpus (or source, or a function returning the Corpus, called only when
            the mode needs it) when known; else found from ``model.info``.

    Returns:
        dict, e.g. ``{"min_onsets": 3, "zero_bit_library": frames}``; for "sustain"
        ``{"sustain_threshold": t}``, the model's recorded continuation threshold.

    Raises:
        OptionError: an unknown mode.
        CorpusError: "floor" / "typical" for a model whose corpus is unknown or gone.
        ModelError: the model records no held-out pieces; "sustain" for a model file without a
            continuation threshold.

    Used in: notebooks/08_blend.ipynb; ``qbdi improvise --decode`` (wired by the CLI).
    """
    if mode not in improvise.DECODE_MODES or mode == "paper":
        return improvise.decode_options(mode)
    if mode == "sustain":
        ts = sustain_threshold_of(model)
        if ts is None:
            raise ModelError("this model file records no continuation threshold (sustain_threshold), so it "
                             "cannot decode with --decode sustain; record one on its validation pieces with "
                             "training.threshold.record_sustain_threshold and save the model, or use --decode paper")
        return {"sustain_threshold": ts}
    corp = navigate.model_corpus(model, corpus() if callable(corpus) else corpus)
    train = np.asarray(corp.frames)[style.split_masks(model, corp)["train"]]
    return improvise.decode_options(mode, train, model.spec)


def targets(curve: Sequence[dict], query_row: dict, corpus_ref, baseline_triad: float | None = None) -> dict:
    """The targets of issue 23 for one decoding's channel curve (budgets from full rate down to 16 bits).

    * ``onsets_within_25pct``: onsets per bar within 25% of the corpus's (its test bars) at every budget;
    * ``empty_at_most_corpus_plus_002``: empty-bar rate at most the corpus's + 0.02 at every budget;
    * ``full_rate_fit_query_plus_01``: style_fit_corpus at full rate at least the query's own + 0.1;
    * ``fit_holds_to_16_bits``: style_fit_corpus never more than 0.05 below full rate's;
    * ``full_rate_triads_kept``: full-rate triad agreement at least ``baseline_triad`` - 0.02
      (the paper's decoding's, for the same model and query; None = not judged, nan).

    Rows of budgets below 16 bits (8, 0) are not judged; the budgets judged must include full rate.

    Args:
        curve: :func:`channel_curve` rows (``knob`` = bits, None = full rate).
        query_row: :func:`query_end` of the query (its own ``style_fit_corpus``).
        corpus_ref: the corpus's :class:`~qbdi_utils.style.BarDescriptors` (onsets, empty).
        baseline_triad: full-rate triad agreement to keep.

    Returns:
        {target: True / False (nan when not judged)} for :data:`TARGET_KEYS`, plus the numbers they
        were judged on: ``corpus_onsets``, ``onsets_range`` (min, max), ``corpus_empty``,
        ``max_empty``, ``full_fit``, ``query_fit``, ``min_fit``, ``full_triad``.

    Raises:
        ValueError: no full-rate row.

    Used in: notebooks/08_blend.ipynb (the targets table), tests/test_blend.py.
    """
    judged = [r for r in curve if r["knob"] is None or r["knob"] >= 16]
    full = [r for r in judged if r["knob"] is None]
    if not full:
        raise ValueError("targets need the curve's full-rate row")
    full = full[0]
    c_on, c_empty = float(np.mean(corpus_ref.onsets)), float(np.mean(corpus_ref.empty))
    ons = [float(r["onsets_per_bar"]) for r in judged]
    fits = [float(r["style_fit_corpus"]) for r in judged]
    empties = [float(r["empty_bar_rate"]) for r in judged]
    out = {
        "onsets_within_25pct": all(abs(o - c_on) <= 0.25 * c_on for o in ons),
        "empty_at_most_corpus_plus_002": max(empties) <= c_empty + 0.02,
        "full_rate_fit_query_plus_01": float(full["style_fit_corpus"]) >= float(query_row["style_fit_corpus"]) + 0.1,
        "fit_holds_to_16_bits": min(fits) >= float(full["style_fit_corpus"]) - 0.05,
        "full_rate_triads_kept": (float("nan") if baseline_triad is None
                                  else float(full["triad_agreement"]) >= float(baseline_triad) - 0.02),
    }
    out.update({"corpus_onsets": c_on, "onsets_range": (min(ons), max(ons)), "corpus_empty": c_empty,
                "max_empty": max(empties), "full_fit": float(full["style_fit_corpus"]),
                "query_fit": float(query_row["style_fit_corpus"]), "min_fit": min(fits),
                "full_triad": float(full["triad_agreement"])})
    return out


def thinning(model, query, rates: Sequence = (None, 256, 64, 16, 0), seeds: int | Sequence[int] = 3,
             mode: str = "query") -> list[dict]:
    """Why the paper's decoding thins: per budget, how far the decoder's probabilities sit below its threshold.

    For every bar of the channel's output: its largest sounding ("play") probability; when that lies
    below ``model.threshold`` the paper's decoding leaves the bar empty.

    Args:
        model: a StyleVAE.
        query: the query Piece.
        rates: bit budgets (None = full rate).
        seeds: channel seeds (an int K: 0..K-1).
        mode: channel statistics mode.

    Returns:
        one dict per budget: ``label``, ``knob``, ``threshold``, ``max_p`` (mean over bars and seeds
        of the bar's largest play probability), ``silent_share`` (share of bars whose largest play
        probability is below the threshold: the bars the paper's decoding leaves empty).

    Used in: notebooks/08_blend.ipynb.
    """
    spec = model.spec
    enc = improvise.encode_query(model, query)
    pieces = improvise.improvise_batch(model, enc, rates, seeds, mode=mode)
    out = []
    for bits in dict.fromkeys(improvise.parse_bits(b) for b in rates):
        mx = []
        for (b, _), p in pieces.items():
            if b != bits:
                continue
            prob = np.asarray(model.decode(p.latents), np.float64)
            play = prob.reshape(len(prob), spec.steps_per_frame, spec.n_columns)[:, :, :spec.n_pitches]
            mx.append(play.reshape(len(prob), -1).max(axis=1))
        mx = np.concatenate(mx)
        out.append({"label": improvise.rate_label(bits), "knob": bits, "threshold": float(model.threshold),
                    "max_p": float(mx.mean()), "silent_share": float(np.mean(mx < model.threshold))})
    return out


def channel_curve(model, query, corpus_ref, rates: Sequence = BLEND_RATES, *, seeds: int | Sequence[int] = 3,
                  mode: str = "query", classifier=None, sample: bool = False,
                  min_onsets: int | None = None, zero_bit_library=None) -> list[dict]:
    """The channel's points over bit budgets, means (and sd) over channel seeds.

    Args:
        model: a StyleVAE.
        query: the query Piece.
        corpus_ref: :func:`qbdi_utils.style.corpus_reference` of the model.
        rates: bit budgets (None = full rate).
        seeds: channel seeds (an int K: 0..K-1).
        mode: channel statistics mode.
        classifier: optional :class:`qbdi_utils.style.StyleClassifier`.
        sample: Bernoulli-sample every cell from the decoder's probability (seeded by the channel
            seed) instead of thresholding at ``model.threshold``.
        min_onsets: None decodes as the paper; k keeps at least k onsets a bar
            (:func:`qbdi_utils.improvise.floor_decode`; method "channel, floored").
        zero_bit_library: training bars: at 0 bits each bar becomes the most similar of them
            (:func:`qbdi_utils.improvise.typical_bars`; with ``min_onsets``, the "typical" decoding,
            method "channel, typical"). ``**decoding(model, mode)`` fills both.

    Returns:
        one row per budget: ``method`` ("channel" or "channel, sampled"), ``label`` ("full rate",
        "256 bits"), ``knob`` (bits or None), ``n`` seeds, and :data:`POINT_KEYS` with ``_sd``.
    """
    enc = improvise.encode_query(model, query)
    pieces = improvise.improvise_batch(model, enc, rates, seeds, mode=mode,
                                       min_onsets=None if sample else min_onsets,
                                       zero_bit_library=None if sample else zero_bit_library)
    q_ref = style.bar_descriptors(query, query.spec)
    method = ("channel, sampled" if sample else "channel, typical" if zero_bit_library is not None
              else "channel" if min_onsets is None else "channel, floored")
    rows = []
    for bits in dict.fromkeys(improvise.parse_bits(b) for b in rates):
        measured = []
        for (b, seed), p in pieces.items():
            if b != bits:
                continue
            if sample:
                p = improvise.decode_latents(model, enc, p.latents, sample_seed=seed, bits=bits, seed=seed, mode=mode)
            measured.append(measure(query, p, corpus_ref, q_ref, classifier))
        rows.append(_mean_rows(improvise.rate_label(bits), method, bits, measured))
    return rows


def interpolation_curve(model, query, corpus_ref, alphas: Sequence[float] = ALPHAS, classifier=None) -> list[dict]:
    """Latent interpolation toward the corpus mean, no channel: z = a mu_query + (1 - a) mean_corpus.

    ``mean_corpus`` is ``model.corpus_stats["mean"]`` (the mean latent state of the training bars);
    decoded and thresholded at ``model.threshold``. Deterministic (no seed).

    Returns:
        one row per a: ``method`` "interpolation", ``label`` "a=0.6", ``knob`` a, and :data:`POINT_KEYS`.
    """
    enc = improvise.encode_query(model, query)
    q_ref = style.bar_descriptors(query, query.spec)
    mean = np.asarray(model.corpus_stats["mean"], np.float32)[None, :]
    rows = []
    for a in alphas:
        z = float(a) * enc.mean + (1.0 - float(a)) * mean
        out = improvise.decode_latents(model, enc, z)
        rows.append(_mean_rows(f"a={a:g}", "interpolation", float(a), [measure(query, out, corpus_ref, q_ref, classifier)]))
    return rows


def retrieval(model, query, library_frames, by: str = "chroma"):
    """Each bar of the query replaced by its nearest bar of a library (e.g. the corpus's training bars).

    Args:
        model: a StyleVAE (``spec``; ``encode`` for ``by="latent"``).
        query: the query Piece.
        library_frames: (M, spec.frame_size) 0/1 bar frames to retrieve from.
        by: "chroma" (largest cosine of the bar chroma; a silent query bar stays silent) or "latent"
            (smallest Euclidean distance between encoder means).

    Returns:
        :class:`qbdi_utils.improvise.Improvisation` as long as the query (``mode`` = "retrieval: <by>").
    """
    enc = improvise.encode_query(model, query)
    lib = np.asarray(library_frames)
    if by == "chroma":
        qc, lc = harmony.chroma(enc.frames, model.spec), harmony.chroma(lib, model.spec)
        qn = qc / np.maximum(np.linalg.norm(qc, axis=1, keepdims=True), 1e-12)
        ln = lc / np.maximum(np.linalg.norm(lc, axis=1, keepdims=True), 1e-12)
        idx = np.argmax(qn @ ln.T, axis=1)
        out = lib[idx].astype(np.float32)
        out[qc.sum(axis=1) == 0] = 0.0
    elif by == "latent":
        lm = np.asarray(model.encode(lib)[0], np.float64)
        qm = enc.mean.astype(np.float64)
        d2 = (qm ** 2).sum(1)[:, None] - 2 * qm @ lm.T + (lm ** 2).sum(1)[None, :]
        out = lib[np.argmin(d2, axis=1)].astype(np.float32)
    else:
        raise ValueError(f"by must be 'chroma' or 'latent', got {by!r}")
    return improvise.as_improvisation(model, enc, out, 0.5, mode=f"retrieval: {by}")


def retrieval_rows(model, query, library_frames, corpus_ref, classifier=None) -> list[dict]:
    """The two retrieval baselines (:func:`retrieval` by chroma and by latent) as measured rows.

    Returns:
        two rows with ``method`` "retrieval", ``label`` "by chroma" / "by latent" and :data:`POINT_KEYS`.
    """
    q_ref = style.bar_descriptors(query, query.spec)
    return [_mean_rows(f"by {by}", "retrieval", by,
                       [measure(query, retrieval(model, query, library_frames, by), corpus_ref, q_ref, classifier)])
            for by in ("chroma", "latent")]


def query_end(query, corpus_ref, classifier=None) -> dict:
    """The query itself as an output (query fidelity 1 by construction)."""
    q_ref = style.bar_descriptors(query, query.spec)
    return _mean_rows("query", "query itself", None, [measure(query, query, corpus_ref, q_ref, classifier)])


def corpus_end(model, query, test_frames, corpus_ref, seeds: int = 3, classifier=None) -> dict:
    """Corpus test bars drawn at random (seeded, without replacement where possible) in the query's length.

    Its style fidelity is what real corpus bars score against the reference (sampling noise
    included); its query fidelity is what no relation to the query scores.

    Returns:
        a row with ``method`` "corpus bars", means over ``seeds`` draws.
    """
    enc = improvise.encode_query(model, query)
    q_ref = style.bar_descriptors(query, query.spec)
    lib = np.asarray(test_frames)
    measured = []
    for s in range(int(seeds)):
        rng = np.random.default_rng(s)
        idx = rng.choice(len(lib), size=len(enc.frames), replace=len(lib) < len(enc.frames))
        out = improvise.as_improvisation(model, enc, lib[idx].astype(np.float32), 0.5, mode="corpus bars", seed=s)
        measured.append(measure(query, out, corpus_ref, q_ref, classifier))
    return _mean_rows("corpus test bars", "corpus bars", None, measured)


def matched(curve: Sequence[dict], points: Sequence[dict], x: str = "chroma_cosine",
            y: str = "style_fit_corpus") -> list[dict]:
    """Baseline points against the channel's curve at the same query fidelity.

    The channel's ``y`` at a baseline's ``x`` is read off the curve by linear interpolation between
    the channel's points sorted by ``x`` (nan when the baseline's ``x`` lies outside the curve's range).

    Args:
        curve: the channel's rows (:func:`channel_curve`).
        points: baseline rows.
        x, y: the query-fidelity and style-fidelity columns.

    Returns:
        one dict per point: ``method``, ``label``, ``x``, ``y``, ``channel_y`` (the curve at ``x``),
        ``difference`` (y - channel_y: > 0 means the baseline has more style at that query fidelity).
    """
    cx = np.array([r[x] for r in curve], np.float64)
    cy = np.array([r[y] for r in curve], np.float64)
    ok = np.isfinite(cx) & np.isfinite(cy)
    order = np.argsort(cx[ok], kind="mergesort")
    sx, sy = cx[ok][order], cy[ok][order]
    out = []
    for p in points:
        px, py = float(p[x]), float(p[y])
        inside = len(sx) > 0 and sx[0] <= px <= sx[-1]
        c = float(np.interp(px, sx, sy)) if inside else float("nan")
        out.append({"method": p["method"], "label": p["label"], "x": px, "y": py, "channel_y": c,
                    "difference": py - c if inside else float("nan")})
    return out


def thesis(curve: Sequence[dict], y: str = "style_fit_corpus", margin: float = 0.02) -> dict:
    """Does style fidelity rise as bits fall? Rank correlation over the channel's budgets.

    Full rate counts as infinitely many bits. The thesis holds when the Spearman correlation of
    bits with ``y`` is negative and the lowest budget's ``y`` exceeds full rate's by more than
    ``margin`` (0.02: about the spread of style_fit_corpus over channel seeds and over random draws
    of corpus bars, so a flat curve does not count as a rise).

    Returns:
        dict: ``spearman`` (bits vs y), ``full`` (y at the largest budget), ``lowest`` (y at the
        smallest budget), ``best_label`` (the budget with the highest y), ``holds`` (bool), ``margin``.
    """
    bits = np.array([np.inf if r["knob"] is None else float(r["knob"]) for r in curve])
    ys = np.array([r[y] for r in curve], np.float64)
    rho = spearman(bits, ys)
    hi, lo = int(np.argmax(bits)), int(np.argmin(bits))
    best = int(np.nanargmax(ys))
    return {"spearman": rho, "full": float(ys[hi]), "lowest": float(ys[lo]), "best_label": curve[best]["label"],
            "holds": bool(np.isfinite(rho) and rho < 0 and ys[lo] - ys[hi] > margin), "margin": float(margin)}


def findings(name: str, curve: Sequence[dict], comparisons: Sequence[dict], q_end: dict, c_end: dict) -> list[str]:
    """Sentences on one query: the thesis, the channel against the baselines, the outputs' density.

    Args:
        name: the query's name.
        curve: :func:`channel_curve` rows (thresholded decoding).
        comparisons: :func:`matched` rows of the baselines.
        q_end, c_end: :func:`query_end` and :func:`corpus_end` rows.

    Returns:
        list of sentences (markdown), every number computed here.
    """
    t = thesis(curve)
    full, low = curve[int(np.argmax([np.inf if r["knob"] is None else r["knob"] for r in curve]))], \
        curve[int(np.argmin([np.inf if r["knob"] is None else r["knob"] for r in curve]))]
    out = [
        f"**{name}: does style fidelity rise as bits fall?** {'Yes' if t['holds'] else 'No'} (a rise needs a "
        f"negative rank correlation and more than {t['margin']:.2f} above full rate): style_fit_corpus "
        f"{t['full']:.3f} at {full['label']}, {t['lowest']:.3f} at {low['label']} (Spearman of bits with style "
        f"fit {t['spearman']:.2f}; the most corpus-like budget is {t['best_label']}). The query itself scores "
        f"{q_end['style_fit_corpus']:.3f}, random corpus test bars {c_end['style_fit_corpus']:.3f}.",
    ]
    inside = [c for c in comparisons if np.isfinite(c["difference"])]
    if inside:
        better = [c for c in inside if c["difference"] > 0.01]
        worse = [c for c in inside if c["difference"] < -0.01]
        parts = [f"{c['method']} {c['label']} (chroma cosine {c['x']:.3f}: {c['y']:.3f} vs the channel's "
                 f"{c['channel_y']:.3f})" for c in inside]
        out.append(f"**Against the baselines at matched query fidelity:** {len(better)} of {len(inside)} baseline "
                   f"points lie above the channel's curve (more style at the same chroma cosine), {len(worse)} below; "
                   + "; ".join(parts) + ".")
    outside = [c for c in comparisons if not np.isfinite(c["difference"])]
    if outside:
        out.append("Outside the channel's range of chroma cosine (no matched point): " + "; ".join(
            f"{c['method']} {c['label']} (chroma cosine {c['x']:.3f}, style fit {c['y']:.3f})" for c in outside) + ".")
    dom = [c for c in comparisons if c["x"] > full["chroma_cosine"] and c["y"] > full["style_fit_corpus"]]
    if dom:
        out.append(f"**Better on both sides than the channel at {full['label']}** (chroma cosine "
                   f"{full['chroma_cosine']:.3f}, style fit {full['style_fit_corpus']:.3f}): " + "; ".join(
                       f"{c['method']} {c['label']} ({c['x']:.3f}, {c['y']:.3f})" for c in dom) + ".")
    tp = thesis(curve, y="p_corpus")
    if np.isfinite(tp["full"]):
        out.append(f"**The classifier's view:** mean P(corpus style) per bar {tp['full']:.2f} at {full['label']}, "
                   f"{tp['lowest']:.2f} at {low['label']} (Spearman of bits with it {tp['spearman']:.2f}; rises as bits "
                   f"fall: {'yes' if tp['holds'] else 'no'}); the query itself {q_end['p_corpus']:.2f}, corpus test "
                   f"bars {c_end['p_corpus']:.2f}.")
    ons = [r["onsets_per_bar"] for r in curve]
    out.append(f"**Density:** onsets per bar {full['onsets_per_bar']:.1f} at {full['label']} and "
               f"{low['onsets_per_bar']:.1f} at {low['label']} (range {min(ons):.1f}-{max(ons):.1f} over the budgets), "
               f"against {full['corpus_onsets_per_bar']:.1f} in the corpus's test bars and {q_end['onsets_per_bar']:.1f} "
               f"in the query; empty bars {full['empty_bar_rate']:.3f} at {full['label']}, {low['empty_bar_rate']:.3f} at "
               f"{low['label']}.")
    if "sounding_per_bar" in full and "sounding_per_bar" in low:  # rows measured by style.fidelity
        out.append(f"**Held notes:** sounding cells per bar {full['sounding_per_bar']:.1f} at {full['label']} and "
                   f"{low['sounding_per_bar']:.1f} at {low['label']}, against {full['corpus_sounding_per_bar']:.1f} "
                   f"in the corpus's test bars and {full['query_sounding_per_bar']:.1f} in the query; mean note "
                   f"length {full['note_length']:.2f} steps at {full['label']}, {low['note_length']:.2f} at "
                   f"{low['label']} (corpus {full['corpus_note_length']:.2f}, query {full['query_note_length']:.2f}).")
    return out


# ----------------------------------------------------------------------------------------------
# the style side of ``qbdi sweep``

#: Columns ``qbdi sweep`` adds to the claims table (means over seeds; blank for the chance row).
SWEEP_STYLE_COLUMNS = ("style_fit_corpus", "style_fit_query", "onsets_per_bar", "empty_bar_rate",
                       "sounding_per_bar", "note_length")


def sweep_with_fidelity(query, rows: Sequence[dict], pieces: dict, corpus_ref) -> list[dict]:
    """The claims rows of :func:`qbdi_utils.claims.claims_sweep` with the style side added.

    Args:
        query: the query Piece.
        rows: the sweep's rows ("query", "chance", then one per rate).
        pieces: its ``(bits, seed) -> Improvisation`` dict (``return_pieces=True``).
        corpus_ref: :func:`qbdi_utils.style.corpus_reference` of the model, or None (unknown corpus).

    Returns:
        new rows with :data:`SWEEP_STYLE_COLUMNS` (means over the rate's seeds; the "query" row
        describes the query itself; the "chance" row has none).

    Used in: ``qbdi sweep``.
    """
    q_ref = style.bar_descriptors(query, query.spec)
    by_bits: dict = {}
    for (bits, _seed), piece in pieces.items():
        by_bits.setdefault(bits, []).append(style.fidelity(query, piece, corpus_ref, q_ref))
    out = []
    for r in rows:
        r = dict(r)
        if r["rate"] == "query":
            measured = [style.fidelity(query, query, corpus_ref, q_ref)]
        elif r["rate"] == "chance":
            measured = []
        else:
            measured = by_bits.get(None if r["bits"] == "" else int(r["bits"]), [])
        for k in SWEEP_STYLE_COLUMNS:
            v = np.array([m[k] for m in measured], np.float64)
            r[k] = float(np.nanmean(v)) if np.isfinite(v).any() else ("" if not measured else float("nan"))
        out.append(r)
    return out
