"""``qbdi info`` reports what is installed and where things are, checked against independent sources."""

from __future__ import annotations

import json
import platform
from importlib import metadata

from qbdi_utils.cli import main


def _info(capsys, *argv) -> dict:
    assert main(["info", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_versions_and_directories_match_the_environment(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path / "m"))
    info = _info(capsys)
    assert info["python"] == platform.python_version()
    assert info["qbdi"] == metadata.version("qbdi")
    for name, dist in (("TensorFlow", "tensorflow"), ("Keras", "keras"), ("music21", "music21"),
                       ("vmo", "vmo"), ("verovio", "verovio")):
        assert info["packages"][name] == metadata.version(dist), name
    assert info["keras_backend"] in ("tensorflow", "jax", "torch", "numpy")
    assert info["cache_dir"] == str(tmp_path / "c")
    assert info["models_dir"] == str(tmp_path / "m")
    assert info["default_model_dir"] == str(tmp_path / "m" / "default")
    assert info["default_model_exists"] is False


def test_default_model_is_reported_once_its_files_exist(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path))
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "model.json").write_text("{}")
    assert _info(capsys)["default_model_exists"] is True


def test_audio_engine_and_soundfont_are_reported(capsys, monkeypatch):
    from qbdi_utils import soundfont

    info = _info(capsys)
    assert info["audio_engine"] in ("soundfont", "fluidsynth", "builtin")
    assert (info["soundfont_unavailable"] is None) == soundfont.available()
    monkeypatch.setattr(soundfont, "_synth_module", lambda: None)
    info = _info(capsys)
    assert info["soundfont_synthesizer"] is None and "midirenderer" in info["soundfont_unavailable"]


def test_text_output_names_every_section(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("qbdi ", "Python", "TensorFlow", "backend", "music21", "vmo", "verovio", "audio:",
                 "SoundFont", "cache:", "models:", "default model:"):
        assert word in out, word


def test_backend_is_keras_configuration_read_without_importing_keras(tmp_path):
    """In a fresh process: KERAS_BACKEND wins, else keras.json in KERAS_HOME (Keras 3's documented rule);
    inference is numpy, and neither Keras nor TensorFlow is imported."""
    import os
    import subprocess
    import sys

    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    code = ("import json, sys; from qbdi_utils.cli import info; d = info.collect(); "
            "print(json.dumps([d['keras_backend'], d['inference'], 'keras' in sys.modules, 'tensorflow' in sys.modules]))")
    for env_backend, want in (("jax", "jax"), ("", "torch")):
        env = {**os.environ, "KERAS_HOME": str(tmp_path), "KERAS_BACKEND": env_backend}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == [want, "numpy", False, False]
