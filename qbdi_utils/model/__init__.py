"""The style model (PAPER.md section 3): configuration, networks and loss, the saved-model format, StyleVAE.

=============  =================================================================================
``config``     :class:`VAEConfig` (sizes, beta, gamma, optimiser, split) and the named PRESETS
``networks``   encoder, decoder, predictor head as graphs (built by Keras to train); the loss terms and
               the one loss D + beta R + gamma P
``forward``    the numpy forward pass of those graphs: every inference of a StyleVAE, without Keras
``persist``    the model directory: ``model.json`` + ``weights.npz``, read and checked, written whole
``vae``        :class:`StyleVAE`: encode, decode, sample, reconstruct, save, load; its networks
``data``       frames' fingerprint, note scores, synthetic test frames
``backend``    Keras, imported once and quietly on first use (only to train or for training-time losses)
=============  =================================================================================

A model loads and runs without its trainer and without TensorFlow (:mod:`qbdi_utils.training` imports this package, never
the other way round). This package imports errors, files and pianoroll only.

Used in: notebooks/02_vae_training.ipynb and every later notebook, the CLI.
"""

from qbdi_utils.model.backend import configured_backend, import_keras
from qbdi_utils.model.config import DEFAULT_CONFIG, DEFAULT_EPOCHS, PRESETS, VAEConfig
from qbdi_utils.model.data import frames_fingerprint, note_scores, synthetic_frames
from qbdi_utils.model.forward import Graph, Layer, graph_from_keras
from qbdi_utils.model.networks import (
    build_networks, build_predictor, keras_network, loss_terms, network_graphs, objective, predictive_terms,
    weight_shapes,
)
from qbdi_utils.model.persist import FORMAT, FORMAT_VERSION, MODEL_FILE, WEIGHTS_FILE, SavedModel
from qbdi_utils.model.vae import Networks, StyleVAE

__all__ = [
    "DEFAULT_CONFIG", "DEFAULT_EPOCHS", "FORMAT", "FORMAT_VERSION", "Graph", "Layer", "MODEL_FILE", "Networks",
    "PRESETS", "SavedModel", "StyleVAE", "VAEConfig", "WEIGHTS_FILE", "build_networks", "build_predictor",
    "configured_backend", "frames_fingerprint", "graph_from_keras", "import_keras", "keras_network", "loss_terms",
    "network_graphs", "note_scores", "objective", "predictive_terms", "synthetic_frames", "weight_shapes",
]
