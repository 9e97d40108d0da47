"""The style classifier: logistic regression on the per-bar descriptors, fitted on the corpus's
training pieces against other styles from music21's corpus (:data:`OTHER_STYLE_SOURCES`) and checked
on its validation pieces against the other half; see :mod:`qbdi_utils.style`.

Imports: files, harmony, paths, pianoroll, corpus (score_to_piece, normalising_shift), errors,
style.descriptors, style.reference (split_masks).
Used in: through :mod:`qbdi_utils.style`: blend, notebooks/08_blend.ipynb, tests/test_style.py.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from qbdi_utils import files, harmony, paths, pianoroll
from qbdi_utils.corpus import normalising_shift, score_to_piece
from qbdi_utils.errors import CorpusError
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.style.descriptors import SCALARS, BarDescriptors, frames_descriptors
from qbdi_utils.style.reference import split_masks

__all__ = [
    "OTHER_STYLE_SOURCES",
    "classifier_features",
    "StyleClassifier",
    "fit_classifier",
    "auc",
    "other_style_pieces",
    "classifier_sets",
]

#: every one parses in a few seconds). Style group -> corpus paths.
OTHER_STYLE_SOURCES = {
    "fiddle tunes": tuple(f"ryansMammoth/{n}.abc" for n in (
        "42dHighlandRegimentStrathspey", "BattleTheCashJig", "BoatieRowsStrathspey", "ByrnesFavoriteHornpipe",
        "ColMcBainsReel", "DeerFootHornpipe", "EmonAcnuckJig", "FloggingReel", "GrandSpyReel",
        "HolmesHornpipe", "JamesLeesFavoriteJig", "KittyONeilsChampionJig", "LeesDoubleClog",
        "MaidInThePumpRoomHornpipe", "MissGunningsFancyReel", "NymrodHornpipe", "PaddyNowWontYouBeEasyJig",
        "PortsmouthHornpipe", "RepealOfTheUnionReel", "SheeLaNaQuiraJig", "SteamboatHornpipe",
        "TornadoReel", "WhimOfAMomentJigThe", "LanigansBallJig")),
    "renaissance mass": tuple(f"palestrina/{n}.krn" for n in (
        "Agnus_I_19", "Benedictus_40_b", "Credo_10_e", "Credo_44_b", "Gloria_16_a", "Gloria_73_f",
        "Kyrie_62_a", "Sanctus_27")),
    "madrigal": tuple(f"monteverdi/madrigal.3.{i}.mxl" for i in range(1, 9)),
    "classical quartet": ("haydn/opus1no1/movement1.mxl", "haydn/opus1no1/movement2.mxl",
                          "haydn/opus1no1/movement3.mxl", "haydn/opus1no1/movement4.mxl",
                          "haydn/opus1no1/movement5.mxl", "mozart/k458/movement2.mxl",
                          "mozart/k458/movement3.mxl", "mozart/k458/movement4.mxl"),
}

_OTHERS_CACHE_VERSION = 1


def classifier_features(d: BarDescriptors) -> np.ndarray:
    """The classifier's per-bar features: the six scalars, 12 pitch-class shares, 16 groove counts.

    Args:
        d: descriptors of N bars.

    Returns:
        (N, 34) float64.
    """
    scal = np.stack([getattr(d, s) for s in SCALARS], axis=1)
    tot = d.pitch_classes.sum(axis=1, keepdims=True)
    shares = np.divide(d.pitch_classes, tot, out=np.zeros_like(d.pitch_classes), where=tot > 0)
    return np.hstack([scal, shares, d.groove]).astype(np.float64)


@dataclass
class StyleClassifier:
    """Logistic regression P(corpus style | bar descriptors).

    Attributes:
        mean, scale: (F,) standardisation of the features (from the training bars).
        weights: (F,) coefficients on standardised features; bias: intercept.
        l2: the ridge penalty used.
        n_iter: Newton steps taken.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    l2: float = 1.0
    n_iter: int = 0

    def logit(self, d: BarDescriptors) -> np.ndarray:
        """(N,) log-odds of the corpus style per bar."""
        x = (classifier_features(d) - self.mean) / self.scale
        return x @ self.weights + self.bias

    def p_corpus(self, d: BarDescriptors) -> np.ndarray:
        """(N,) P(corpus style) per bar."""
        return 1.0 / (1.0 + np.exp(-self.logit(d)))


def fit_classifier(corpus_bars: BarDescriptors, other_bars: BarDescriptors, l2: float = 1.0,
                   max_iter: int = 100, tol: float = 1e-9) -> StyleClassifier:
    """Fit the style classifier: corpus bars (label 1) against other styles' bars (label 0).

    L2-penalised logistic regression (intercept not penalised) on standardised features, classes
    weighted so each has total weight 1/2 of the bars, fitted by Newton's method (IRLS) until the
    step is below ``tol``.

    Args:
        corpus_bars, other_bars: descriptors of the two classes' training bars.
        l2: ridge penalty on the (standardised) coefficients, in units of the total weight.
        max_iter: Newton steps at most.
        tol: stop when the largest coefficient change is below this.

    Returns:
        :class:`StyleClassifier`.

    Used in: notebooks/08_blend.ipynb.
    """
    xa, xb = classifier_features(corpus_bars), classifier_features(other_bars)
    if not len(xa) or not len(xb):
        raise ValueError("both classes need at least one bar")
    x = np.vstack([xa, xb])
    y = np.concatenate([np.ones(len(xa)), np.zeros(len(xb))])
    w_bar = np.concatenate([np.full(len(xa), 0.5 / len(xa)), np.full(len(xb), 0.5 / len(xb))])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale <= 1e-12] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    pen = np.full(z.shape[1], float(l2) / len(x))
    pen[-1] = 0.0
    it = 0
    for it in range(1, max_iter + 1):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        grad = z.T @ (w_bar * (p - y)) + pen * beta
        hess = (z * (w_bar * p * (1 - p))[:, None]).T @ z + np.diag(pen + 1e-12)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < tol:
            break
    return StyleClassifier(mean=mean, scale=scale, weights=beta[:-1], bias=float(beta[-1]), l2=float(l2),
                           n_iter=it)


def auc(scores_pos, scores_neg) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

    Args:
        scores_pos: (n,) scores of positives; scores_neg: (m,) of negatives.

    Returns:
        float in [0, 1] (0.5 = chance); nan when a side is empty.
    """
    a, b = np.asarray(scores_pos, np.float64), np.asarray(scores_neg, np.float64)
    if not len(a) or not len(b):
        return float("nan")
    allv = np.concatenate([a, b])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks of ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return float((ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def _strip_repeats(score):
    for m in score.recurse().getElementsByClass("Measure"):
        if "Repeat" in type(m.leftBarline).__name__:
            m.leftBarline = None
        if "Repeat" in type(m.rightBarline).__name__:
            m.rightBarline = None
    return score


def other_style_pieces(spec: RollSpec = RollSpec(), sources: Mapping | None = None,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Bar frames of the other-style pieces (:data:`OTHER_STYLE_SOURCES`), each moved to tonic C.

    Each score is parsed by music21 and read through MIDI (:func:`qbdi_utils.corpus.score_to_piece`;
    repeat signs that music21 cannot expand are dropped), transposed so that its estimated tonic is
    C (as the chorale corpus is, ``transpose="tonic"``), and cut into bar frames. The result is
    cached in ``cache_dir()/style/`` (first call: about a minute on one core).

    Args:
        spec: roll layout.
        sources: style group -> music21 corpus paths (default :data:`OTHER_STYLE_SOURCES`).
        progress: print one line per piece parsed.

    Returns:
        (frames (N, spec.frame_size) uint8, piece_index (N,) int, piece names, style group of each piece).

    Raises:
        CorpusError: no piece could be read.

    Used in: :func:`classifier_sets`.
    """
    sources = OTHER_STYLE_SOURCES if sources is None else sources
    items = [(g, p) for g, ps in sources.items() for p in ps]
    key = hashlib.sha256(json.dumps([_OTHERS_CACHE_VERSION, items, spec.to_dict()]).encode()).hexdigest()[:12]
    path = paths.cache_dir() / "style" / f"other-styles-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return (np.asarray(z["frames"]), np.asarray(z["piece_index"]), [str(s) for s in z["names"]],
                        [str(s) for s in z["groups"]])
        except (OSError, ValueError, KeyError):
            pass
    from music21 import corpus as m21corpus

    frames, index, names, groups = [], [], [], []
    for group, src in items:
        try:
            score = m21corpus.parse(src)
            try:
                piece = score_to_piece(score, src, spec)
            except Exception:
                piece = score_to_piece(_strip_repeats(score), src, spec)
        except Exception as exc:  # an odd score is skipped, not fatal
            if progress:
                print(f"skipped {src}: {type(exc).__name__}")
            continue
        key_ = harmony.estimate_key(piece.roll, spec)
        shift = normalising_shift(key_.tonic, key_.mode, "tonic")
        roll = pianoroll.transpose_roll(piece.roll, shift, spec)[0] if shift else piece.roll
        fr = pianoroll.to_frames(roll, spec, piece.bar_offset_steps)
        frames.append(fr)
        index.append(np.full(len(fr), len(names), np.int64))
        names.append(src)
        groups.append(group)
        if progress:
            print(f"{src}: {len(fr)} bars")
    if not frames:
        raise CorpusError("none of the other-style pieces could be read from music21's corpus")
    out = (np.concatenate(frames), np.concatenate(index), names, groups)
    buf = io.BytesIO()
    np.savez_compressed(buf, frames=out[0], piece_index=out[1], names=np.array(names), groups=np.array(groups))
    try:
        files.write_bytes(path, buf.getvalue(), force=True)
    except Exception:
        pass
    return out


def classifier_sets(model, corpus, seed: int = 0, progress: bool = False) -> dict:
    """The classifier's fitting and checking sets: corpus pieces against other styles, split by piece.

    Fit: the model's *training* pieces against half of the other-style pieces (half of each style
    group, a seeded permutation). Check: the model's *validation* pieces against the other half.
    The model's test pieces (the corpus reference) are in neither.

    Args:
        model: a StyleVAE with ``info["validation_groups"]`` and ``info["test_groups"]``.
        corpus: the model's training Corpus (``frames``, ``piece_index``).
        seed: seed of the split of the other-style pieces.
        progress: passed to :func:`other_style_pieces`.

    Returns:
        dict with BarDescriptors ``fit_corpus``, ``fit_other``, ``check_corpus``, ``check_other``
        and the piece names ``fit_other_names``, ``check_other_names``.

    Used in: notebooks/08_blend.ipynb.
    """
    pidx = np.asarray(corpus.piece_index)
    masks = split_masks(model, corpus)
    is_val, is_test, is_train = masks["validation"], masks["test"], masks["train"]
    fr = np.asarray(corpus.frames)
    o_frames, o_index, o_names, o_groups = other_style_pieces(model.spec, progress=progress)
    rng = np.random.default_rng(seed)
    fit_pieces, check_pieces = [], []
    for g in dict.fromkeys(o_groups):
        members = rng.permutation([i for i, gg in enumerate(o_groups) if gg == g])
        half = (len(members) + 1) // 2
        fit_pieces += sorted(int(m) for m in members[:half])
        check_pieces += sorted(int(m) for m in members[half:])

    def others(pieces):
        m = np.isin(o_index, pieces)
        return frames_descriptors(o_frames[m], model.spec, groups=o_index[m])

    return {
        "fit_corpus": frames_descriptors(fr[is_train], model.spec, groups=pidx[is_train]),
        "check_corpus": frames_descriptors(fr[is_val], model.spec, groups=pidx[is_val]),
        "fit_other": others(fit_pieces), "check_other": others(check_pieces),
        "fit_other_names": [o_names[i] for i in fit_pieces],
        "check_other_names": [o_names[i] for i in check_pieces],
    }
