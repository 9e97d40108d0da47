"""Tests of the typed options layer (qbdi_utils.cli.options) and of the one loss (model.objective)."""

from __future__ import annotations

import inspect

import pytest

from qbdi_utils.cli import main
from qbdi_utils.cli import options, values
from qbdi_utils.errors import OptionError


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_is_bounded_in_every_subcommand_that_takes_one(capsys, tmp_path):
    # evaluate --seed had no upper bound; every --seed now has the one MAX_SEED, checked while parsing
    too_big = values.MAX_SEED + 1
    for argv in (["evaluate", "--model", tmp_path, "--seed", too_big],
                 ["improvise", "--query", tmp_path / "q.mid", "--bits", "8", "--out", tmp_path / "o.mid",
                  "--seed", too_big],
                 ["train", "--corpus", "chorales", "--out", tmp_path / "m", "--seed", too_big]):
        code, _, err = _run(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"qbdi {argv[0]}: error: --seed") and "4294967295" in lines[0]
    assert not (tmp_path / "m").exists()


def test_converters_refuse_with_the_option_named():
    with pytest.raises(OptionError, match=r"^--epochs 0 must be at least 1$"):
        values.whole_number("--epochs", 1)("0")
    with pytest.raises(OptionError, match="--bits 1000001 is more than 1000000"):
        options.bits_option("1000001")
    assert options.bits_option("full") is None and options.bits_option(" 12 ") == 12
    with pytest.raises(OptionError, match="--stats 'nope' is not one of query, corpus, posterior, prior"):
        options.stats_option("nope")
    with pytest.raises(OptionError, match="--gamma -1 must be a finite number >= 0"):
        values.nonnegative_float("--gamma")("-1")
    assert values.parse_size("--memory-budget", "2K") == 2048


def test_continuity_has_one_default():
    from qbdi_utils import navigate

    assert navigate.DEFAULT_CONTINUITY == 0.8
    for fn in (navigate.navigate, navigate.navigate_batch):
        assert inspect.signature(fn).parameters["continuity"].default == 0.8
    parser = __import__("qbdi_utils.cli", fromlist=["build_parser"]).build_parser()
    args = parser.parse_args(["navigate", "--query", "q.mid", "--source", "query", "--out", "o.mid"])
    assert args.continuity is None  # the handler then takes navigate.DEFAULT_CONTINUITY


def test_objective_is_d_plus_beta_r_plus_gamma_p():
    from qbdi_utils.model import objective

    assert objective(2.0, 3.0, beta=0.5) == 3.5
    assert objective(2.0, 3.0, 5.0, beta=0.5, gamma=0.25) == 4.75
    assert objective(2.0, 3.0, None, beta=1.0, gamma=10.0) == 5.0  # no head: gamma does not enter
