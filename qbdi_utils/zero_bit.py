"""Why 0 bits decodes to one particular bar: the latent geometry of the corpus and the zero-rate decode.

At 0 bits per frame the decoder sees only the channel's source statistics, so every bar decodes to
the same output; these functions say which bar that is, how it relates to the corpus's latent means
(:func:`latent_geometry`, :func:`zero_bit_bar`), what chroma it carries (:func:`chroma_distribution`)
and summarise it for the README (:func:`zero_bit_findings`).

Imports: channel, harmony, pianoroll, claims. Used in: notebooks/04_query_generation.ipynb.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qbdi_utils import channel, harmony, pianoroll
from qbdi_utils.claims import nearest_distances

__all__ = ["chroma_distribution", "latent_geometry", "zero_bit_bar", "zero_bit_findings"]

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def latent_geometry(z_corpus, n_sample: int = 500, seed: int = 0) -> dict:
    """Where the corpus's latent means lie: norms and nearest-different-bar distances.

    Args:
        z_corpus: (M, L) float, latent means of the corpus bars.
        n_sample: bars sampled (without replacement, ``default_rng(seed)``) for the nearest-bar median.
        seed: sampling seed.

    Returns:
        dict: ``norm_min``, ``norm_median``, ``nn_median`` (median distance of a sampled bar to its
        nearest different bar), ``n_sample``.

    Used in: notebooks/04_query_generation.ipynb.
    """
    z = np.asarray(z_corpus, dtype=np.float64)
    norms = np.linalg.norm(z, axis=1)
    n = min(int(n_sample), len(z))
    sub = np.random.default_rng(seed).choice(len(z), n, replace=False)
    return {"norm_min": float(norms.min()), "norm_median": float(np.median(norms)),
            "nn_median": float(np.median(nearest_distances(z[sub], z, different=True))), "n_sample": n}


def zero_bit_bar(model, enc, mode: str, thresholds: Sequence[float], z_corpus) -> dict:
    """What the single bar that 0 bits sends decodes to, and how firmly.

    Args:
        model: a StyleVAE.
        enc: the query's :class:`qbdi_utils.improvise.EncodedQuery`.
        mode: statistics mode (its source mean mu_e is what 0 bits sends).
        thresholds: other decoding thresholds to try (the model's own is added).
        z_corpus: (M, L) corpus latent means (for the nearest-bar distance).

    Returns:
        dict: ``norm`` |mu_e|, ``nn`` distance to the nearest corpus bar, ``p`` (16, n_pitches) play-cell
        probabilities, ``chroma`` (12,), ``bar`` (frame), ``label`` triad name, ``score`` its template
        score, ``runner``/``runner_score`` the next triad, ``scales`` (major scales holding every pitch
        class), ``top_share``, ``soft`` (triad of the unthresholded probabilities), ``pcs`` (pitch
        classes by duration), ``lo``/``hi`` (probability range), ``n_on`` (cells >= threshold), ``near``
        (share of those within 0.05 of it), ``decided`` (share of cells < 0.1 or > 0.9), ``by_th``
        (threshold -> triad or "silent"), ``notes`` ((pitch, start, end) list), ``share_G``, ``share_C``.

    Raises:
        OptionError: a wrong mode.

    Used in: notebooks/04_query_generation.ipynb.
    """
    spec = model.spec
    mu = np.asarray(channel.source_stats(enc.mean, enc.logvar, mode, model.corpus_stats)[0], np.float32)
    p = model.decode(mu[None])[0]
    bar = pianoroll.binarize(p, model.threshold, spec=spec)
    play_p = p.reshape(spec.steps_per_frame, spec.n_columns)[:, :spec.n_pitches]
    on = play_p >= model.threshold
    c = harmony.chroma(bar[None], spec)[0]
    label = int(harmony.triad_labels(c))
    total = c.sum()
    scores = harmony.triad_templates() @ (c / total if total else c)
    runner = int(np.argmax(np.where(np.arange(24) == label, -np.inf, scores)))
    present = set(np.nonzero(c)[0])
    scales = [harmony.PITCH_CLASS_NAMES[t] for t in range(12) if present <= {(t + k) % 12 for k in _MAJOR_SCALE}]
    by_th = {}
    for t in sorted(set(thresholds) | {round(model.threshold, 3)}):
        ct = harmony.chroma(pianoroll.binarize(p, t, spec=spec)[None], spec)[0]
        by_th[t] = harmony.TRIAD_NAMES[int(harmony.triad_labels(ct))] if ct.sum() else "silent"
    return dict(
        norm=float(np.linalg.norm(mu)), nn=float(nearest_distances(mu[None], z_corpus)[0]), p=play_p, chroma=c,
        label=harmony.TRIAD_NAMES[label] if label >= 0 else "silent", bar=bar, score=float(scores[label]),
        runner=harmony.TRIAD_NAMES[runner], runner_score=float(scores[runner]), scales=scales,
        top_share=float(c.max() / total) if total else float("nan"),
        soft=harmony.TRIAD_NAMES[int(harmony.triad_labels(harmony.chroma(p[None], spec)[0]))],
        pcs=[harmony.PITCH_CLASS_NAMES[k] for k in np.argsort(-c) if c[k] > 0],
        lo=float(play_p.min()), hi=float(play_p.max()), n_on=int(on.sum()),
        near=float(np.mean(np.abs(play_p[on] - model.threshold) < 0.05)) if on.any() else float("nan"),
        decided=float(np.mean((play_p < 0.1) | (play_p > 0.9))), by_th=by_th,
        notes=pianoroll.roll_to_notes(pianoroll.from_frames(bar[None], spec), spec),
        share_G=float(c[7] / total) if total else float("nan"), share_C=float(c[0] / total) if total else float("nan"),
    )


def chroma_distribution(chromas) -> dict:
    """Where a set of bars sits harmonically: triad of the summed chroma, shares of bars on C and on G.

    Args:
        chromas: (n, 12) chroma of bars (or (12,) for one bar).

    Returns:
        dict: ``triad`` (name of the summed chroma's triad), ``C`` and ``G`` (shares of the non-silent
        bars whose triad is C major / G major), ``pc_C`` and ``pc_G`` (shares of C and G in the summed
        chroma).

    Used in: notebooks/04_query_generation.ipynb.
    """
    c = np.atleast_2d(np.asarray(chromas, dtype=np.float64))
    s = c.sum(axis=0)
    profile = s / s.sum() if s.sum() else s
    labels = harmony.triad_labels(c)
    labels = labels[labels >= 0]
    shares = {name: float(np.mean(labels == k)) if labels.size else float("nan") for k, name in ((0, "C"), (7, "G"))}
    return {"triad": harmony.TRIAD_NAMES[int(harmony.triad_labels(profile))], **shares,
            "pc_C": float(profile[0]), "pc_G": float(profile[7])}


def zero_bit_findings(zero_bar: dict, dist: dict, geometry: dict, *, decided: float, threshold: float,
                      latent_dim: int, key_tonic: int, zero_tonic_share: float, mode: str,
                      prior_name: str) -> list[str]:
    """The conclusions about the 0-bit bar, as Markdown bullet points decided by the numbers.

    Args:
        zero_bar: mode -> :func:`zero_bit_bar`.
        dist: name -> :func:`chroma_distribution`; needs "corpus bars", "corpus reconstructions",
            ``prior_name`` and "query bars".
        geometry: :func:`latent_geometry` of the corpus.
        decided: share of play cells of corpus reconstructions below 0.1 or above 0.9.
        threshold: the model's decoding threshold.
        latent_dim: the model's latent dimension.
        key_tonic: pitch class of the query's tonic.
        zero_tonic_share: tonic share at 0 bits (claims table).
        mode: the notebook's main statistics mode.
        prior_name: the key of the decoded prior samples in ``dist``.

    Returns:
        list of Markdown lines.

    Used in: notebooks/04_query_generation.ipynb.
    """
    qz, others = zero_bar[mode], {m: z for m, z in zero_bar.items() if m != mode}
    refs = ("corpus bars", "corpus reconstructions", prior_name)
    c_centred = [n for n in refs if dist[n]["triad"] == "C" and dist[n]["C"] > dist[n]["G"]]
    flat = {m: z for m, z in others.items() if z["hi"] - z["lo"] < 0.5}
    norms, nns = [z["norm"] for z in zero_bar.values()], [z["nn"] for z in zero_bar.values()]
    pcs = harmony.PITCH_CLASS_NAMES
    lines = [
        "**What the numbers show.**",
        f"* **The model's bars {'lean to C, not G' if len(c_centred) == 3 else 'do not all lean to C'}.** "
        + "; ".join(f"{n}: {dist[n]['C']:.0%} of bars on C, {dist[n]['G']:.0%} on G, summed chroma {dist[n]['triad']}"
                    for n in refs)
        + (". The G of the 0-bit bar does not come from the distribution of bars but from decoding one point, "
           "the mean." if len(c_centred) == 3 else "."),
        f"* **The 0-bit latent lies {'inside the shell the data occupies' if max(norms) < geometry['norm_min'] else 'among the data'}.** "
        "|mu_e| is " + ", ".join(f"{z['norm']:.2f} ('{m}')" for m, z in zero_bar.items())
        + f", while every corpus bar's latent mean has norm at least {geometry['norm_min']:.2f} (median "
        f"{geometry['norm_median']:.2f}). In distance it is "
        f"{'not remote' if max(nns) < 1.5 * geometry['nn_median'] else 'remote'} (nearest corpus bar at "
        f"{min(nns):.2f}..{max(nns):.2f}, a corpus bar's nearest different bar at a median {geometry['nn_median']:.2f}: "
        f"in {latent_dim} dimensions all bars are far apart), but no bar is encoded that close to the centre, and a "
        "decoded mean is not a mean of decodings.",
        f"* **With {' and '.join(f'`{m}`' for m in flat) or 'the other'} statistics the 0-bit bar is a threshold "
        "artefact.** " + (
            " ".join(f"At '{m}' every play cell has probability {z['lo']:.2f}..{z['hi']:.2f} (a reconstruction has "
                     f"{decided:.0%} of its cells below 0.1 or above 0.9), so the threshold {threshold:.2f} keeps the "
                     + (f"{z['n_on']} cells that happen to sit just above it ({z['near']:.0%} within 0.05): a cluster "
                        f"({' '.join(z['pcs'])}, longest {z['pcs'][0]} with {z['top_share']:.0%} of the sounding "
                        f"steps) that the triad templates call {z['label']} (score {z['score']:.3f}, runner-up "
                        f"{z['runner']} {z['runner_score']:.3f})" if z['pcs'] else
                        "no cell at all: the bar is silent")
                     + f". Other thresholds give {', '.join(f'{t:g}: {lab}' for t, lab in z['by_th'].items())}."
                     for m, z in flat.items()) if flat else
            "(not here: their decoded probabilities are not flat in this run, see above.)"),
        f"* **With `{mode}` statistics the 0-bit bar is "
        f"{'a real ' + ' / '.join(qz['scales']) + '-major-scale bar' if qz['scales'] else 'a real bar'}, labelled "
        f"{qz['label']} by a {'narrow' if qz['score'] - qz['runner_score'] < 0.1 else 'clear'} margin.** "
        f"The query's mean state decodes to decided cells (up to {qz['hi']:.2f}; {qz['decided']:.0%} of play cells "
        f"below 0.1 or above 0.9) with pitch classes {' '.join(qz['pcs'])}"
        + (f", all in the major scale of {qz['scales'][0]}, the dominant of {pcs[key_tonic]}"
           if qz['scales'] == [pcs[(key_tonic + 7) % 12]] else "")
        + f". The triad templates score {qz['label']} {qz['score']:.3f} against {qz['runner']} {qz['runner_score']:.3f}; "
        f"the label is {qz['soft']} from the unthresholded probabilities and, by threshold, "
        f"{', '.join(f'{t:g}: {lab}' for t, lab in qz['by_th'].items())}; the query itself has "
        f"{dist['query bars']['C']:.0%} of its bars on C and {dist['query bars']['G']:.0%} on G.",
        "* So 0 bits sends every bar the decoding of an *average latent state*, which is neither a typical bar nor "
        "the average bar of the style: the paper's 'converging on the tonic' would need the decoding of that mean "
        "to be " + ("the tonic, and for this model it is not." if zero_tonic_share < 0.5 else "the tonic, as it is here.")
        + " Nothing was tuned to change this.",
    ]
    return lines
