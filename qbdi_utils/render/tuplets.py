"""How the steps of one bar are written as note values: duple values on the beats, 3:2 triplet groups off them.

A span [start, end) of steps inside one bar (``spb`` steps per quarter beat, ``spf`` per bar) is cut into
pieces each writable as one (possibly dotted) note value. On a grid with triplets (``spb`` = 3 * 2**n,
e.g. 12: 16ths and triplets; :func:`has_triplets`) the beats whose notes or rests start or end off the
duple grid become triplet groups (:func:`triplet_windows`: half-note triplets over four beats,
quarter-note triplets over two, eighth-note triplets in a beat, smaller groups inside a beat), and
:func:`split_regions` cuts a note into duple pieces and pieces of those groups. A 16th-note grid gives
no groups and the duple split alone, as it always was.

Imports: nothing of the package. Used in: :mod:`qbdi_utils.render.notation` (``roll_to_stream``).
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["has_triplets", "split_regions", "triplet_windows"]


def _notatable_steps(spb: int) -> list[int]:
    """Durations in steps writable as one (possibly dotted) note value, longest first."""
    quarters = (4.0, 3.0, 2.0, 1.5, 1.0, 0.75, 0.5, 0.25)
    steps = {int(q * spb) for q in quarters if (q * spb) == int(q * spb) and q * spb >= 1}
    return sorted(steps | {1}, reverse=True)


def _split_in_bar(start: int, end: int, spb: int, spf: int) -> list[tuple[int, int]]:
    """Cut [start, end) (steps within one bar) into notatable, beat-respecting pieces.

    An off-beat start is first filled up to the next beat; from a beat the longest notatable value
    that fits is taken, except that values longer than a beat start only on beat 1 or 3 (no half
    note on beat 2). spb = steps per beat, spf = steps per bar.
    """
    notatable = _notatable_steps(spb)
    pieces = []
    s = start
    while s < end:
        if s % spb:
            limit = min(end, (s // spb + 1) * spb) - s
            d = next(x for x in notatable if x <= limit)
        else:
            rem = end - s
            d = next(x for x in notatable if x <= rem and (x <= spb or s % (2 * spb) == 0))
        pieces.append((s, s + d))
        s += d
    return pieces


# --------------------------------------------------------------------------------------------------
# Triplets (grids of 3 * 2**n steps per quarter, e.g. 12: 16ths and triplets)

# A triplet group lasting this many quarters is written as 3:2 of this note type (3 in the time of 2).
_TRIPLET_NORMAL = {Fraction(4): "half", Fraction(2): "quarter", Fraction(1): "eighth", Fraction(1, 2): "16th",
                   Fraction(1, 4): "32nd", Fraction(1, 8): "64th"}


def has_triplets(spb: int) -> bool:
    """Whether a grid of ``spb`` steps per quarter holds triplets: spb = 3 * 2**n (3, 6, 12, 24, ...).

    Then a position is on the duple grid exactly when it is a multiple of 3 steps, and every step
    count inside a triplet group is a (dotted) note value under 3:2 or a sum of them.
    """
    q = spb // 3
    return spb % 3 == 0 and q & (q - 1) == 0


def triplet_windows(bounds, spf: int, spb: int) -> list[tuple[int, int, str]]:
    """Where one voice of one bar needs triplet groups: [(start, end, note type of the 3:2)], steps of the bar.

    ``bounds`` are the steps (0 < x < spf) where a note or rest of the voice starts or ends; a bound
    is off the duple grid when it is not a multiple of 3 steps. From each beat (a quarter), the
    widest group of 4 beats (half-note triplets, from beat 1 or 3), 2 beats (quarter-note triplets)
    or 1 beat (eighth-note triplets) is taken that fits the bar and whose bounds inside all lie on
    its thirds, at least one of them off the duple grid. Otherwise the beat is covered by
    :func:`_triplet_cover`: duple where it can be, smaller groups where the odd bounds are (e.g. an
    eighth and three triplet 16ths). A last part of a bar shorter than a beat is covered likewise
    when it is a half or a quarter of a beat. Empty when the grid holds no triplets
    (:func:`has_triplets`), so a 16th-note grid is written as before.
    """
    if not has_triplets(spb):
        return []
    bounds = sorted(set(bounds))
    windows = []
    p = 0
    while p < spf:
        for k in (4, 2, 1):
            width = k * spb
            rel = [x - p for x in bounds if p < x < p + width]
            if p + width <= spf and (k != 4 or p % (2 * spb) == 0) and any(x % 3 for x in rel) \
                    and not any(x % (width // 3) for x in rel):
                windows.append((p, p + width, _TRIPLET_NORMAL[Fraction(k)]))
                p += width
                break
        else:
            end = min(p + spb, spf)
            if Fraction(end - p, spb) in _TRIPLET_NORMAL:
                windows += _triplet_cover(p, end, bounds, spb)
            p = end
    return windows


def _triplet_cover(lo: int, hi: int, bounds, spb: int) -> list[tuple[int, int, str]]:
    """Triplet groups inside the span [lo, hi) of 3 * 2**n steps (a beat or a part of it), smallest
    first: none when no bound inside is off the duple grid; the span itself when every bound inside
    lies on its thirds; its two halves in turn when the middle is a bound (or the note there starts
    and ends on the duple grid) and a half still has 3 * 2**n steps; else the span itself, with finer
    values inside (e.g. a triplet 32nd after a dotted triplet 16th)."""
    width = hi - lo
    rel = [x - lo for x in bounds if lo < x < hi]
    if not any(x % 3 for x in rel):
        return []
    if not any(x % (width // 3) for x in rel):
        return [(lo, hi, _TRIPLET_NORMAL[Fraction(width, spb)])]
    mid = lo + width // 2
    if width % 2 == 0 and (width // 2) % 3 == 0:
        before = max((x for x in bounds if x < mid), default=0)
        after = min((x for x in bounds if x > mid), default=mid)
        if mid in bounds or (before % 3 == 0 and after % 3 == 0):
            return _triplet_cover(lo, mid, bounds, spb) + _triplet_cover(mid, hi, bounds, spb)
    return [(lo, hi, _TRIPLET_NORMAL[Fraction(width, spb)])]


def _power_of_two(x: Fraction) -> bool:
    """Whether ``x`` is 2**n for an integer n (..., 1/4, 1/2, 1, 2, ...)."""
    return x.numerator & (x.numerator - 1) == 0 and x.denominator & (x.denominator - 1) == 0


def _triplet_steps(spb: int, width: int) -> list[int]:
    """Step counts writable as one (possibly dotted) note under 3:2 in a group of ``width`` steps,
    longest first: n steps are written as a value of n / spb * 3/2 quarters, which must be a power
    of two (plain) or 3/2 of one (dotted)."""
    written = (Fraction(3 * n, 2 * spb) for n in range(1, width + 1))
    return sorted((int(w * 2 * spb / 3) for w in written if _power_of_two(w) or _power_of_two(w * Fraction(2, 3))),
                  reverse=True)


def _split_in_triplet(start: int, end: int, window: tuple[int, int, str], spb: int) -> list[tuple[int, int]]:
    """Cut [start, end) (steps of the bar, inside one triplet ``window``) into notes of the group.

    The group's thirds play the part of beats in :func:`_split_in_bar`: an off-third start is filled
    up to the next third, from a third the longest writable value that fits is taken.
    """
    w0, w1, _ = window
    third = (w1 - w0) // 3
    writable = _triplet_steps(spb, w1 - w0)
    pieces = []
    s = start
    while s < end:
        rel = s - w0
        limit = min(end, w0 + (rel // third + 1) * third) - s if rel % third else end - s
        d = next(x for x in writable if x <= limit)
        pieces.append((s, s + d))
        s += d
    return pieces


def split_regions(start: int, end: int, windows, spb: int, spf: int) -> list[tuple[int, int, str | None]]:
    """Cut [start, end) (steps of one bar) into notatable pieces (a, b, tuplet note type or None):
    duple stretches as :func:`_split_in_bar`, the parts inside triplet ``windows`` as
    :func:`_split_in_triplet`. Without windows this is :func:`_split_in_bar` exactly."""
    if not windows:
        return [(a, b, None) for a, b in _split_in_bar(start, end, spb, spf)]
    pieces = []
    s = start
    for w in windows:
        w0, w1, normal = w
        if w1 <= s or w0 >= end:
            continue
        if s < w0:
            pieces += [(a, b, None) for a, b in _split_in_bar(s, w0, spb, spf)]
            s = w0
        stop = min(end, w1)
        pieces += [(a, b, normal) for a, b in _split_in_triplet(s, stop, w, spb)]
        s = stop
    if s < end:
        pieces += [(a, b, None) for a, b in _split_in_bar(s, end, spb, spf)]
    return pieces
