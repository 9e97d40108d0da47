"""``qbdi train``: train a style VAE on a corpus and save it to a model directory.

    qbdi train --corpus {chorales|PATH} --out MODEL_DIR [--epochs N] [--beta B] [--seed S]
               [--hidden-dim H] [--latent-dim L] [--force]

Prints progress (corpus parsing, epochs) on stderr and, at the end, the held-out rate R, distortion
D (nats per frame) and note F1 at the chosen threshold. An existing MODEL_DIR is never overwritten
without ``--force``; the check happens before anything is loaded or trained.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qbdi_utils.errors import OptionError, OutputExistsError


def add_parser(subparsers) -> None:
    """Register the ``train`` sub-command."""
    from qbdi_utils.vae import DEFAULT_CONFIG, DEFAULT_EPOCHS

    p = subparsers.add_parser(
        "train",
        help="train a style VAE on a corpus of MIDI files (or the Bach chorales)",
        description="Train the paper's VAE (loss D + beta R) on the bar-aligned 4/4 frames of a "
        "corpus, choose its decoding threshold on held-out pieces and save it to MODEL_DIR.",
    )
    p.add_argument("--corpus", required=True, metavar="{chorales|PATH}",
                   help="'chorales' (music21's Bach chorales) or a folder of .mid files / one .mid file")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"passes over the training frames (default {DEFAULT_EPOCHS})")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the rate R in the loss (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, noise, shuffling, split (default 0)")
    p.add_argument("--hidden-dim", type=int, default=DEFAULT_CONFIG["hidden_dim"],
                   help=f"hidden layer size (default {DEFAULT_CONFIG['hidden_dim']})")
    p.add_argument("--latent-dim", type=int, default=DEFAULT_CONFIG["latent_dim"],
                   help=f"latent components (default {DEFAULT_CONFIG['latent_dim']})")
    p.add_argument("--force", action="store_true", help="overwrite an existing MODEL_DIR")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    """Handler of ``qbdi train``; returns the exit status."""
    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError("already exists; choose another --out or add --force to overwrite", out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError("exists and is not a directory; choose another --out", out)
    for name, value, lo in (("--epochs", args.epochs, 1), ("--hidden-dim", args.hidden_dim, 1),
                            ("--latent-dim", args.latent_dim, 1)):
        if value < lo:
            raise OptionError(f"{name} {value} must be at least {lo}")
    if not args.beta >= 0:
        raise OptionError(f"--beta {args.beta} must be >= 0")

    from qbdi_utils import corpus as corpus_mod
    from qbdi_utils import vae

    corpus = corpus_mod.load_corpus(args.corpus, progress=True)
    print(f"corpus: {corpus.n_frames} frames from {len(corpus.piece_names)} pieces "
          f"({len(corpus.skipped)} skipped)", file=sys.stderr)
    if corpus.n_frames < 2:
        raise OptionError(f"corpus {args.corpus} has {corpus.n_frames} frame(s); need at least 2")
    model, _ = vae.train(corpus.frames, spec=corpus.spec, groups=corpus.piece_index,
                         hidden_dim=args.hidden_dim, latent_dim=args.latent_dim, epochs=args.epochs,
                         beta=args.beta, seed=args.seed, progress=True)
    # where the training frames came from, so `qbdi navigate --source corpus` can find them again
    source = "chorales" if args.corpus == "chorales" else str(Path(args.corpus).resolve())
    model.info["corpus"] = {"source": source, "options": corpus.options, "fingerprint": corpus.fingerprint}
    model.save(out)
    i = model.info
    print(f"saved {out} ({i['n_train']} training / {i['n_held_out']} held-out frames, "
          f"{i['train_seconds']:.1f} s)")
    print(f"held-out: R = {i['held_out_r_nats']:.2f} nats/frame, D = {i['held_out_d_nats']:.2f} "
          f"nats/frame, note F1 = {i['held_out_f1']:.3f} (precision {i['held_out_precision']:.3f}, "
          f"recall {i['held_out_recall']:.3f}) at threshold {model.threshold:.2f}")
    return 0
