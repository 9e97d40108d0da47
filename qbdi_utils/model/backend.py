"""The Keras backend of the style model, imported once and quietly on first use.

Imports: nothing of ours. Used in: :mod:`qbdi_utils.model`, :mod:`qbdi_utils.training`, ``qbdi info``.
"""

from __future__ import annotations

import os

__all__ = ["import_keras"]


def import_keras():
    """The keras module: imported (with its backend) once, without the backend's start-up chatter on stderr.

    TensorFlow >= 2.19 writes INFO lines ("oneDNN custom operations are on", "Could not find cuda
    drivers") from C++ before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot silence them
    (tensorflow/tensorflow#100442), and its device discovery logs an error on CPU-only machines.
    They would land in every notebook and after every CLI command, so file descriptor 2 points at
    /dev/null for the first import and device discovery only; a Python exception raised by the
    import is still reported normally.
    """
    import sys

    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow

            # device discovery prints "failed call to cuInit" on machines without a GPU driver;
            # do it now, while muted (a GPU that works is still found and used)
            tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras
