"""The run-time profile of the notebooks: how much of a costly grid a run computes.

One environment variable, ``QBDI_PROFILE``, names the profile (the Makefile sets it):

=========  ==================================================================================
``ci``     ``make test``: the smallest run that executes every cell (minutes on 2 cores)
``quick``  ``make reproduce`` and the default: every figure, in about a fifth of the full time
``full``   ``make reproduce PROFILE=full``: the grid the notebook's verdicts are drawn from
=========  ==================================================================================

A notebook reads it once, in its parameters cell, and picks its sizes with :func:`choose`; checked
cells (``# NBVAL_CHECK_OUTPUT``) print only what holds in every profile.

Imports: errors. Used in: notebooks/06_predictive_training.ipynb.
"""

from __future__ import annotations

import os

from qbdi_utils.errors import OptionError

__all__ = ["DEFAULT_PROFILE", "ENV_VAR", "PROFILES", "choose", "current"]

#: the profiles, smallest first.
PROFILES = ("ci", "quick", "full")
#: the profile of a run that does not set one (a notebook opened by hand, plain ``make reproduce``).
DEFAULT_PROFILE = "quick"
#: the environment variable that names the profile.
ENV_VAR = "QBDI_PROFILE"


def current() -> str:
    """The profile of this run: ``QBDI_PROFILE`` (lower-cased), or :data:`DEFAULT_PROFILE` if unset or empty.

    Returns:
        one of :data:`PROFILES`.

    Raises:
        OptionError: ``QBDI_PROFILE`` names no profile.

    Used in: notebook 06's parameters cell (through :func:`choose`).
    """
    name = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_PROFILE
    if name not in PROFILES:
        raise OptionError(f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} names no profile; use one of "
                          f"{', '.join(PROFILES)} (e.g. make reproduce PROFILE=full)")
    return name


def choose(*, ci, quick, full, profile: str | None = None):
    """The value given for the current profile (or for ``profile``).

    Args:
        ci, quick, full: the value of each profile.
        profile: a profile name; None = :func:`current`.

    Returns:
        The value of that profile.

    Raises:
        OptionError: an unknown profile.

    Used in: notebook 06's parameters cell.
    """
    name = current() if profile is None else str(profile)
    if name not in PROFILES:
        raise OptionError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return {"ci": ci, "quick": quick, "full": full}[name]
