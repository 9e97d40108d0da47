"""Generators of hostile inputs for tests/test_hostile.py (raw bytes, written by hand, no mido).

Each function returns the bytes of a file; nothing here is committed as a binary.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

__all__ = ["vlq", "chunk", "smf", "track", "note_track", "TIME_SIG_ZERO", "slow_tempo_midi",
           "note_flood_midi", "many_tracks_midi", "unknown_chunk_midi", "time_sig_zero_midi",
           "npz_bomb", "zip_members"]

#: Time signature with numerator 0 (meta FF 58 04 00 02 18 08), the issue's traceback.
TIME_SIG_ZERO = b"\xff\x58\x04\x00\x02\x18\x08"


def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def chunk(kind: bytes, body: bytes) -> bytes:
    """An SMF chunk: 4-byte type, 32-bit big-endian length, body."""
    return kind + struct.pack(">I", len(body)) + body


def smf(tracks: list[bytes], *, fmt: int = 1, tpb: int = 480, n_tracks: int | None = None,
        before: bytes = b"") -> bytes:
    """A Standard MIDI File of MTrk bodies ``tracks``; ``before`` goes between header and tracks."""
    n = len(tracks) if n_tracks is None else n_tracks
    head = chunk(b"MThd", struct.pack(">HHH", fmt, n, tpb))
    return head + before + b"".join(chunk(b"MTrk", t) for t in tracks)


def track(events: list[tuple[int, bytes]]) -> bytes:
    """An MTrk body from (delta ticks, event bytes), with end of track appended."""
    return b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"


def note_track(n_bars: int = 4, tpb: int = 480, prefix: list[tuple[int, bytes]] = ()) -> bytes:
    """A C major triad held for each bar of 4/4, after the ``prefix`` events."""
    ev = list(prefix)
    for _ in range(n_bars):
        ev += [(0, b"\x90\x3c\x50"), (0, b"\x90\x40\x50"), (0, b"\x90\x43\x50"),
               (4 * tpb, b"\x80\x3c\x00"), (0, b"\x80\x40\x00"), (0, b"\x80\x43\x00")]
    return track(ev)


def time_sig_zero_midi(n_bars: int = 4) -> bytes:
    """Notes under a 0/4 time signature."""
    return smf([note_track(n_bars, prefix=[(0, TIME_SIG_ZERO)])])


def slow_tempo_midi(n_bars: int) -> bytes:
    """Tempo 0xFFFFFF microseconds per quarter (3.58 bpm), ``n_bars`` bars of triads."""
    return smf([note_track(n_bars, prefix=[(0, b"\xff\x51\x03\xff\xff\xff")])])


def note_flood_midi(n_notes: int) -> bytes:
    """``n_notes`` short notes with running status (about 8 bytes per note)."""
    body = bytearray(b"\x00\x90\x3c\x50")
    one = b"\x01\x3c\x00\x00\x3c\x50"  # off after 1 tick, then on again, running status 0x90
    body += one * (n_notes - 1) + b"\x01\x3c\x00\x00\xff\x2f\x00"
    return smf([bytes(body)], fmt=0)


def many_tracks_midi(n_tracks: int) -> bytes:
    """``n_tracks`` MTrk chunks (the header's count above 32,767 when asked), notes in the last."""
    empty = b"\x00\xff\x2f\x00"
    return smf([empty] * (n_tracks - 1) + [note_track(2)])


def unknown_chunk_midi() -> bytes:
    """A legal file with a vendor chunk ``XFIH`` between the header and the track."""
    return smf([note_track(2)], before=chunk(b"XFIH", b"\x00" * 10))


def zip_members(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive from (name, stored bytes, method, crc32, uncompressed size), written by hand."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        n = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                           len(n), 0) + n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(n), 0, 0, 0, 0, 0, offset) + n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      len(out), 0)
    return bytes(out + central + end)


def npz_bomb(shapes: dict[str, tuple], bomb: str, expanded_bytes: int) -> bytes:
    """An .npz whose member ``bomb`` is a float32 vector of ``expanded_bytes`` zeros (under 4 GiB)
    deflated to about a thousandth of that; the other members are zeros of the given shapes.

    The deflate stream is one compressed MiB of zeros repeated (each block is flushed with
    Z_FULL_FLUSH, so it decompresses alone), so making a GB-sized bomb takes a second."""
    from numpy.lib import format as npy_format

    members = []
    for name, shape in shapes.items():
        buf = io.BytesIO()
        if name != bomb:
            np.save(buf, np.zeros(shape, np.float32))
            raw = buf.getvalue()
            members.append((f"{name}.npy", raw, 0, zlib.crc32(raw), len(raw)))
            continue
        n = expanded_bytes // 4
        npy_format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
        head = buf.getvalue()
        mib = bytes(1 << 20)
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream = bytearray(z.compress(head) + z.flush(zlib.Z_FULL_FLUSH))
        block = z.compress(mib) + z.flush(zlib.Z_FULL_FLUSH)
        whole, rest = divmod(n * 4, len(mib))
        crc = zlib.crc32(head)
        for _ in range(whole):
            crc = zlib.crc32(mib, crc)
        stream += block * whole
        stream += z.compress(mib[:rest]) + z.flush(zlib.Z_FINISH)
        crc = zlib.crc32(mib[:rest], crc)
        members.append((f"{name}.npy", bytes(stream), 8, crc, len(head) + n * 4))
    return zip_members(members)
