"""Training of the style VAE (PAPER.md section 3): split, fit loops, threshold, streaming, devices, cached models.

=============  =================================================================================
``split``      the three-way split by piece, successor pairs, held-out caps and noise streams
``threshold``  frames as written (binarize piece by piece) and the F1-maximising threshold
``fit``        the trainer and :func:`fit_function` (the TensorFlow loop, or Model.fit)
``tf_loop``    the TensorFlow loop: in memory, streamed, data-parallel
``epochs``     around each epoch: validation frames, loss checks, early stopping, warm-up
``scores``     held-out R, D (P), loss and note F1 of a trained model
``run``        :func:`train`: frames or a frame source in, a trained, measured StyleVAE out
``stream``     frame sources read shard by shard; the tf.data pipeline of streamed training
``devices``    distribution strategies for data-parallel training
``cache``      cached models by configuration and data; the default model
=============  =================================================================================

This package imports :mod:`qbdi_utils.model` (and corpus, for the cached models); the model never
imports it. Validation and test frames are scored with noise from their own random streams, so the
training run does not depend on whether or how often the held-out sets are evaluated.

Used in: notebooks/02_vae_training.ipynb, 06, ``qbdi train``, notebooks 03-07 via :func:`default_model`.
"""

from qbdi_utils.training import devices, stream  # noqa: F401  (modules, for stream.ArraySource etc.)
from qbdi_utils.training.cache import (
    cached_model, default_model, default_model_dir, record_corpus, recorded_corpus, same_config,
)
from qbdi_utils.training.run import STREAM_EVAL_FRAMES, train
from qbdi_utils.training.scores import held_out_scores
from qbdi_utils.training.split import (
    cap_held_out, split_held_out, split_pieces, subset_successors, successor_index,
)
from qbdi_utils.training.threshold import THRESHOLD_GRID, binarize_by_piece, choose_threshold

__all__ = [
    "STREAM_EVAL_FRAMES", "THRESHOLD_GRID", "binarize_by_piece", "cached_model", "cap_held_out",
    "choose_threshold", "default_model", "default_model_dir", "devices", "held_out_scores", "record_corpus", "recorded_corpus",
    "same_config", "split_held_out", "split_pieces", "stream", "subset_successors", "successor_index", "train",
]
