"""The saved-model format: a model directory holding ``model.json`` and ``weights.npz``.

``model.json`` holds the format name and version, the roll layout, the :class:`VAEConfig`, the
fingerprint of the training frames, the decoding threshold, the corpus statistics of the latent
means and the training facts; ``weights.npz`` the weight arrays ``w00, w01, ...`` (encoder,
decoder, then the predictor head if gamma > 0, in the order of :func:`networks.weight_shapes`).
Format version 2 (this one) stores the three-way split's fractions and gamma; version-1
directories (one held-out set, no head) still load.

This module reads and writes the directory and checks it against the schema; it needs no Keras
(:class:`~qbdi_utils.model.vae.StyleVAE` runs the weights :func:`read_model` returns in numpy).
A directory is written whole or not at all (:func:`qbdi_utils.files.replacing_dir`).

Imports: files, errors, pianoroll, model.config, model.networks (weight shapes only).
Used in: :meth:`StyleVAE.save` / :meth:`StyleVAE.load`, :mod:`qbdi_utils.training.cache`, ``qbdi info``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qbdi_utils import files, limits
from qbdi_utils.errors import ModelError, OptionError
from qbdi_utils.model.config import VAEConfig, config_from_v1
from qbdi_utils.model.networks import weight_shapes
from qbdi_utils.pianoroll import RollSpec

__all__ = ["FORMAT", "FORMAT_VERSION", "MODEL_FILE", "SavedModel", "WEIGHTS_FILE", "read_model", "saved_spec",
           "write_model"]

FORMAT = "qbdi-style-vae"
FORMAT_VERSION = 2
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"


@dataclass
class SavedModel:
    """Everything a model directory holds, as numpy arrays and plain values.

    Attributes:
        spec: the roll layout.
        config: the :class:`VAEConfig`.
        threshold: decoding threshold in (0, 1).
        fingerprint: fingerprint of the training frames.
        corpus_stats: {"mean": (L,), "var": (L,)} float64.
        info: training facts (JSON-ready dict).
        weights: the weight arrays in :func:`networks.weight_shapes` order.
    """

    spec: RollSpec
    config: VAEConfig
    threshold: float
    fingerprint: str
    corpus_stats: dict
    info: dict = field(default_factory=dict)
    weights: list = field(default_factory=list)


def write_model(directory: str | Path, saved: SavedModel, *, force: bool = False,
                extra: Callable[[Path], object] | None = None) -> Path:
    """Write a model directory (``model.json``, ``weights.npz``) atomically as a whole.

    The complete directory is staged beside ``directory`` and swapped in
    (:func:`qbdi_utils.files.replacing_dir`), so at every instant ``directory`` holds the whole
    old model or the whole new one; a failed save leaves the old one untouched.

    Args:
        directory: the model directory to create (an existing empty folder is fine).
        saved: what to write.
        force: replace an existing non-empty directory (its old files all go).
        extra: optional ``extra(stage)`` that writes further files into the staging folder.

    Returns:
        The directory as a Path.

    Raises:
        OutputExistsError: ``directory`` exists, is not empty, and ``force`` is false.
        FileSystemError: a file-system fault; the old directory is then unchanged.
        ModelError: a weight is not finite (NaN or infinity), so the model would be useless.
    """
    d = Path(directory)
    weights = saved.weights
    for i, w in enumerate(weights):
        if not np.all(np.isfinite(w)):
            raise ModelError(f"refusing to save: weight array w{i:02d} holds NaN or infinite "
                             "values (training diverged)", d)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": saved.spec.to_dict(),
        "config": saved.config.to_dict(),
        "threshold": saved.threshold,
        "fingerprint": saved.fingerprint,
        "corpus_stats": {k: np.asarray(v, dtype=float).tolist() for k, v in saved.corpus_stats.items()},
        "info": saved.info,
    }
    text = json.dumps(meta, indent=1)
    with files.replacing_dir(d, force=force) as stage:
        name = WEIGHTS_FILE
        try:
            np.savez(stage / WEIGHTS_FILE, **{f"w{i:02d}": w for i, w in enumerate(weights)})
            name = MODEL_FILE
            (stage / MODEL_FILE).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise files.fs_error(exc, d / name) from None
        if extra is not None:
            extra(stage)
    return d


_RETRAIN = "retrain it with `qbdi train --force`"


def _corrupt(d: Path, what: str) -> ModelError:
    return ModelError(f"corrupt model directory: {MODEL_FILE} {what}; {_RETRAIN}", d)


def read_model(directory: str | Path, spec: RollSpec | None = None) -> SavedModel:
    """Read and check a model directory written by :func:`write_model`.

    Args:
        directory: the model directory.
        spec: the roll layout the caller works in (default: the paper's RollSpec()); a model
            saved with another layout is refused.

    Returns:
        The :class:`SavedModel` (``spec`` = the caller's layout, equal to the saved one).

    Raises:
        ModelError: the directory is missing, is not a model directory, or is corrupt: invalid
            JSON, a model.json that is not an object, a field of the wrong type or out of range
            (``config`` fields, ``threshold`` outside (0, 1), corpus statistics of the wrong
            length or not finite), weights missing, unreadable, of shapes that do not match the
            configuration, or not finite; or a model for another roll layout. The message
            names the directory and the field.
        FileSystemError: model.json or weights.npz cannot be read (permission, I/O error).
    """
    d = Path(directory)
    spec = RollSpec() if spec is None else spec
    meta, version = _read_meta(d)
    saved = _check_meta(d, meta, version)
    if saved.spec != spec:
        raise ModelError(f"model was trained for another roll layout ({saved.spec.to_dict()}), "
                         f"not {spec.to_dict()}; train a model for this layout", d)
    if saved.config.input_dim != spec.frame_size:
        raise ModelError(f"corrupt model directory: input size {saved.config.input_dim} does not "
                         f"match the roll layout's frame size {spec.frame_size}", d)
    saved.spec = spec
    # expected shapes from the configuration, checked before any network is built (a huge
    # latent_dim in a damaged file must not allocate gigabytes)
    saved.weights = _read_weights(d, weight_shapes(saved.config))
    return saved


def saved_spec(directory: str | Path) -> RollSpec:
    """The roll layout a model directory was trained for (model.json checked, weights not read).

    For callers that work in the model's own layout (``qbdi improvise`` with a model of 12 steps per
    quarter): ``read_model(d, saved_spec(d))``.

    Raises:
        ModelError, FileSystemError: as :func:`read_model`.
    """
    d = Path(directory)
    meta, version = _read_meta(d)
    return _check_meta(d, meta, version).spec


def _read_meta(d: Path) -> tuple[dict, int]:
    """model.json of directory d as a dict, with its format version (format and version checked)."""
    if not d.is_dir():
        raise ModelError("no such model directory; train one with `qbdi train --out DIR`", d)
    meta_path = d / MODEL_FILE
    if not meta_path.is_file():
        raise ModelError(f"not a model directory (no {MODEL_FILE}); give the directory "
                         "written by `qbdi train --out`", d)
    try:
        raw = meta_path.read_bytes()
    except OSError as exc:
        raise files.fs_error(exc, meta_path, "read") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _corrupt(d, f"is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _corrupt(d, f"must hold a JSON object, not a JSON {_json_kind(meta)}")
    if meta.get("format") != FORMAT:
        raise _corrupt(d, f"is unreadable (format is {meta.get('format')!r}, not {FORMAT!r})")
    version = meta.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _corrupt(d, f"field 'format_version' must be a whole number >= 0, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelError(f"model format version {version} is newer than this "
                         f"qbdi understands ({FORMAT_VERSION}); update qbdi", d)
    for key in ("spec", "config", "threshold", "corpus_stats", "fingerprint"):
        if key not in meta:
            raise _corrupt(d, f"lacks field {key!r}")
    return meta, version


def _check_meta(d: Path, meta: dict, version: int) -> SavedModel:
    """The fields of model.json checked against the schema (weights not yet read)."""
    try:
        if not isinstance(meta["spec"], dict):
            raise TypeError(f"must be an object, got {meta['spec']!r}")
        saved_spec = RollSpec.from_dict(meta["spec"])
    except (ValueError, KeyError, TypeError, OptionError) as exc:
        raise _corrupt(d, f"field 'spec' is invalid ({exc})") from None
    config = meta["config"]
    if not isinstance(config, dict):
        raise _corrupt(d, f"field 'config' must be an object, got {_json_kind(config)}")
    if version <= 1:
        config = config_from_v1(config)
    try:
        config = VAEConfig.from_dict(config)
    except ModelError as exc:
        raise _corrupt(d, f"is invalid: {exc}") from None
    threshold = meta["threshold"]
    if (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
            or not 0.0 < threshold < 1.0):
        raise _corrupt(d, f"field 'threshold' must be a number strictly between 0 and 1 "
                         f"(the decoding threshold chosen in training), got {threshold!r}")
    threshold = float(threshold)
    fingerprint = meta["fingerprint"]
    if not isinstance(fingerprint, str):
        raise _corrupt(d, f"field 'fingerprint' must be a string, got {fingerprint!r}")
    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise _corrupt(d, f"field 'info' must be an object, got {_json_kind(info)}")
    L = config.latent_dim
    raw_stats = meta["corpus_stats"]
    if not isinstance(raw_stats, dict):
        raise _corrupt(d, f"field 'corpus_stats' must be an object, got {_json_kind(raw_stats)}")
    stats = {}
    for k in ("mean", "var"):
        v = raw_stats.get(k)
        ok = isinstance(v, list) and len(v) == L and all(
            isinstance(e, (int, float)) and not isinstance(e, bool) for e in v)
        if not ok:
            raise _corrupt(d, f"field 'corpus_stats.{k}' must be a list of {L} numbers "
                             f"(latent_dim); corpus statistics do not have {L} components")
        a = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(a)) or (k == "var" and np.any(a < 0)):
            raise _corrupt(d, f"field 'corpus_stats.{k}' holds "
                          + ("negative variances" if np.all(np.isfinite(a)) else "NaN or infinite values"))
        stats[k] = a
    return SavedModel(spec=saved_spec, config=config, threshold=threshold, fingerprint=fingerprint,
                      corpus_stats=stats, info=info)


def _read_weights(d: Path, expected: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The weight arrays of d's weights.npz, checked for count, shapes, dtype and finiteness."""
    # each member's header is checked against these shapes before its data are expanded
    weights = list(limits.read_npz(d / WEIGHTS_FILE, {f"w{i:02d}": s for i, s in enumerate(expected)},
                                   fix="retrain with `qbdi train --force`", where=d).values())
    for i, w in enumerate(weights):
        if not np.issubdtype(w.dtype, np.floating):
            raise ModelError(f"corrupt model directory: {WEIGHTS_FILE} array w{i:02d} has dtype "
                             f"{w.dtype}, not floating point; {_RETRAIN}", d)
        if not np.all(np.isfinite(w)):
            raise ModelError(f"corrupt model directory: {WEIGHTS_FILE} array w{i:02d} holds NaN "
                             f"or infinite values; {_RETRAIN}", d)
    return weights


def _json_kind(v) -> str:
    """The JSON type name of a parsed value ("list", "string", ...)."""
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null", dict: "object"}.get(type(v), type(v).__name__)
