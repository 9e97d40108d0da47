"""What the benchmark scripts share: the model they measure."""

from __future__ import annotations

__all__ = ["load_model"]


def load_model():
    """The default model when it exists, else a paper-size model trained 1 epoch on synthetic frames.

    Returns:
        (model, label) where label says which of the two was used.
    """
    from qbdi_utils import training
    from qbdi_utils.model import MODEL_FILE, StyleVAE, synthetic_frames

    d = training.default_model_dir()
    if (d / MODEL_FILE).is_file():
        return StyleVAE.load(d), "default"
    frames = synthetic_frames(2000, seed=0)
    model, _ = training.train(frames, hidden_dim=500, latent_dim=500, epochs=1, seed=0, progress=False)
    return model, "paper-size, 1 epoch on synthetic frames"
