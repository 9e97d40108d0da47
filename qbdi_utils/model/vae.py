"""The trained style VAE, :class:`StyleVAE`: encode bars to latent states, decode them back (PAPER.md section 3).

The configuration lives in :mod:`qbdi_utils.model.config`, the networks and the loss in
:mod:`qbdi_utils.model.networks`, the saved-model format in :mod:`qbdi_utils.model.persist`; the
training that makes a StyleVAE lives in :mod:`qbdi_utils.training`. A StyleVAE is loaded and run
without its trainer. Keras is imported on first use, not when this module is imported.

Imports: errors, pianoroll, model.backend, model.config, model.networks, model.persist.
Used in: notebooks/02_vae_training.ipynb and every later notebook, the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from qbdi_utils.errors import ModelError, OptionError
from qbdi_utils.model.backend import import_keras
from qbdi_utils.model.config import VAEConfig
from qbdi_utils.model.networks import build_networks, build_predictor, objective
from qbdi_utils.model.persist import SavedModel, read_model, write_model
from qbdi_utils.pianoroll import RollSpec

__all__ = ["Networks", "StyleVAE"]

_ENCODE_BATCH = 4096


class Networks(NamedTuple):
    """The Keras networks of a :class:`StyleVAE` (its backend), for code that trains or scores them.

    Attributes:
        encoder: x (N, input_dim) -> [mean (N, L), logvar (N, L)].
        decoder: z (N, L) -> logits (N, input_dim).
        predictor: z_t (N, L) -> next-bar logits (N, input_dim), or None (gamma = 0).
    """

    encoder: object
    decoder: object
    predictor: object | None


class StyleVAE:
    """A trained style VAE: encode bars to latent states, decode latent states to bars.

    Attributes:
        spec: the roll layout of the frames the model reads and writes.
        config: the :class:`VAEConfig` (sizes, beta, epochs, batch size, learning rate, split,
            seed); also readable as a mapping, ``model.config["latent_dim"]``.
        latent_dim: L, the number of latent components.
        threshold: decoding threshold chosen on the validation pieces (maximum note F1 of the
            outputs as written, i.e. after ``pianoroll.binarize``).
        corpus_stats: {"mean": (L,), "var": (L,)} float64, mean and variance over the training
            corpus of the latent means (the channel's "corpus" source statistics).
        fingerprint: :func:`frames_fingerprint` of the training corpus.
        info: facts about the training run: ``validation_*`` and ``test_*`` R, D, loss (nats per
            frame), precision, recall, F1; ``held_out_*`` = the test numbers (older name); sizes
            ``n_train``, ``n_validation``, ``n_test``; wall time, backend, per-epoch history.
        from_cache: True when ``training.default_model`` loaded it instead of training it.

    Used in: notebooks/02_vae_training.ipynb and every later notebook.
    """

    def __init__(self, encoder, decoder, *, spec: RollSpec, config: VAEConfig | Mapping,
                 threshold: float = 0.5, corpus_stats: dict | None = None, fingerprint: str = "",
                 info: dict | None = None, predictor=None):
        self._encoder = encoder
        self._decoder = decoder
        self._predictor = predictor
        self.spec = spec
        self.config = config if isinstance(config, VAEConfig) else VAEConfig.from_dict(config)
        self.threshold = float(threshold)
        L = self.config.latent_dim
        self.corpus_stats = corpus_stats or {"mean": np.zeros(L), "var": np.ones(L)}
        self.fingerprint = fingerprint
        self.info = dict(info or {})
        self.from_cache = False  # set by default_model(): loaded rather than trained
        if (self._predictor is None) != (self.config.gamma == 0):
            raise ValueError(f"a predictor head goes with gamma > 0 (gamma={self.config.gamma}, "
                             f"head {'absent' if predictor is None else 'present'})")

    @property
    def latent_dim(self) -> int:
        """Number of latent components L."""
        return self.config.latent_dim

    def __repr__(self) -> str:
        c = self.config
        return (f"StyleVAE({c.input_dim}->{c.hidden_dim}->{c.latent_dim}, beta={c.beta}, "
                + (f"gamma={c.gamma}, predictor {c.latent_dim}->{c.hidden_dim}->{c.input_dim}, "
                   if self.has_predictor else "")
                + f"threshold={self.threshold:.2f}, fingerprint={self.fingerprint!r})")

    @property
    def has_predictor(self) -> bool:
        """True for a model trained with gamma > 0 (it carries a next-bar predictor head)."""
        return self._predictor is not None

    # -- numpy in, numpy out --------------------------------------------------------------------

    def _run(self, net, x: np.ndarray, batch: int):
        keras = import_keras()
        outs = []
        for i in range(0, max(len(x), 1), batch):
            chunk = x[i:i + batch]
            y = net(chunk, training=False)
            y = y if isinstance(y, (list, tuple)) else [y]
            outs.append([keras.ops.convert_to_numpy(t).astype(np.float32) for t in y])
        return [np.concatenate(parts, axis=0) for parts in zip(*outs)]

    def _check(self, a: np.ndarray, width: int, what: str) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != width:
            raise OptionError(f"{what} must have shape (N, {width}), got {np.shape(a)}")
        return a

    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters of each frame.

        Args:
            frames: (N, frame_size) binary frames (uint8 or float).

        Returns:
            (mean (N, L) float32, logvar (N, L) float32) of q(z | x).
        """
        x = self._check(frames, self.config.input_dim, "frames")
        if len(x) == 0:
            L = self.latent_dim
            return np.zeros((0, L), np.float32), np.zeros((0, L), np.float32)
        mean, logvar = self._run(self._encoder, x, _ENCODE_BATCH)
        return mean, logvar

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Bernoulli probabilities of every cell given latent states.

        Args:
            z: (N, L) latent states.

        Returns:
            (N, frame_size) float32 probabilities in [0, 1].
        """
        z = self._check(z, self.latent_dim, "z")
        if len(z) == 0:
            return np.zeros((0, self.config.input_dim), np.float32)
        (logits,) = self._run(self._decoder, z, _ENCODE_BATCH)
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def decode_logits(self, z: np.ndarray) -> np.ndarray:
        """Decoder logits (N, frame_size) float32 for latent states z (N, L)."""
        z = self._check(z, self.latent_dim, "z")
        (logits,) = self._run(self._decoder, z, _ENCODE_BATCH)
        return logits

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Free improvisation (paper experiment (a)): decode n latent states drawn from N(0, I).

        Args:
            n: number of frames.
            seed: seed of the latent draws.

        Returns:
            (n, frame_size) float32 probabilities.
        """
        z = np.random.default_rng(seed).standard_normal((int(n), self.latent_dim)).astype(np.float32)
        return self.decode(z)

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Decode the posterior means of frames: (N, frame_size) -> (N, frame_size) probabilities."""
        return self.decode(self.encode(frames)[0])

    def binarize(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Threshold probabilities (default: the model's threshold) into uint8 frames."""
        th = self.threshold if threshold is None else float(threshold)
        return (np.asarray(probabilities) >= th).astype(np.uint8)

    def rate_distortion(self, frames: np.ndarray, *, seed: int | None = 0) -> dict:
        """Average distortion and rate over frames, in nats per frame.

        Args:
            frames: (N, frame_size) binary frames.
            seed: seed of the reparameterisation noise (z = mean + std eps); None decodes the
                posterior mean (z = mean) instead of a sample.

        Returns:
            dict with ``d_nats``, ``r_nats``, ``loss_nats`` (= d + beta r) and ``elbo_nats`` (= -(d + r)).
        """
        x = self._check(frames, self.config.input_dim, "frames")
        mean, logvar = self.encode(x)
        if seed is None:
            z = mean
        else:
            eps = np.random.default_rng(seed).standard_normal(mean.shape).astype(np.float32)
            z = mean + np.exp(0.5 * logvar) * eps
        logits = self.decode_logits(z).astype(np.float64)
        d = np.sum(np.logaddexp(0.0, logits) - x * logits, axis=1)
        r = 0.5 * np.sum(np.exp(logvar) + mean.astype(np.float64) ** 2 - 1.0 - logvar, axis=1)
        d_m, r_m = float(d.mean()), float(r.mean())
        return {"d_nats": d_m, "r_nats": r_m, "loss_nats": objective(d_m, r_m, beta=float(self.config.beta)),
                "elbo_nats": -(d_m + r_m)}

    def predict_next(self, z: np.ndarray) -> np.ndarray:
        """The predictor head's Bernoulli probabilities of the next bar given latent states.

        Args:
            z: (N, L) latent states z_t.

        Returns:
            (N, frame_size) float32 probabilities q(x_{t+1} | z_t).

        Raises:
            ModelError: the model has no predictor head (it was trained with gamma = 0).

        Used in: qbdi_utils.predictive, tests/test_vae_predictive.py.
        """
        if self._predictor is None:
            raise ModelError("this model has no predictor head (trained with gamma = 0); train one "
                             "with `qbdi train --gamma G` (G > 0)")
        z = self._check(z, self.latent_dim, "z")
        if len(z) == 0:
            return np.zeros((0, self.config.input_dim), np.float32)
        (logits,) = self._run(self._predictor, z, _ENCODE_BATCH)
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    @property
    def networks(self) -> Networks:
        """The Keras networks (encoder, decoder, predictor or None): the public backend accessor.

        Used in: :mod:`qbdi_utils.training` (held-out scores of a trained model).
        """
        return Networks(self._encoder, self._decoder, self._predictor)

    def get_weights(self) -> list[np.ndarray]:
        """Encoder, decoder, then predictor-head weights as numpy arrays (kernel (in, out), bias (out,))."""
        nets = [self._encoder, self._decoder] + ([self._predictor] if self._predictor is not None else [])
        return [np.asarray(w) for net in nets for w in net.get_weights()]

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | Path, *, force: bool = False,
             extra: Callable[[Path], object] | None = None) -> Path:
        """Write the model directory (``model.json``, ``weights.npz``) atomically as a whole.

        The complete directory is staged beside ``directory`` and swapped in
        (:func:`qbdi_utils.model.persist.write_model`), so at every instant ``directory`` holds the whole
        old model or the whole new one; a failed save leaves the old one untouched.

        Args:
            directory: the model directory to create (an existing empty folder is fine).
            force: replace an existing non-empty directory (its old files all go).
            extra: optional ``extra(stage)`` that writes further files into the staging folder
                ``stage`` (a Path), so they appear together with the model (``qbdi train`` writes
                skipped.csv this way).

        Returns:
            The directory as a Path.

        Raises:
            OutputExistsError: ``directory`` exists, is not empty, and ``force`` is false.
            FileSystemError: a file-system fault (disk full, file-size limit, permission, a file
                where the folder should be); the old directory is then unchanged.
            ModelError: a weight is not finite (NaN or infinity), so the model would be useless.

        Used in: ``qbdi train``, :func:`qbdi_utils.training.cached_model`, tests/conftest.py.
        """
        saved = SavedModel(spec=self.spec, config=self.config, threshold=self.threshold,
                           fingerprint=self.fingerprint, corpus_stats=self.corpus_stats, info=self.info,
                           weights=self.get_weights())
        return write_model(directory, saved, force=force, extra=extra)

    @classmethod
    def load(cls, directory: str | Path, spec: RollSpec | None = None) -> "StyleVAE":
        """Read a model written by :meth:`save`, checking ``model.json`` against its schema.

        Args:
            directory: the model directory.
            spec: the roll layout the caller works in (default: the paper's RollSpec()); a model
                saved with another layout is refused.

        Returns:
            The model.

        Raises:
            ModelError, FileSystemError: as :func:`qbdi_utils.model.persist.read_model` (a missing,
                corrupt or foreign model directory; an unreadable file), naming the directory.
        """
        saved = read_model(directory, spec)
        config = saved.config
        encoder, decoder = build_networks(config)
        predictor = build_predictor(config)
        nets = [encoder, decoder] + ([predictor] if predictor is not None else [])
        built = [tuple(w.shape) for net in nets for w in net.weights]
        expected = [tuple(w.shape) for w in saved.weights]
        if built != expected:  # pragma: no cover - weight_shapes mirrors build_networks
            raise AssertionError(f"weight_shapes {expected} != built {built}")
        start = 0
        for net in nets:
            net.set_weights(saved.weights[start:start + len(net.weights)])
            start += len(net.weights)
        return cls(encoder, decoder, spec=saved.spec, config=config, threshold=saved.threshold,
                   corpus_stats=saved.corpus_stats, fingerprint=saved.fingerprint, info=saved.info,
                   predictor=predictor)
