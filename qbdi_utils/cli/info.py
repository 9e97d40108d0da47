"""``qbdi info``: what a user pastes into a bug report (versions, audio engine, directories, model).

It imports neither TensorFlow nor Keras (their versions come from the installed distributions, the
backend from Keras's configuration), so it answers in about a second even where ``import tensorflow``
takes ten.
"""

from __future__ import annotations

import json

from qbdi_utils import __version__, paths, render, soundfont, training
from qbdi_utils.model import MODEL_FILE, configured_backend

__all__ = ["add_parser", "collect", "run"]

#: Distributions whose installed versions are reported, in this order (name shown, distribution).
PACKAGES = (("TensorFlow", "tensorflow"), ("Keras", "keras"), ("music21", "music21"), ("vmo", "vmo"),
            ("verovio", "verovio"), ("numpy", "numpy"), ("ipywidgets", "ipywidgets"), ("voila", "voila"),
            ("pretty_midi", "pretty_midi"), ("midirenderer", "midirenderer"))


def add_parser(subparsers) -> None:
    """Register the ``info`` sub-command."""
    p = subparsers.add_parser(
        "info",
        help="print versions, the audio engine, data and model directories (for bug reports)",
        description="Print the versions of qbdi, Python and the libraries it relies on (with the Keras "
        "backend, which is used only to train), the synthesizer that renders audio and its SoundFont, the cache and model "
        "directories, and whether the default model has been trained.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect() -> dict:
    """The facts ``qbdi info`` prints, as a dict of plain JSON values.

    Returns:
        dict with ``qbdi``, ``python``, ``platform``, ``packages`` ({name: version or None}),
        ``keras_backend`` (what Keras would use, read without importing it), ``inference`` (what runs a
        loaded model: ``"numpy"``), ``audio_engine`` (what ``render.synthesize`` uses), ``soundfont`` (path or
        None), ``soundfont_synthesizer`` (midirenderer version or None), ``soundfont_unavailable``
        (why SoundFont rendering cannot run, or None), ``cache_dir``, ``models_dir``,
        ``default_model_dir``, ``default_model_exists``.

    Used in: ``qbdi info``.
    """
    import platform
    import sys

    sf = soundfont.find_soundfont()
    model_dir = training.default_model_dir()
    return {
        "qbdi": __version__,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": {name: _version(dist) for name, dist in PACKAGES},
        "keras_backend": configured_backend(),
        "inference": "numpy",
        "audio_engine": render.synthesis_engine(),
        "soundfont": None if sf is None else str(sf),
        "soundfont_synthesizer": soundfont.engine_version(),
        "soundfont_unavailable": soundfont.unavailable_reason(),
        "cache_dir": str(paths.cache_dir()),
        "models_dir": str(paths.models_dir()),
        "default_model_dir": str(model_dir),
        "default_model_exists": (model_dir / MODEL_FILE).is_file(),
    }


def run(args) -> int:
    """Handler: print :func:`collect` as text (or JSON with ``--json``)."""
    info = collect()
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"qbdi {info['qbdi']} on Python {info['python']} ({info['platform']})")
    print(f"  python: {info['python_executable']}")
    for name, v in info["packages"].items():
        extra = f" (backend {info['keras_backend']}, used only to train)" if name == "Keras" else ""
        print(f"  {name}: {v or 'not installed'}{extra}")
    print(f"inference: {info['inference']} (a saved model runs without TensorFlow)")
    print(f"audio: {info['audio_engine']} synthesizer")
    if info["soundfont_unavailable"]:
        print(f"  SoundFont rendering unavailable: {info['soundfont_unavailable']}")
    print(f"  SoundFont: {info['soundfont'] or 'none found'}; "
          f"synthesizer midirenderer {info['soundfont_synthesizer'] or 'not importable'}")
    print(f"cache: {info['cache_dir']}")
    print(f"models: {info['models_dir']}")
    state = "present" if info["default_model_exists"] else "absent; trained on first use"
    print(f"default model: {info['default_model_dir']} ({state})")
    return 0
