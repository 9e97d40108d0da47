"""Tests of qbdi_utils.report: rounding to significant digits and checked-cell tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qbdi_utils import report


@pytest.mark.parametrize("x, want", [
    (0.62612, 0.626), (0.6265001, 0.627), (43.14, 43.1), (72.2, 72.2), (12345.6, 12300.0),
    (0.000123456, 0.000123), (-2.71828, -2.72), (0.99961, 1.0), (9.9951, 10.0), (0.0, 0.0),
    (-0.0, 0.0), (np.float32(0.1), 0.1), (3, 3), (np.int64(7), 7), (True, True), ("a", "a"),
])
def test_sig_three_digits(x, want):
    got = report.sig(x)
    assert got == want and type(got) is type(want)


def test_sig_nan_inf_and_bad_digits():
    assert math.isnan(report.sig(float("nan"))) and report.sig(float("inf")) == float("inf")
    with pytest.raises(ValueError):
        report.sig(1.0, 0)


def test_small_perturbations_below_the_third_digit_do_not_change_the_text():
    base = [0.8941, 62.04, 0.1351]
    noisy = [v * (1 + 1e-6) for v in base]
    assert report.table([dict(zip("abc", base))]) == report.table([dict(zip("abc", noisy))])
    # a change in the third digit does
    assert report.table([{"a": 0.894}]) != report.table([{"a": 0.895}])


def test_rounded_nested_and_table_layout():
    r = report.rounded({"x": np.array([1.23456, 2.0]), "y": (0.333333, "s"), "z": {"w": 1e-7 * 1.23456}})
    assert r == {"x": [1.23, 2.0], "y": (0.333, "s"), "z": {"w": 1.23e-07}}
    t = report.table({"full": {"bits": None, "F1": 0.89312}, "64": {"bits": 64, "F1": 0.5}})
    lines = t.splitlines()
    assert lines[0].split() == ["bits", "F1"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["full", "None", "0.893"] and lines[3].split() == ["64", "64", "0.5"]


def test_bands_text_stable_inside_and_loud_outside():
    bands = {"R (nats)": (43.0, 1.5), "F1": (0.894, 0.01)}
    a = report.check_bands({"R (nats)": 42.87, "F1": 0.8953}, bands)
    b = report.check_bands({"R (nats)": 43.9, "F1": 0.889}, bands)
    assert a == b == "R (nats): 43.0 ± 1.5\nF1: 0.894 ± 0.01"
    c = report.check_bands({"R (nats)": 45.0, "F1": float("nan")}, bands)
    assert c.splitlines()[0] == "R (nats): OUT OF BAND: 45.0 (expected 43.0 ± 1.5)"
    assert "OUT OF BAND" in c.splitlines()[1]
    assert "OUT OF BAND" in report.check_bands({}, bands)
    assert report.within(1.0, 1.5, 0.5) and not report.within(0.99, 1.5, 0.5)
