"""``qbdi train``: train a style VAE on a corpus and save it to a model directory.

    qbdi train --corpus {chorales|PATH} --out MODEL_DIR [--epochs N] [--beta B] [--seed S]
               [--hidden-dim H] [--latent-dim L] [--gamma G] [--force]

Prints progress (corpus parsing, epochs) on stderr and, at the end, the validation numbers (on
which the decoding threshold was chosen) and the held-out test numbers: rate R, distortion D (nats
per frame) and note F1. An existing MODEL_DIR is never overwritten without ``--force``; the check
happens before anything is loaded or trained.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import train as train_mod
from qbdi_utils.errors import OptionError, OutputExistsError
from qbdi_utils.vae import PRESETS

__all__ = ["add_parser", "run_train"]

BETA_HELP = ("weight of the rate R in the loss D + beta*R, nats per frame (default 1 = the negative "
             "ELBO). beta-VAE convention: beta weighs the RATE; the paper's Appendix-B beta weighs "
             "the distortion, so beta = 1/beta_paper")


def add_parser(subparsers) -> None:
    """Register the ``train`` sub-command."""
    paper = PRESETS["paper"]
    p = subparsers.add_parser(
        "train",
        help="train a style VAE on a corpus of MIDI files (or the Bach chorales)",
        description="Train the paper's VAE (loss D + beta*R per frame, beta weighing the rate) on "
        "the bar-aligned 4/4 frames of a corpus, split by piece into training / validation / test "
        "pieces: the decoding threshold is chosen on validation, the reported held-out numbers come "
        "from test. Saves the model to MODEL_DIR.",
    )
    p.add_argument("--corpus", required=True, metavar="{chorales|PATH}",
                   help="'chorales' (music21's Bach chorales) or a folder of .mid files / one .mid file")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    p.add_argument("--epochs", type=int, default=paper.epochs,
                   help=f"passes over the training frames (default {paper.epochs})")
    p.add_argument("--beta", type=float, default=paper.beta, help=BETA_HELP)
    p.add_argument("--seed", type=int, default=paper.seed,
                   help="seed of weights, noise, shuffling, split (default 0)")
    p.add_argument("--hidden-dim", type=int, default=paper.hidden_dim,
                   help=f"hidden layer size (default {paper.hidden_dim})")
    p.add_argument("--latent-dim", type=int, default=paper.latent_dim,
                   help=f"latent components (default {paper.latent_dim})")
    p.add_argument("--gamma", default="0", metavar="G",
                   help="weight of the predictive term G*CE(x_{t+1} | z_t) in nats per frame (default 0 "
                   "= the paper's VAE, no head); G > 0 adds a predictor head latent -> hidden -> "
                   "next bar (PAPER.md section 8)")
    p.add_argument("--force", action="store_true", help="overwrite an existing MODEL_DIR")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    """Handler of ``qbdi train``; returns the exit status.

    Raises:
        OutputExistsError: --out exists and --force was not given (or it is a file).
        OptionError: an option out of range, or a corpus with too few frames.
        CorpusError: the corpus cannot be read.
    """
    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError("already exists; choose another --out or add --force to overwrite", out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError("exists and is not a directory; choose another --out", out)
    for name, value, lo in (("--epochs", args.epochs, 1), ("--hidden-dim", args.hidden_dim, 1),
                            ("--latent-dim", args.latent_dim, 1), ("--seed", args.seed, 0)):
        if value < lo:
            raise OptionError(f"{name} {value} must be at least {lo}")
    if not (math.isfinite(args.beta) and args.beta >= 0):
        raise OptionError(f"--beta {args.beta} must be a finite number >= 0")
    gamma = _nonnegative_float("--gamma", args.gamma)

    corpus = corpus_mod.load_corpus(args.corpus, progress=True)
    print(f"corpus: {corpus.n_frames} frames from {len(corpus.piece_names)} pieces "
          f"({len(corpus.skipped)} skipped)", file=sys.stderr)
    if corpus.n_frames < 3:
        raise OptionError(f"corpus {args.corpus} has {corpus.n_frames} frame(s); need at least 3 "
                          "(training, validation and test)")
    model, _ = train_mod.train(corpus.frames, spec=corpus.spec, groups=corpus.piece_index,
                               hidden_dim=args.hidden_dim, latent_dim=args.latent_dim,
                               epochs=args.epochs, beta=args.beta, seed=args.seed, gamma=gamma,
                               progress=True)
    train_mod.record_corpus(model, args.corpus, corpus)
    model.save(out)
    i = model.info
    print(f"saved {out} ({i['n_train']} training / {i['n_validation']} validation / "
          f"{i['n_test']} test frames, {i['train_seconds']:.1f} s)")
    print(f"validation: R = {i['validation_r_nats']:.2f}, D = {i['validation_d_nats']:.2f} nats/frame, "
          f"note F1 = {i['validation_f1']:.3f}; threshold {model.threshold:.2f} chosen here")
    print(f"held-out test: R = {i['test_r_nats']:.2f} nats/frame, D = {i['test_d_nats']:.2f} "
          f"nats/frame, note F1 = {i['test_f1']:.3f} (precision {i['test_precision']:.3f}, "
          f"recall {i['test_recall']:.3f}) at threshold {model.threshold:.2f}")
    if model.has_predictor:
        print(f"predictor head: test CE(x_t+1 | z_t) term = {i['test_p_nats']:.2f} nats/frame "
              f"(gamma = {gamma}); measure it with `qbdi evaluate --model {out}`")
    return 0


def _nonnegative_float(name: str, value: str) -> float:
    """Parse a finite number >= 0, raising OptionError (one stderr line) otherwise."""
    try:
        v = float(str(value).strip())
    except ValueError:
        raise OptionError(f"{name} {value!r} is not a number") from None
    if not (math.isfinite(v) and v >= 0):
        raise OptionError(f"{name} {value} must be a finite number >= 0")
    return v
