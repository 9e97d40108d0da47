"""Cached and default models: a configuration trained once on a corpus and kept on disk.

:func:`default_model` trains (once) and caches the paper's model on the Bach chorales;
:func:`cached_model` does the same for any configuration (notebook 06's grid over gamma and seeds).

A cached model is reused while it was trained with the same configuration on the same corpus. The
corpus check is cheap: at training time the model records a :func:`corpus_manifest` (the size and
modification time of every file and folder the corpus was read from, the music21 install for its
corpora, the reader's cache version, the roll layout and ``load_corpus``'s options), and while a
fresh stat of those entries gives the same manifest the corpus is not loaded at all -- the shard
store's own rule (:mod:`qbdi_utils.shards`: a file is reused while its path, size and modification
time are unchanged), a few milliseconds against a quarter of a second for loading the corpus and
hashing its frames. When the manifest differs (or the model has none), the corpus is loaded and its
frames' fingerprint decides: other frames retrain the model; the same frames keep it and its manifest
is brought up to date.

Imports: corpus, music21_files, errors, paths, pianoroll, model, training.run.
Used in: notebooks 02-07, ``qbdi improvise`` / ``navigate`` without ``--model``, the explorer.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
from pathlib import Path

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import music21_files
from qbdi_utils import paths
from qbdi_utils.errors import FileSystemError, ModelError, OutputExistsError
from qbdi_utils.model import DEFAULT_CONFIG, MODEL_FILE, PRESETS, StyleVAE, VAEConfig, frames_fingerprint
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.training.run import train

__all__ = ["MANIFEST_VERSION", "cached_model", "corpus_manifest", "default_model", "default_model_dir",
           "manifest_is_current", "record_corpus", "recorded_corpus", "same_config"]

#: Version of what :func:`corpus_manifest` records (bump when that changes: older manifests then
#: differ, and the corpus is loaded to check the model once).
MANIFEST_VERSION = 1

#: The ``load_corpus`` options a cached model's corpus is loaded with (their defaults).
_LOAD_OPTIONS = ("transpose", "augment", "meter", "limit")


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
    :func:`qbdi_utils.query_checks.trained_meters` warns about a query in any other meter).

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


def _stat_entry(path: str) -> list:
    """[path, size, mtime_ns] of a file or folder (following links)."""
    st = os.stat(path)
    return [path, int(st.st_size), int(st.st_mtime_ns)]


def _tree(root: Path) -> list[str]:
    """Every folder and file below ``root`` (and ``root``), as the corpus walk sees them (links to
    folders are not followed, as in ``os.walk``), in walk order."""
    out = []
    for here, _, names in os.walk(root):
        out.append(here)
        out += [os.path.join(here, n) for n in sorted(names)]
    return out


def _source_paths(source) -> list[str]:
    """The files and folders whose stat decides what ``load_corpus(source)`` reads.

    For "chorales" and "essen": the music21 package's ``__init__.py`` and ``_version.py`` (an upgrade
    rewrites them), every folder of its ``corpus`` tree (a file added or removed changes its folder's
    modification time) and the source files; for a folder: it, every folder and file below it; for one
    MIDI file: that file.

    Raises:
        OSError, LookupError: the source is not there (the caller then loads the corpus, which says why).
    """
    src = str(source)
    if src in corpus_mod.NAMED_SOURCES:
        spec = importlib.util.find_spec("music21")  # found, not imported (a second or more)
        if spec is None or not spec.origin:
            raise LookupError("music21 is not installed")
        package = Path(spec.origin).parent
        folders = [here for here, _, _ in os.walk(package / "corpus")]
        sources = music21_files.chorale_paths() if src == "chorales" else [music21_files.essen_path()]
        return [str(package / "__init__.py"), str(package / "_version.py"), *folders, *map(str, sources)]
    path = Path(source).resolve()
    return _tree(path) if path.is_dir() else [str(path)]


def _load_options(meter) -> dict:
    """``corpus.load_corpus``'s :data:`_LOAD_OPTIONS` as JSON values: its defaults, but ``meter``."""
    params = inspect.signature(corpus_mod.load_corpus).parameters
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in
               ((k, params[k].default) for k in _LOAD_OPTIONS)}
    options["meter"] = meter
    return options


def corpus_manifest(source, spec: RollSpec, meter) -> dict:
    """What a cached model's corpus depends on, by file-system stat (recorded at training time).

    Args:
        source: the ``load_corpus`` source ("chorales", "essen", a folder or a MIDI file).
        spec: the roll layout.
        meter: the meter the corpus was loaded with (``load_corpus``'s ``meter``).

    Returns:
        JSON-ready dict: ``version`` (:data:`MANIFEST_VERSION`), ``cache_version``
        (``corpus.CACHE_VERSION``), ``spec``, ``options`` (``load_corpus``'s defaults, with ``meter``) and ``entries``,
        [path, size, mtime_ns] for every path of the source (see :func:`manifest_is_current`).

    Raises:
        OSError, LookupError: the source cannot be found or read.
    """
    return {"version": MANIFEST_VERSION, "cache_version": corpus_mod.CACHE_VERSION, "spec": spec.to_dict(),
            "options": _load_options(meter), "entries": [_stat_entry(p) for p in _source_paths(source)]}


def manifest_is_current(manifest, spec: RollSpec, meter) -> bool:
    """Whether a recorded :func:`corpus_manifest` still describes the corpus: the same versions,
    layout and options, and every recorded path there with its size and modification time.

    Only the recorded paths are looked at (no walk, no corpus load): a file added to or removed from
    a recorded folder changes that folder's modification time, so it is noticed too.

    Args:
        manifest: ``model.info["corpus"]["manifest"]`` (anything else: False).
        spec: the roll layout the corpus would be loaded with.
        meter: the meter it would be loaded with.

    Returns:
        True when nothing the corpus load depends on changed.
    """
    if not (isinstance(manifest, dict) and isinstance(manifest.get("entries"), list) and manifest["entries"]):
        return False
    head = {"version": MANIFEST_VERSION, "cache_version": corpus_mod.CACHE_VERSION, "spec": spec.to_dict(),
            "options": _load_options(meter)}
    if any(manifest.get(k) != v for k, v in head.items()):
        return False
    try:
        return all(isinstance(e, list) and len(e) == 3 and _stat_entry(str(e[0])) == e
                   for e in manifest["entries"])
    except OSError:
        return False


def same_config(a: VAEConfig, b: VAEConfig) -> bool:
    """Same configuration, ignoring what training derives from the data (max_piece_frames)."""
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k != "max_piece_frames"}  # noqa: E731
    return strip(a) == strip(b)


def cached_model(config: VAEConfig | None = None, *, source: str = "chorales", name: str | None = None,
                 progress: bool = True, retrain: bool = False,
                 meter: str | None = corpus_mod.METER_ANY) -> StyleVAE:
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
        meter: ``load_corpus``'s meter: "any" (every meter, as :func:`default_model` and notebook
            06's grid) or one meter such as "4/4" (notebook 08's Essen model keeps its 4/4 songs).

    Returns:
        The model (``model.from_cache`` says whether it was loaded).

    Raises:
        CorpusError: the corpus cannot be loaded.
        OptionError: the corpus is too small to split.

    Used in: :func:`default_model`; notebook 06 (deep music information dynamics).
    """
    config = PRESETS["paper"] if config is None else config
    spec = RollSpec()
    config = config.replace(input_dim=spec.frame_size)
    if name is None:
        key = json.dumps({k: v for k, v in config.to_dict().items() if k != "max_piece_frames"},
                         sort_keys=True)
        name = f"{Path(str(source)).name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    d = paths.models_dir() / name
    model = None
    if not retrain and (d / MODEL_FILE).is_file():
        try:
            model = StyleVAE.load(d, spec=spec)
        except ModelError:
            model = None
    if model is not None and not same_config(model.config, config):
        model = None
    if model is not None and manifest_is_current((model.info.get("corpus") or {}).get("manifest"), spec, meter):
        model.from_cache = True  # the corpus is as it was at training time: not loaded
        return model
    corpus = corpus_mod.load_corpus(source, spec=spec, progress=progress, meter=meter)
    if model is not None and model.fingerprint == frames_fingerprint(corpus.frames):
        _refresh_manifest(model, source, corpus, d, meter)
        model.from_cache = True
        return model
    model, _ = train(corpus.frames, spec=spec, groups=corpus.piece_index, progress=progress,
                     config=config)
    record_corpus(model, source, corpus)
    _record_manifest(model, source, corpus, meter)
    model.save(d, force=True)  # the cache entry is replaced (atomically) when stale
    model.from_cache = False
    return model


def _record_manifest(model: StyleVAE, source, corpus, meter) -> bool:
    """Note :func:`corpus_manifest` in ``model.info["corpus"]`` (for a corpus ``load_corpus`` built
    from files; one made otherwise, e.g. in memory, has no files to stat). Returns whether it was noted."""
    if not isinstance(corpus, corpus_mod.Corpus) or not isinstance(model.info.get("corpus"), dict):
        return False
    try:
        model.info["corpus"]["manifest"] = corpus_manifest(source, corpus.spec, meter)
    except (OSError, LookupError):
        return False
    return True


def _refresh_manifest(model: StyleVAE, source, corpus, d: Path, meter) -> None:
    """The cached model in ``d`` was checked against its loaded corpus (same frames): record a current
    manifest and save it, so the next check is the cheap one. A models folder that cannot be written
    keeps the old entry (the check then loads the corpus again next time)."""
    if not isinstance(model.info.get("corpus"), dict):
        record_corpus(model, source, corpus)
    if _record_manifest(model, source, corpus, meter):
        try:
            model.save(d, force=True)
        except (FileSystemError, OutputExistsError):
            pass


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
