"""Devices for data-parallel training: which TensorFlow distribution strategy ``train(devices=N)`` uses.

* ``devices=None`` or 1: no strategy, the single-device training loop.
* ``devices=N > 1`` on one machine: ``tf.distribute.MirroredStrategy`` over the first N GPUs, or,
  without GPUs, over N logical CPU devices (:func:`split_cpu`; this only tests the parallel code
  path: logical CPU devices share the same cores, so they do not train faster).
* ``devices`` given and ``TF_CONFIG`` set: ``tf.distribute.MultiWorkerMirroredStrategy`` over all
  workers (each worker uses its local GPUs, or its CPU). Recipe, one line per machine::

      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}' qbdi train ... --devices 2
      # on host2 the same command with "index": 1

  Every worker runs the same command on the same corpus (same seed: they read the same global
  batches, each replica trains on its slice); the weights stay identical on all workers; only the
  chief (:func:`is_chief`: worker 0, or the "chief" task if the cluster names one) saves the model.

Used in: :func:`qbdi_utils.training.train` (``devices=``), tests/test_train_scale.py.
"""

from __future__ import annotations

import json
import os

from qbdi_utils.errors import OptionError
from qbdi_utils.model import import_keras

__all__ = ["is_chief", "split_cpu", "strategy_for"]


def split_cpu(n: int) -> list[str]:
    """Configure the CPU as ``n`` logical TensorFlow devices; must run before TensorFlow starts.

    Call it first thing in a process (before any model is built or trained): TensorFlow fixes its
    devices when its runtime starts. When the CPU is already split into n or more devices nothing
    changes (so calling it again is harmless).

    Args:
        n: number of logical CPU devices (>= 1).

    Returns:
        All logical CPU device names, e.g. ["/device:CPU:0", "/device:CPU:1"] (at least n).

    Raises:
        OptionError: n < 1, or TensorFlow has already started in this process with another
            device layout (the message says to call split_cpu at the start of the program).

    Used in: :func:`strategy_for`, tests/test_train_scale.py (in a subprocess).
    """
    if int(n) < 1:
        raise OptionError(f"split_cpu needs n >= 1 devices, got {n}")
    import_keras()
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if (1 if current is None else len(current)) < int(n):
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(n))])
        except RuntimeError:
            have = len(tf.config.list_logical_devices("CPU"))
            raise OptionError(f"cannot split the CPU into {n} devices: TensorFlow has already started in "
                              f"this process with {have}; call qbdi_utils.devices.split_cpu({n}) at the "
                              "start of the program, before any model is built or trained") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def strategy_for(devices: int | None):
    """The distribution strategy of ``train(devices=...)``, or None for plain single-device training.

    Args:
        devices: number of local devices N (None or 1: none). With ``TF_CONFIG`` set, any N
            (even 1) selects the multi-worker strategy (module docstring), which uses every
            worker's local devices; devices=None ignores TF_CONFIG.

    Returns:
        A ``tf.distribute.Strategy`` (MirroredStrategy over N GPUs or N logical CPUs, or
        MultiWorkerMirroredStrategy), or None.

    Raises:
        OptionError: devices < 1; more devices than GPUs; no GPU and the CPU cannot be split any
            more (TensorFlow already started with fewer logical CPUs; see :func:`split_cpu`).

    Used in: :func:`qbdi_utils.training.train`.
    """
    if devices is None:
        return None
    n = int(devices)
    if n < 1:
        raise OptionError(f"devices must be >= 1, got {devices}")
    if os.environ.get("TF_CONFIG"):
        import_keras()
        import tensorflow as tf

        return tf.distribute.MultiWorkerMirroredStrategy()
    if n == 1:
        return None
    import_keras()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if len(gpus) < n:
            raise OptionError(f"devices={n} but this machine has {len(gpus)} GPU(s)")
        names = [d.name for d in tf.config.list_logical_devices("GPU")][:n]
        return tf.distribute.MirroredStrategy(names)
    names = split_cpu(n)[:n]
    return tf.distribute.MirroredStrategy(
        names, cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device=names[0]))


def is_chief() -> bool:
    """True in the process that should save the model: always, unless ``TF_CONFIG`` names another task.

    The chief is the "chief" task if the cluster has one, else worker 0.

    Used in: ``qbdi train`` (multi-worker: only the chief writes the model directory).
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        conf = json.loads(raw)
    except ValueError:
        raise OptionError("TF_CONFIG is not valid JSON") from None
    task = conf.get("task", {}) or {}
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if "chief" in (conf.get("cluster", {}) or {}):
        return kind == "chief"
    return kind == "worker" and index == 0
