"""``qbdi train``: train a style VAE on a corpus and save it to a model directory.

    qbdi train --corpus {chorales|essen|PATH} --out MODEL_DIR [--meter {any|N/D}] [--epochs N] [--beta B]
               [--steps-per-quarter {4|12}] [--seed S] [--hidden-dim H] [--latent-dim L] [--gamma G] [--force] [--quiet]
               [--workers N] [--stream | --memory-budget SIZE] [--devices N] [--max-eval-frames N]

Large corpora (README, "Training on a large corpus"): the corpus is parsed by ``--workers``
processes into a sharded, incremental store (:mod:`qbdi_utils.shards`; a second run parses only new
or changed files). Training holds the frames in memory unless they would exceed ``--memory-budget``
(default: half of the machine's memory) or ``--stream`` is given: then they are streamed from the
shards through tf.data (:mod:`qbdi_utils.training.stream`) and each held-out set is capped at
``--max-eval-frames`` frames of whole pieces. ``--devices N`` trains data-parallel on N local GPUs,
or N logical CPU devices when there is no GPU (MirroredStrategy, :mod:`qbdi_utils.training.devices`); with
``TF_CONFIG`` set it trains as one worker of several (MultiWorkerMirroredStrategy) and only the
chief saves.

Prints progress (corpus parsing, epochs) on stderr, a short table of the corpus files it skipped
(file, reason), the transposition it applied (every piece moved to tonic C: how many by how many
semitones), and, at the end, the validation numbers (on which the decoding threshold was
chosen) and the held-out test numbers: rate R, distortion D (nats per frame) and note F1.

MODEL_DIR is written as a whole (:meth:`~qbdi_utils.model.StyleVAE.save` stages it beside the
destination and swaps it in), with ``skipped.csv`` (file, reason) inside it: an interrupted or
failed run leaves the old model as it was. An existing MODEL_DIR is never replaced without
``--force``; that check, and whether MODEL_DIR's folder is writable, happen before the corpus is
loaded. A loss that stops being finite (e.g. ``--beta inf``) ends training with one error line and
saves nothing.
"""

from __future__ import annotations

import os
import sys

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import files, training
from qbdi_utils import shards as shards_mod
from qbdi_utils.cli import checks, corpus_options, options, values
from qbdi_utils.cli.values import MAX_SEED, whole_number
from qbdi_utils.cli.train_report import SKIPPED_FILE, corpus_lines, model_lines
from qbdi_utils.errors import OptionError
from qbdi_utils.model import PRESETS
from qbdi_utils.training import devices, stream

__all__ = ["MAX_DEVICES", "MAX_EPOCHS", "MAX_UNITS", "MAX_WORKERS", "add_parser", "run_train"]

MAX_EPOCHS = 100_000
"""Largest --epochs (the paper's model needs 100)."""
MAX_UNITS = 10_000
"""Largest --hidden-dim / --latent-dim (10,000 hidden units already take 200 MB of weights)."""
MAX_WORKERS = 512
"""Largest --workers (parser processes)."""
MAX_DEVICES = 64
"""Largest --devices (local GPUs or logical CPU devices)."""

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
    corpus_options.add_corpus(p, required=True, help="'chorales' (music21's Bach chorales), 'essen' (German folk songs "
                       "from music21's Essen collection) or a folder of .mid files / one .mid file")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model to")
    corpus_options.add_grid(p)
    corpus_options.add_meter(p, default="any", help="'any' (the default) keeps every meter, each bar its own frame "
                      "(padded, or split at its beats when longer than 4 quarters); --meter 4/4 keeps only 4/4 pieces")
    p.add_argument("--epochs", type=whole_number("--epochs", 1, MAX_EPOCHS), default=paper.epochs, metavar="N",
                   help=f"passes over the training frames (default {paper.epochs})")
    p.add_argument("--beta", type=values.nonnegative_float("--beta"), default=paper.beta, help=BETA_HELP)
    options.add_seed(p, help=f"seed of weights, noise, shuffling, split, 0..{MAX_SEED} (default 0)",
                     default=paper.seed)
    p.add_argument("--hidden-dim", type=whole_number("--hidden-dim", 1, MAX_UNITS), default=paper.hidden_dim,
                   metavar="H", help=f"hidden layer size (default {paper.hidden_dim})")
    p.add_argument("--latent-dim", type=whole_number("--latent-dim", 1, MAX_UNITS), default=paper.latent_dim,
                   metavar="L", help=f"latent components (default {paper.latent_dim})")
    p.add_argument("--gamma", type=values.nonnegative_float("--gamma"), default=paper.gamma, metavar="G",
                   help="weight of the predictive term G*CE(x_{t+1} | z_t) in nats per frame (default 0 "
                   "= the paper's VAE, no head); G > 0 adds a predictor head latent -> hidden -> "
                   "next bar (PAPER.md section 8)")
    options.add_force(p, help="overwrite an existing MODEL_DIR")
    p.add_argument("--workers", type=whole_number("--workers", 1, MAX_WORKERS), default=None, metavar="N",
                   help=f"processes parsing the corpus (default: the {shards_mod.default_workers()} cores "
                   "available); parsed files are kept in a sharded cache, so a second run parses only "
                   "new or changed files")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stream", action="store_true",
                      help="stream the frames from the on-disk shards (tf.data) instead of holding them "
                      "in memory, whatever their size")
    mode.add_argument("--memory-budget", type=lambda v: values.parse_size("--memory-budget", v), default=None,
                      metavar="SIZE",
                      help="stream when in-memory training would need more than SIZE (e.g. 8G, 500M; "
                      "about 32 KB per bar; default: half of this machine's memory)")
    p.add_argument("--devices", type=whole_number("--devices", 1, MAX_DEVICES), default=1, metavar="N",
                   help="train data-parallel on N local GPUs, or N logical CPU devices without a GPU "
                   "(same global batch; default 1). With TF_CONFIG set: one worker of several")
    p.add_argument("--max-eval-frames", type=whole_number("--max-eval-frames", 1), default=None, metavar="N",
                   help="cap each held-out set (validation, test) at N frames of whole pieces "
                   f"(default: no cap in memory, {training.STREAM_EVAL_FRAMES} when streaming)")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    """Handler of ``qbdi train``; returns the exit status.

    Raises:
        OutputExistsError: --out is a non-empty folder and --force was not given.
        FileSystemError: --out is a file, or its folder cannot be written (checked before the
            corpus loads), or the save fails (the old model then stays as it was).
        OptionError: an option out of range, a corpus with too few frames, or a loss that stopped
            being finite (TrainingDivergedError; nothing is saved).
        CorpusError: the corpus cannot be read.
    """
    out = checks.check_out_dir(args.out, force=args.force)
    corpus = corpus_mod.load_corpus(args.corpus, progress=True, workers=args.workers, in_memory=False,
                                    meter=args.meter, spec=corpus_options.grid_spec(args))
    print(*corpus_lines(corpus), sep="\n", file=sys.stderr)
    if corpus.n_frames < 3:
        raise OptionError(f"corpus {args.corpus} has {corpus.n_frames} frame(s); need at least 3 "
                          "(training, validation and test)")
    streaming = args.stream or stream.should_stream(corpus.n_frames, corpus.frame_size, args.memory_budget)
    if streaming:
        print(f"streaming {corpus.n_frames} frames from {len(corpus.shard_sizes)} shards", file=sys.stderr)
        data, groups = corpus, None
    else:
        data, groups = corpus.to_arrays()
    devs = args.devices if args.devices > 1 or os.environ.get("TF_CONFIG") else None
    model, _ = training.train(data, spec=corpus.spec, groups=groups, stream=streaming or None,
                              max_eval_frames=args.max_eval_frames, devices=devs, hidden_dim=args.hidden_dim,
                              latent_dim=args.latent_dim, epochs=args.epochs, beta=args.beta, seed=args.seed,
                              gamma=args.gamma, progress=True)
    if not devices.is_chief():
        print("trained as a non-chief worker: the chief saves the model", file=sys.stderr)
        return 0
    training.record_corpus(model, args.corpus, corpus)
    rows = [{"file": str(name), "reason": str(reason)} for name, reason in corpus.skipped]
    model.save(out, force=args.force,
               extra=lambda stage: files.write_csv(rows, stage / SKIPPED_FILE, columns=["file", "reason"]))
    print(*model_lines(model, out, args.gamma), sep="\n")
    return 0
