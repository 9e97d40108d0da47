"""``qbdi evaluate``: a trained model's test-piece R, D, note F1 and probe information I_probe(Z;Y).

    qbdi evaluate --model MODEL_DIR [--corpus {chorales|essen|PATH}] [--seed S] [--json]

Measures on the corpus the model records (``qbdi train`` saves it), or on ``--corpus``; a recorded
corpus that is gone is one line naming it and ``--corpus``, before anything is parsed. Splits the
corpus as the model's training did (its split seed and fractions), so on the training corpus the test
pieces are unseen. Prints R, D (nats per frame), note F1 at the model's threshold,
and at lag 1 (next bar), mean and sd over 3 probe seeds: I_probe, a fresh probe of the predictor
head's family fitted on posterior samples of training pieces and scored on posterior samples of
test pieces, minus the cell-wise marginal; I_NCE, the contrastive lower bound of I(Z;Y) with that
probe as critic (at most log K); and the trained head's own held-out value (see
qbdi_utils.predictive for what each does and does not bound).
"""

from __future__ import annotations

import json
import sys

from qbdi_utils import predictive
from qbdi_utils.cli import corpus_options, model_corpus, options
from qbdi_utils.model import StyleVAE

__all__ = ["add_parser", "run_evaluate"]


def add_parser(subparsers) -> None:
    """Register the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="measure a model on held-out pieces: R, D, note F1, predictive information bounds of I(Z;Y)",
        description="Rate R, distortion D (nats per frame), note F1 and, at lag 1 (next bar), the "
        "probe information I_probe, the InfoNCE bound I_NCE (<= log K) and the trained head's value, in "
        "nats per frame, on the test pieces of the model's own split of the corpus, mean and sd over "
        "probe seeds S, S+1, S+2. The probe (latent -> hidden -> frame logits, the predictor head's "
        "family) is fitted afresh on posterior samples of the training pieces and scored on posterior samples.",
    )
    options.add_model(p, required=True, help="a directory written by `qbdi train`")
    corpus_options.add_corpus(p, help="measure on this corpus: 'chorales', 'essen' or a folder of .mid files / "
                       "one .mid file (default: the corpus the model was trained on)")
    options.add_seed(p, help="first of the 3 probe seeds (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    """Handler of ``qbdi evaluate``; returns the exit status.

    Raises:
        ModelError: --model is not a readable model directory.
        CorpusError: the corpus is gone or cannot be read.
        OptionError: the corpus is too small to split (--seed is checked by the parser).
    """
    model = StyleVAE.load(args.model)
    seed = args.seed
    source, _ = model_corpus.corpus_source(model, args.corpus)
    corpus = model_corpus.load(model, args.corpus, progress=not args.json)
    r = predictive.evaluate(model, corpus.frames, corpus.piece_index, seeds=(seed, seed + 1, seed + 2))
    if args.json:
        print(json.dumps({"model": str(args.model), "corpus": source, **r}))
        return 0
    print(f"{args.model}: gamma = {r['gamma']}, beta = {r['beta']}; {r['n_test_frames']} {r['held_out_set']} "
          f"frames of {source}{'' if r['same_corpus'] else ' (not the corpus the model was trained on)'}, "
          f"probes fitted on {r['n_train_frames']} training frames", file=sys.stderr)
    print(f"R = {r['r_nats']:.2f} nats/frame, D = {r['d_nats']:.2f} nats/frame, note F1 = {r['f1']:.3f} "
          f"at threshold {r['threshold']:.2f}")
    print(f"lag 1 (next bar), mean +- sd over probe seeds: I_probe = {r['i_probe_lag1_nats']:.2f} +- "
          f"{r['i_probe_lag1_sd']:.2f}, I_NCE = {r['i_nce_lag1_nats']:.2f} +- {r['i_nce_lag1_sd']:.2f} "
          f"(K = {r['nce_candidates']}, log K = {r['nce_log_k']:.2f}), head = {r['head_lag1_nats']:.2f} nats/frame")
    return 0
