"""Cached and default models: a configuration trained once on a corpus and kept on disk.

:func:`default_model` trains (once) and caches the paper's model on the Bach chorales;
:func:`cached_model` does the same for any configuration (notebook 06's grid over gamma and seeds).

Imports: corpus, errors, paths, pianoroll, model, training.run.
Used in: notebooks 02-07, ``qbdi improvise`` / ``navigate`` without ``--model``, the explorer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import paths
from qbdi_utils.errors import ModelError
from qbdi_utils.model import DEFAULT_CONFIG, MODEL_FILE, PRESETS, StyleVAE, VAEConfig, frames_fingerprint
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.training.run import train

__all__ = ["cached_model", "default_model", "default_model_dir", "record_corpus", "recorded_corpus", "same_config"]


def default_model_dir() -> Path:
    """Where the default model lives: ``models_dir() / "default"``.

    Returns:
        The directory (it may not exist yet).

    Used in: notebooks 02-05 (through :func:`default_model`), benchmarks/bench_generate.py.
    """
    return paths.models_dir() / "default"


def record_corpus(model: StyleVAE, source, corpus) -> None:
    """Note in ``model.info["corpus"]`` where the training frames came from, so that
    ``qbdi navigate --source corpus`` (:func:`qbdi_utils.navigate.model_corpus`) can load them again,
    and the meters of its bars (``"meters"``: bars per meter, e.g. ``{"4/4": 12000, "3/4": 1500}``;
    :func:`qbdi_utils.improvise.trained_meters` warns about a query in any other meter).

    Args:
        model: the freshly trained model.
        source: what was given to ``corpus.load_corpus`` ("chorales", "essen" or a folder / file path).
        corpus: the loaded :class:`~qbdi_utils.corpus.Corpus`.
    """
    src = str(source) if str(source) in corpus_mod.NAMED_SOURCES else str(Path(source).resolve())
    model.info["corpus"] = {"source": src, "options": dict(getattr(corpus, "options", None) or {}),
                            "fingerprint": getattr(corpus, "fingerprint", ""),
                            "meters": corpus_mod.meter_counts(getattr(corpus, "pieces", None) or [])["bars"]}


def recorded_corpus(model) -> tuple[str, dict] | None:
    """What :func:`record_corpus` noted: (source, ``corpus.load_corpus`` options), or None.

    Args:
        model: a StyleVAE.

    Returns:
        The source ("chorales", "essen" or an absolute path) and the options among transpose, meter,
        limit, augment it was loaded with; None for a model that records none.
    """
    rec = (getattr(model, "info", None) or {}).get("corpus")
    if not (isinstance(rec, dict) and rec.get("source")):
        return None
    opts = dict(rec.get("options") or {})
    kw = {k: opts[k] for k in ("transpose", "meter", "limit") if k in opts}
    if "augment" in opts:
        kw["augment"] = tuple(opts["augment"] or ())
    return str(rec["source"]), kw


def same_config(a: VAEConfig, b: VAEConfig) -> bool:
    """Same configuration, ignoring what training derives from the data (max_piece_frames)."""
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k != "max_piece_frames"}  # noqa: E731
    return strip(a) == strip(b)


def cached_model(config: VAEConfig | None = None, *, source: str = "chorales", name: str | None = None,
                 progress: bool = True, retrain: bool = False, meter: str | None = "4/4") -> StyleVAE:
    """A model of this configuration trained on a corpus, cached on disk by configuration and data.

    Loads ``models_dir()/name`` when the model there was trained on the same frames (fingerprint)
    with the same configuration; otherwise trains it (with the corpus's pieces as groups) and
    saves it there. Notebook grids (e.g. over gamma and seeds) re-run cheaply this way.

    Args:
        config: the VAEConfig (default ``PRESETS["paper"]``), e.g. ``PRESETS["paper"].replace(gamma=1.0, seed=1)``.
        source: corpus for ``corpus.load_corpus`` ("chorales", "essen" or a MIDI folder).
        name: subdirectory of ``models_dir()``; default ``"{source name}-{12 hex digits of the config}"``.
        progress: show progress bars (corpus loading, training).
        retrain: train even if a matching cached model exists.
        meter: ``load_corpus``'s meter: "4/4" (the default here: notebook 06's grid keeps the corpus
            it was trained on before issue 25) or "any" (every meter, as :func:`default_model`).

    Returns:
        The model (``model.from_cache`` says whether it was loaded).

    Raises:
        CorpusError: the corpus cannot be loaded.
        OptionError: the corpus is too small to split.

    Used in: :func:`default_model`; notebook 06 (deep music information dynamics).
    """
    config = PRESETS["paper"] if config is None else config
    spec = RollSpec()
    corpus = corpus_mod.load_corpus(source, spec=spec, progress=progress, meter=meter)
    config = config.replace(input_dim=spec.frame_size)
    if name is None:
        key = json.dumps({k: v for k, v in config.to_dict().items() if k != "max_piece_frames"},
                         sort_keys=True)
        name = f"{Path(str(source)).name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    fp = frames_fingerprint(corpus.frames)
    d = paths.models_dir() / name
    if not retrain and (d / MODEL_FILE).is_file():
        try:
            model = StyleVAE.load(d, spec=spec)
            if model.fingerprint == fp and same_config(model.config, config):
                model.from_cache = True
                return model
        except ModelError:
            pass
    model, _ = train(corpus.frames, spec=spec, groups=corpus.piece_index, progress=progress,
                     config=config)
    record_corpus(model, source, corpus)
    model.save(d, force=True)  # the cache entry is replaced (atomically) when stale
    model.from_cache = False
    return model


def default_model(progress: bool = True, *, retrain: bool = False) -> StyleVAE:
    """The paper's model trained on the default corpus (the Bach chorales in every meter), cached on disk.

    Loads ``models_dir()/default`` when its training-frame fingerprint and configuration match the
    current default corpus and :data:`DEFAULT_CONFIG` (= ``PRESETS["paper"]``); otherwise trains it
    (a few minutes on two CPU cores) and saves it there.

    Args:
        progress: show progress bars (corpus loading, training).
        retrain: train even if a matching cached model exists.

    Returns:
        The model; ``model.info`` holds the training facts (validation and test R, D, F1, wall
        time, history).

    Raises:
        CorpusError: the chorales cannot be loaded.

    Used in: notebooks 02-05, ``qbdi improvise`` without ``--model``.
    """
    return cached_model(DEFAULT_CONFIG, source="chorales", name=default_model_dir().name,
                        progress=progress, retrain=retrain, meter=corpus_mod.METER_ANY)
