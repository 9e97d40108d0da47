"""``python -m qbdi_utils.cli ...``: the ``qbdi`` command without its console script (e.g. in a
fresh process with a chosen interpreter, as the multi-worker recipe and the tests start it)."""

from __future__ import annotations

import sys

from qbdi_utils.cli import main

__all__: list[str] = []

sys.exit(main())
