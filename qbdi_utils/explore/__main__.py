"""``python -m qbdi_utils.explore [--model DIR] [--port N]``: the explorer's web server
(:func:`qbdi_utils.explore.server.main`), what ``make explore`` runs.

Imports: explore.server.
Used in: ``make explore``, tests/test_explore_browser.py, benchmarks/bench_explore.py --startup.
"""

from qbdi_utils.explore.server import main

__all__: list[str] = []

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
