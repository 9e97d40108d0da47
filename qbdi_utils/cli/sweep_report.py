"""What ``qbdi sweep`` says of the paper's claims: one verdict line per claim, with its numbers.

Imports: claims, harmony. Used in: cli/sweep.py.
"""

from __future__ import annotations

from qbdi_utils import claims, harmony

__all__ = ["VERDICT_BITS", "verdict_lines"]

VERDICT_BITS = 256
"""The budget of the "breaks away" claim (the paper's Fig. 3)."""


def verdict_lines(model, query, rows, pieces, mode: str, k: int) -> str:
    """The paper's five claims, each ``yes`` / ``partly`` / ``NO`` with its numbers, one per line.

    Args:
        model: the StyleVAE.
        query: the query Piece as the sweep heard it (in the corpus's key with ``--key corpus``).
        rows: the sweep's claims rows (:func:`qbdi_utils.claims.claims_sweep`, with fidelity).
        pieces: {(bits or None, seed): Piece} of the sweep.
        mode: the statistics mode.
        k: seeds per rate.

    Returns:
        One line per claim (:func:`qbdi_utils.claims.claim_verdicts`), joined by newlines.
    """
    spec, off, sigs = model.spec, query.bar_offset_steps, list(query.time_signatures)
    q_chroma = claims.bar_chroma(query.roll, spec, off, sigs)
    breaks = claims.break_away(q_chroma, claims.bar_chroma(pieces[(None, 0)].roll, spec, off, sigs),
                               [claims.bar_chroma(pieces[(VERDICT_BITS, s)].roll, spec, off, sigs) for s in range(k)])
    zero = claims.zero_bit_triads(model, query, (mode,))
    tonic = harmony.TRIAD_NAMES[harmony.tonic_triad(harmony.chroma(query.roll, spec))]
    verdicts = claims.claim_verdicts(rows, breaks, zero, tonic, low_bits=VERDICT_BITS, mode=mode)
    return "\n".join(f"claim: {v['claim']}: {v['verdict']} ({v['numbers']})" for v in verdicts)
