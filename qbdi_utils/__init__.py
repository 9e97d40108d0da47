"""qbdi_utils: the numeric work behind the query-based deep improvisation notebooks.

One module per concept; notebook N calls mostly the modules of its stage (README.md, "Layout"):

=================  ==========================================================================
``errors``         every error a user can cause (QbdiError and its kinds)
``paths``          where data, caches, models and figures live
``files``          the one write discipline: atomic writes, output sets, model-folder swaps
``report``         significant-digit rounding and tables for regression-checked notebook cells
``pianoroll``      the roll contract: MIDI <-> roll <-> frames, Note, validators (01)
``harmony``        chroma, Tonnetz, keys, triads and their ties, agreement metrics
``corpus``         chorales / MIDI folders -> cached frames; the shipped queries (01)
``model/``         the style VAE: VAEConfig + PRESETS, networks + the one loss, save/load, StyleVAE (02)
``training/``      split, threshold, the fit loops, streaming, devices, cached and default models (02)
``predictive``     the predictive head's honest measurement: probes, I_probe (06)
``channel``        reverse water-filling and Berger's test channel (03)
``channel_rate``   how many bits a channel really carries: MI estimators, static vs dynamic (03)
``improvise``      query -> improvisation across bit budgets (04)
``claims``         the claims sweep and the paper's claims, measured (04)
``zero_bit``       why 0 bits decodes to one particular bar (04)
``dynamics``       Variable Markov Oracle: information rate, thresholds, motifs (05)
``navigate``       oracle improvisation over latent states (07); ``navigate_output`` its JSON record,
                   ``navigate_sweep`` notebook 07's measures and sweep, ``navigate_measures`` the
                   measures against random-jump baselines and the corpus path's frontier
``render``         notation (music21/verovio), plots (matplotlib), audio
=================  ==========================================================================

Lower modules never import higher ones (pianoroll and channel import nothing of ours but errors and
files). ``import qbdi_utils`` imports none of the modules above: ``from qbdi_utils import corpus`` (or
``import qbdi_utils.corpus``) loads that module and what it imports, nothing more, so a command loads
only the modules it uses (``qbdi improvise`` neither the explorer, the live loop nor the analysis
modules); ``qbdi_utils.corpus`` after a bare ``import qbdi_utils`` still works (module ``__getattr__``,
PEP 562, imports the submodule on first access). Heavy libraries (TensorFlow/Keras, music21, verovio,
matplotlib) load on first use inside the modules that need them.
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "__version__", "errors", "paths", "files", "report", "pianoroll", "harmony", "corpus", "model",
    "training", "predictive", "channel", "channel_rate", "improvise", "claims", "zero_bit", "dynamics",
    "navigate", "navigate_measures", "navigate_output", "navigate_sweep", "render",
]


def __getattr__(name: str):
    """``qbdi_utils.<module>`` for a module listed in ``__all__`` that is not imported yet: import it."""
    if name in __all__ and name != "__version__":
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
