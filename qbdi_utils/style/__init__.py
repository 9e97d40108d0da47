"""Style fidelity: per-bar descriptors of a roll, set-level comparison, a style classifier (corpus side).

PAPER.md section 9. :mod:`qbdi_utils.harmony` asks "how much of the query survived?"; this module asks
"does the output sound like the corpus?". Used in notebooks/08_blend.ipynb and in the fidelity line
of ``qbdi improvise`` / ``qbdi navigate`` / ``qbdi sweep``.

**Per-bar descriptors** (:func:`bar_descriptors`), one row per bar of ``spec.steps_per_frame`` = 16
steps, bars aligned on the piece's bar lines (``Piece.bar_offset_steps``, a pickup padded in front as
:func:`qbdi_utils.pianoroll.to_frames` does). Notes come from the package's one note reader,
:func:`qbdi_utils.pianoroll.roll_to_notes`; a note belongs to the bar in which it starts.

- ``onsets``: notes starting in the bar.
- ``polyphony``: mean number of sounding pitches over the bar's steps on which something sounds
  (muspy's "polyphony"); 0 for an empty bar.
- ``pitch_span``: highest minus lowest sounding MIDI pitch in the bar (semitones); 0 if empty.
- ``pc_entropy``: Shannon entropy (bits) of the bar's duration-weighted pitch-class histogram
  (:func:`qbdi_utils.harmony.chroma`, :func:`qbdi_utils.harmony.pitch_class_entropy_bits`); 0 if empty.
- ``note_length``: mean length in steps of the notes starting in the bar (whole length, also past
  the bar line); 0 without onsets. The set-level note-length histogram uses every note's length.
- ``empty``: 1 when nothing sounds in the bar.
- ``pitch_classes`` (N, 12): the bar's duration-weighted chroma rotated so that column 0 is the tonic
  of the piece's estimated key (Krumhansl-Kessler, :func:`qbdi_utils.harmony.estimate_key` on the
  whole roll): a style measure should not change when a piece is transposed (the chorale corpus is
  moved to C, a query in A-flat is not).
- ``groove`` (N, 16): onsets per position of the bar (MGEval's onset-position / groove pattern).

**Set-level comparison: direct per-bar distributions, histograms with fixed bins.** MGEval (Yang &
Lerch 2018) offers two formulations: (a) compare the distributions of intra-set and inter-set
pairwise distances, (b) compare the distributions of the per-bar feature values themselves. We use
(b): it answers the question asked ("are these bars like those bars?") directly, its overlap is 1
for two sets with the same distribution and 0 for sets with disjoint supports (the distance
formulation gives neither exactly: the overlap of intra-A with inter-AB distances depends on the
spreads), it is linear in the number of bars (the distance version is quadratic: 35 million pairs
for the chorales) and it is deterministic (no subsampling of pairs). The estimates are histograms
with the fixed bins of :data:`SCALAR_BINS` and :data:`NOTE_LENGTH_EDGES`, not kernel densities:
most descriptors are integers (onsets, spans, lengths in steps), on which a kernel's bandwidth
would be a second, arbitrary smoothing; fixed bins make every number comparable between sets and
runs. The two vector descriptors are compared as the set's aggregate categorical distribution
(tonic-relative pitch-class shares, duration-weighted; onset shares per bar position).

- overlap (:func:`overlap`) = sum_i min(p_i, q_i): 1 = same histogram, 0 = disjoint.
- KL divergence (:func:`kl_bits`) KL(P || Q) in bits, P the first set (e.g. an output), Q the
  reference, both smoothed by adding :data:`KL_EPSILON` to every bin's probability and
  renormalising (so disjoint sets give a large finite number, identical ones exactly 0).
- ``style_fit(a, b)`` = mean over :data:`DESCRIPTORS` of the overlap; :func:`style_fit_corpus`
  against the corpus's test pieces (:func:`corpus_reference`), :func:`style_fit_query` against the
  query's bars. A descriptor that is undefined on one side (no notes at all: no note lengths)
  is left out of the mean.

**The style classifier** (:class:`StyleClassifier`, :func:`fit_classifier`): L2-regularised
logistic regression on the standardised per-bar descriptors (the six scalars, the 12
tonic-relative pitch-class shares, the 16 groove counts), fitted by Newton's method (IRLS) in
numpy, classes weighted to equal total weight. It gives P(corpus style) per bar. Fitted on the
corpus's training pieces against half of :data:`OTHER_STYLE_SOURCES` (pieces of other styles from
music21's corpus: fiddle tunes, Renaissance masses and madrigals, Classical quartets; never the
shipped queries), checked on the corpus's validation pieces against the other half
(:func:`classifier_sets`); the pieces reported on (the corpus's test pieces, the queries, the
outputs) are in neither.

**Why numpy and no library.** muspy 0.5.0 (MIT, last release 2022-04) and smg-metrics 5.4.3 (MIT,
built on muspy) both resolve with Python 3.11 and numpy 2, but they compute per-*piece* metrics on
their own Music / MIDI objects (a conversion of every roll), pull in four to six packages
(miditoolkit, pypianoroll, bidict, mir_eval, ...) and do not offer per-bar descriptors with fixed
bins; MGEval itself is a research repository, not on PyPI. The descriptors are a few lines each on
the roll, and the logistic regression is 30 lines of Newton steps on ~10,000 x 35 values, so
scikit-learn would add a dependency for nothing the tests cannot check directly.

The package: :mod:`~qbdi_utils.style.descriptors` (per-bar descriptors, set-level comparison),
:mod:`~qbdi_utils.style.reference` (the corpus side, once per model; the fidelity line),
:mod:`~qbdi_utils.style.classifier` (the style classifier and its other-style pieces); this
``__init__`` is the documented home of the names below (``from qbdi_utils import style``).

Imports: its submodules.
"""

from qbdi_utils.style.classifier import (OTHER_STYLE_SOURCES, StyleClassifier, auc, classifier_features,
                                         classifier_sets, fit_classifier, other_style_pieces)
from qbdi_utils.style.descriptors import (DESCRIPTORS, KL_EPSILON, NOTE_LENGTH_EDGES, SCALAR_BINS, SCALARS,
                                          BarDescriptors, bar_descriptors, compare_sets, frames_descriptors, histogram,
                                          kl_bits, overlap, style_fit, style_fit_corpus, style_fit_query)
from qbdi_utils.style.reference import FIDELITY_KEYS, corpus_reference, fidelity, format_fidelity, split_masks

__all__ = [
    "SCALARS", "DESCRIPTORS", "SCALAR_BINS", "NOTE_LENGTH_EDGES", "KL_EPSILON", "FIDELITY_KEYS",
    "OTHER_STYLE_SOURCES", "split_masks",
    "BarDescriptors", "bar_descriptors", "frames_descriptors",
    "histogram", "overlap", "kl_bits", "compare_sets", "style_fit", "style_fit_corpus", "style_fit_query",
    "corpus_reference", "StyleClassifier", "fit_classifier", "classifier_features", "auc",
    "other_style_pieces", "classifier_sets", "fidelity", "format_fidelity",
]
