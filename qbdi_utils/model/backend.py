"""The Keras backend of the style model, imported once and quietly on first use.

Keras (and TensorFlow behind it) is imported only to train and for the training-time losses; a
loaded model runs in numpy (:mod:`qbdi_utils.model.forward`). :func:`configured_backend` says which
backend Keras would use without importing it (``qbdi info``).

Imports: nothing of ours. Used in: :mod:`qbdi_utils.model`, :mod:`qbdi_utils.training`, ``qbdi info``.
"""

from __future__ import annotations

import json
import os

__all__ = ["configured_backend", "import_keras"]


def configured_backend() -> str:
    """The Keras backend a first ``import keras`` would choose, found without importing Keras.

    Keras 3's rule: the ``KERAS_BACKEND`` environment variable when set and not empty; else the
    ``backend`` of ``keras.json`` in ``$KERAS_HOME`` (default ``~/.keras``, or ``/tmp/.keras`` when the
    home folder is not writable); else ``"tensorflow"``. Once Keras is imported, its own answer.

    Returns:
        The backend's name, e.g. ``"tensorflow"``.

    Used in: ``qbdi info``.
    """
    import sys

    if "keras" in sys.modules:
        return str(sys.modules["keras"].backend.backend())
    name = "tensorflow"
    if "KERAS_HOME" in os.environ:
        home = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(os.path.expanduser(home), "keras.json"), encoding="utf-8") as f:
            name = str(json.load(f).get("backend", name))
    except (OSError, ValueError, AttributeError):
        pass  # no (readable) config file: Keras's default
    return os.environ.get("KERAS_BACKEND") or name


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
