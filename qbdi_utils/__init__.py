"""qbdi_utils: the numeric work behind the query-based deep improvisation notebooks.

One module per stage; notebook N calls mostly module N (see README.md). Heavy modules (Keras,
music21, vmo) are imported on first use, so ``import qbdi_utils`` stays fast.
"""

__version__ = "0.1.0"
