"""The trained style VAE, :class:`StyleVAE`: encode bars to latent states, decode them back (PAPER.md section 3).

The configuration lives in :mod:`qbdi_utils.model.config`, the networks and the loss in
:mod:`qbdi_utils.model.networks`, the saved-model format in :mod:`qbdi_utils.model.persist`; the
training that makes a StyleVAE lives in :mod:`qbdi_utils.training`. A StyleVAE is loaded and run
without its trainer, and without Keras: its weights are numpy arrays and every inference (encode,
decode, sample, the predictor head) is :mod:`qbdi_utils.model.forward`'s numpy pass, whether the model
was just trained or loaded from disk, so both give the same bytes. Keras is imported only to train and
when :attr:`StyleVAE.networks` (the training-time losses) is asked for.

Imports: errors, pianoroll, model.config, model.forward, model.networks, model.persist.
Used in: notebooks/02_vae_training.ipynb and every later notebook, the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from qbdi_utils.errors import ModelError, OptionError
from qbdi_utils.model import forward
from qbdi_utils.model.config import VAEConfig
from qbdi_utils.model.networks import build_networks, build_predictor, network_graphs, objective
from qbdi_utils.model.persist import SavedModel, read_model, write_model
from qbdi_utils.pianoroll import RollSpec

__all__ = ["EVAL_CHUNK", "Networks", "StyleVAE"]

#: Frames per chunk of :meth:`StyleVAE.mean_terms` (and of the training loop's held-out evaluation,
#: ``training.fit``): the predictive term is averaged over the pairs of each chunk, as in a batch.
EVAL_CHUNK = 1000


class Networks(NamedTuple):
    """The Keras networks of a :class:`StyleVAE`, for code that trains or scores them (training-time losses).

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

    Built from trained Keras networks (``StyleVAE(encoder, decoder, ..., predictor=...)``, as
    training does) or from weight arrays (``StyleVAE(weights=[...], ...)``, as :meth:`load` does).
    Either way the weights are copied to numpy when the model is made: inference never calls Keras,
    and changing the Keras networks' weights later does not change the model.

    Raises:
        ValueError: both or neither of (encoder, decoder) and weights given; a predictor head without
            gamma > 0 or the reverse; weights that do not fit the configuration; a Keras network with
            a layer the numpy forward pass does not compute.

    Used in: notebooks/02_vae_training.ipynb and every later notebook.
    """

    def __init__(self, encoder=None, decoder=None, *, spec: RollSpec, config: VAEConfig | Mapping,
                 threshold: float = 0.5, corpus_stats: dict | None = None, fingerprint: str = "",
                 info: dict | None = None, predictor=None, weights: list | None = None):
        self.spec = spec
        self.config = config if isinstance(config, VAEConfig) else VAEConfig.from_dict(config)
        if weights is None:
            if encoder is None or decoder is None:
                raise ValueError("give the Keras encoder and decoder, or weights")
            nets = [encoder, decoder, predictor]
            self._graphs = [None if n is None else forward.graph_from_keras(n) for n in nets]
            self._weights = [[] if n is None else [np.array(w) for w in n.get_weights()] for n in nets]
            self._keras = Networks(encoder, decoder, predictor)
        else:
            if encoder is not None or decoder is not None or predictor is not None:
                raise ValueError("give the Keras networks or weights, not both")
            graphs = network_graphs(self.config)
            self._graphs = [graphs["encoder"], graphs["decoder"], graphs["predictor"]]
            shapes = [forward.graph_weight_shapes(g) if g is not None else [] for g in self._graphs]
            if [tuple(np.shape(w)) for w in weights] != [s for part in shapes for s in part]:
                raise ValueError(f"weights of shapes {[tuple(np.shape(w)) for w in weights]} do not fit the "
                                 f"configuration's {[s for part in shapes for s in part]}")
            it = iter(weights)
            self._weights = [[np.array(next(it)) for _ in part] for part in shapes]
            self._keras = None
        self.threshold = float(threshold)
        L = self.config.latent_dim
        self.corpus_stats = corpus_stats or {"mean": np.zeros(L), "var": np.ones(L)}
        self.fingerprint = fingerprint
        self.info = dict(info or {})
        self.from_cache = False  # set by default_model(): loaded rather than trained
        if (self._graphs[2] is None) != (self.config.gamma == 0):
            raise ValueError(f"a predictor head goes with gamma > 0 (gamma={self.config.gamma}, "
                             f"head {'absent' if self._graphs[2] is None else 'present'})")

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
        return self._graphs[2] is not None

    # -- numpy in, numpy out --------------------------------------------------------------------

    def _run(self, which: int, x: np.ndarray) -> list[np.ndarray]:
        """Outputs of network ``which`` (0 encoder, 1 decoder, 2 predictor) as float32 arrays."""
        return [y.astype(np.float32, copy=False) for y in forward.run(self._graphs[which], self._weights[which], x)]

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
        mean, logvar = self._run(0, x)
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
        (logits,) = self._run(1, z)
        return forward.sigmoid(logits)

    def decode_logits(self, z: np.ndarray) -> np.ndarray:
        """Decoder logits (N, frame_size) float32 for latent states z (N, L)."""
        z = self._check(z, self.latent_dim, "z")
        if len(z) == 0:
            return np.zeros((0, self.config.input_dim), np.float32)
        (logits,) = self._run(1, z)
        return logits

    def sample(self, n: int, seed: int = 0, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Free improvisation (paper experiment (a)): decode n latent states drawn from N(0, I).

        Args:
            n: number of frames.
            seed: seed of the latent draws (used when ``rng`` is None: ``np.random.default_rng(seed)``).
            rng: the Generator to draw the latent states from (advanced by the draw).

        Returns:
            (n, frame_size) float32 probabilities.
        """
        rng = np.random.default_rng(seed) if rng is None else rng
        return self.decode(forward.normal_latents(rng, n, self.latent_dim))

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

    def mean_terms(self, frames: np.ndarray, eps: np.ndarray, nxt: np.ndarray | None = None,
                   *, chunk: int = EVAL_CHUNK) -> tuple[float, ...]:
        """Mean D and R (and P with a predictor head) in nats per frame, with the given noise, in numpy.

        The training-time loss terms (:func:`qbdi_utils.model.networks.loss_terms` and
        ``predictive_terms``) of a held-out set, computed as Keras computes them -- float32 per frame
        (z = mean + exp(logvar / 2) eps; D = sum of softplus(l) - x l; R = KL to N(0, I); P = mask CE /
        mean(mask) per chunk of ``chunk`` frames, the share of a batch) and the chunk sums added in
        float64 -- so the values equal the Keras path's to float32 rounding, without Keras.

        Args:
            frames: (N, input_dim) binary frames (N = 0: every term is NaN).
            eps: (N, L) standard normal noise of the reparameterisation.
            nxt: (N,) index of each frame's next bar in ``frames``, -1 for none (default: frames
                i and i + 1 are consecutive bars of one piece); used only with a predictor head.
            chunk: frames per chunk (the training loop's held-out batch, :data:`EVAL_CHUNK`).

        Returns:
            (d, r) or, with a predictor head, (d, r, p): floats, nats per frame.

        Raises:
            OptionError: frames or eps of the wrong shape, or not one noise row per frame.

        Used in: :func:`qbdi_utils.training.scores.set_scores` (``qbdi train``'s and ``qbdi evaluate``'s
        held-out numbers), tests/test_forward.py.
        """
        x = self._check(frames, self.config.input_dim, "frames")
        e = self._check(eps, self.latent_dim, "eps")
        head = self.has_predictor
        if len(e) != len(x):
            raise OptionError(f"mean_terms needs one noise row per frame, got {len(x)} frames and {len(e)} rows")
        if len(x) == 0:
            return (float("nan"),) * (3 if head else 2)
        if head:
            n = len(x)
            nxt = np.append(np.arange(1, n, dtype=np.int64), -1) if nxt is None else np.asarray(nxt, np.int64)
            mask = (nxt >= 0).astype(np.float32)
            y = x[np.maximum(nxt, 0)] * mask[:, None]
        sums = np.zeros(3 if head else 2)
        for i in range(0, len(x), int(chunk)):
            xb, eb = x[i:i + chunk], e[i:i + chunk]
            mean, logvar = self._run(0, xb)
            z = mean + np.exp(np.float32(0.5) * logvar) * eb
            (logits,) = self._run(1, z)
            terms = [np.sum(forward.softplus(logits) - xb * logits, axis=-1),
                     np.float32(0.5) * np.sum(np.exp(logvar) + np.square(mean) - np.float32(1.0) - logvar, axis=-1)]
            if head:
                (q,) = self._run(2, z)
                mb = mask[i:i + chunk]
                share = np.maximum(np.mean(mb, dtype=np.float32), np.float32(1e-12))
                terms.append(mb * np.sum(forward.softplus(q) - y[i:i + chunk] * q, axis=-1) / share)
            sums += [float(np.sum(t, dtype=np.float32)) for t in terms]
        return tuple(float(v) for v in sums / len(x))

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
        if not self.has_predictor:
            raise ModelError("this model has no predictor head (trained with gamma = 0); train one "
                             "with `qbdi train --gamma G` (G > 0)")
        z = self._check(z, self.latent_dim, "z")
        if len(z) == 0:
            return np.zeros((0, self.config.input_dim), np.float32)
        (logits,) = self._run(2, z)
        return forward.sigmoid(logits)

    @property
    def networks(self) -> Networks:
        """The Keras networks (encoder, decoder, predictor or None), for the training-time losses.

        A model made from Keras networks returns those; a loaded one builds them (importing Keras)
        on first access, with the model's weights. Inference does not use them, and setting their
        weights does not change the model.

        Used in: :mod:`qbdi_utils.training` (held-out scores of a trained model, ``qbdi evaluate``).
        """
        if self._keras is None:
            encoder, decoder = build_networks(self.config)
            predictor = build_predictor(self.config)
            for net, w in zip((encoder, decoder, predictor), self._weights):
                if net is not None:
                    net.set_weights(w)
            self._keras = Networks(encoder, decoder, predictor)
        return self._keras

    def get_weights(self) -> list[np.ndarray]:
        """Encoder, decoder, then predictor-head weights as numpy arrays (kernel (in, out), bias (out,))."""
        return [w.copy() for part in self._weights for w in part]

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
        return cls(spec=saved.spec, config=saved.config, threshold=saved.threshold,
                   corpus_stats=saved.corpus_stats, fingerprint=saved.fingerprint, info=saved.info,
                   weights=saved.weights)
