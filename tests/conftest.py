"""Shared test set-up: tests never read or write the user's data/cache or models/."""

from __future__ import annotations

import os
import tempfile

import pytest

_TMP = tempfile.mkdtemp(prefix="qbdi-tests-")
os.environ.setdefault("QBDI_CACHE_DIR", os.path.join(_TMP, "cache"))
os.environ.setdefault("QBDI_MODELS_DIR", os.path.join(_TMP, "models"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def spec():
    """The paper's roll layout."""
    from qbdi_utils.pianoroll import RollSpec

    return RollSpec()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small StyleVAE (2496 -> 64 -> 16 latents) trained 3 epochs on 400 synthetic chord frames.

    Saved to (and loaded back from) a temp dir, ``tiny_model.info["model_dir"]`` says where.
    Shares the paper's RollSpec, threshold, corpus_stats and encode/decode API with the real model.
    """
    from qbdi_utils import training
    from qbdi_utils.model import StyleVAE, synthetic_frames

    frames = synthetic_frames(400, seed=0)
    model, _ = training.train(frames, hidden_dim=64, latent_dim=16, epochs=3, seed=0, progress=False)
    out = tmp_path_factory.mktemp("tiny_model")
    model.save(out)
    loaded = StyleVAE.load(out)
    loaded.info["model_dir"] = str(out)
    return loaded


@pytest.fixture(scope="session")
def chord_query_mid(tmp_path_factory):
    """A factory: ``chord_query_mid(n_bars)`` writes (once per length) a synthetic chord query of
    ``n_bars`` 4/4 bars at 100 bpm as MIDI and returns its path."""
    from qbdi_utils import pianoroll
    from qbdi_utils.model import synthetic_frames

    made: dict = {}

    def make(n_bars: int):
        if n_bars not in made:
            spec = pianoroll.RollSpec()
            roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(n_bars, seed=4), spec), spec)
            path = tmp_path_factory.mktemp("query") / "chords.mid"
            made[n_bars] = pianoroll.write_midi(roll, path, tempo_bpm=100.0, spec=spec)
        return made[n_bars]

    return make
