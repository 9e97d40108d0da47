"""Every limit the package puts on its inputs, stated once, and the checks that enforce them.

A small input must not cost minutes and gigabytes, and no read may hang. Each limit below is checked
before the expensive work it protects; when one is hit the caller gets the project's user-error
exception (:mod:`qbdi_utils.errors`), whose message is one line naming the file, the limit and how
to raise it, so the ``qbdi`` command prints one line and exits 2.

=========================  ===================================  ==================================
limit                      default                              raise it with
=========================  ===================================  ==================================
MIDI file size             8 MiB                                ``QBDI_MAX_MIDI_BYTES``
MIDI messages per file     500,000 (counted while parsing)      ``QBDI_MAX_MIDI_MESSAGES``
model file size            1 GiB (weights.npz on disk, and the  ``QBDI_MAX_MODEL_BYTES``
                           arrays it expands to)
rendered audio length      600 s (computed before synthesis)   ``QBDI_MAX_AUDIO_SECONDS``
explorer kernels           4 live pages                         ``QBDI_EXPLORE_MAX_KERNELS``
tempo                      clamped to 20 ... 1000 bpm on read   (fixed)
time signature             numerator >= 1, denominator a power  (fixed)
                           of two, 1 ... 64
=========================  ===================================  ==================================

Why these values: the shipped Haydn query (155 bars, four voices) is 26 kB with 5,626 notes and
tempo events; 8 MiB and 500,000 messages are a hundred times a long, dense piece, and bound a parse
to about 3 s and 110 MB on the development machine (a flood of 2 million messages took 89 s and
0.9 GB before the limit). A model of the paper's layout is 10 MB; 1 GiB allows a hundred times wider
networks. Ten minutes of audio covers a long movement at its real tempo (the Haydn query lasts
5 min 10 s) and bounds one synthesis to about 40 s and 1.1 GB with the SoundFont engine on the
development machine (5 minutes: 18 s, 557 MB peak; the built-in synthesizer needs a third). The tempo range holds every marking from
larghissimo to the fastest prestissimo with room on both sides; MIDI's own range (3.6 bpm to 60
million bpm) only makes audio run away. Time signatures outside the check are not music (a zero
numerator divides by zero downstream).

Inputs that are not regular files (FIFOs, devices such as ``/dev/zero``, sockets) are refused before
a byte is read, and opening never blocks (:func:`open_regular`).

An environment variable must hold a positive whole number (``QBDI_MAX_AUDIO_SECONDS`` may have a
fraction); it is read at each check, so a running notebook can change it.

Used in: :mod:`qbdi_utils.pianoroll` (MIDI reading), :mod:`qbdi_utils.model.persist` (model loading),
:mod:`qbdi_utils.render.audio` (synthesis), :mod:`qbdi_utils.explore` and the ``qbdi`` command.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from qbdi_utils.errors import FileSystemError, ModelError, OptionError, QbdiError
from qbdi_utils.files import fs_error

__all__ = [
    "DEFAULTS", "MIN_TEMPO_BPM", "MAX_TEMPO_BPM", "MAX_DENOMINATOR", "MAX_NUMERATOR",
    "limit", "size_words", "exceeded", "open_regular", "read_regular", "check_regular",
    "check_count", "clamp_tempo", "valid_time_signature", "check_audio_seconds", "read_npz",
]

#: Default of every limit a user may raise, by its environment variable.
DEFAULTS: dict[str, float] = {
    "QBDI_MAX_MIDI_BYTES": 8 * 2**20,
    "QBDI_MAX_MIDI_MESSAGES": 500_000,
    "QBDI_MAX_MODEL_BYTES": 2**30,
    "QBDI_MAX_AUDIO_SECONDS": 600.0,
    "QBDI_EXPLORE_MAX_KERNELS": 4,
}

#: Tempi read from a MIDI file are clamped to this range (quarter notes per minute).
MIN_TEMPO_BPM = 20.0
MAX_TEMPO_BPM = 1000.0
#: Largest time-signature denominator accepted (a power of two, 1 ... 64).
MAX_DENOMINATOR = 64
#: Largest time-signature numerator (a MIDI data byte).
MAX_NUMERATOR = 255

_KIND = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def limit(name: str) -> float:
    """The current value of a limit: its environment variable when set, else :data:`DEFAULTS`.

    Args:
        name: one of the keys of :data:`DEFAULTS` (``"QBDI_MAX_MIDI_BYTES"``, ...).

    Returns:
        The limit (an int, except ``QBDI_MAX_AUDIO_SECONDS``, a float).

    Raises:
        OptionError: the variable is set to something that is not a positive number.
    """
    default = DEFAULTS[name]
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text) if isinstance(default, float) else int(text)
    except ValueError:
        value = None
    if value is None or not (value > 0 and math.isfinite(value)):
        kind = "number" if isinstance(default, float) else "whole number"
        raise OptionError(f"environment variable {name}={text!r} must be a positive {kind} "
                          f"(unset it for the default {default:g})")
    return value


def size_words(n: float) -> str:
    """A byte count in words: ``"8 MiB"``, ``"1.5 GiB"``, ``"512 bytes"``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def exceeded(what: str, value: str, name: str, suggestion: float) -> str:
    """The one-line message of a hit limit: what, the limit, and how to raise it.

    Args:
        what: the measured quantity in words (``"9.5 MiB of MIDI data"``).
        value: the limit in words (``"8 MiB"``).
        name: the environment variable that raises it.
        suggestion: a value of that variable that would allow this input.

    Returns:
        ``"<what> is more than the limit of <value>; set <name>=<suggestion> to allow it"``.
    """
    shown = f"{suggestion:g}" if isinstance(suggestion, float) else str(int(suggestion))
    return f"{what} is more than the limit of {value}; set {name}={shown} to allow it"


def open_regular(path: str | Path, error: type[QbdiError], what: str) -> int:
    """Open ``path`` for reading without blocking, refusing anything but a regular file.

    The file is opened with ``O_NONBLOCK`` (a FIFO does not wait for a writer) and checked with
    ``fstat`` on the open descriptor (so a name swapped between a check and the open changes
    nothing); the flag is then cleared.

    Args:
        path: the file.
        error: the exception class raised for a non-regular file (MidiFileError, ModelError, ...).
        what: what a regular file there should be, for the message ("a .mid file").

    Returns:
        An open file descriptor (the caller closes it).

    Raises:
        error: the path is a FIFO, a device, a socket or a folder.
        FileSystemError: the path cannot be opened (missing, permission, ...).
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing elsewhere
            raise error(f"is not a regular file; give {what}", p) from None
        raise fs_error(exc, p, "read") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KIND.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise error(f"is {kind}, not a regular file; give {what}", p)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular(path: str | Path, error: type[QbdiError], what: str, name: str | None = None) -> None:
    """Refuse ``path`` unless it is a regular file (see :func:`open_regular`) within a size limit.

    Nothing is read: this is the up-front check of an input the command reads later.

    Args:
        path: the file.
        error: the exception class.
        what: what the file should be, for the message.
        name: the size limit's environment variable (None: no size check).

    Raises:
        error: not a regular file, or larger than ``limit(name)``.
        FileSystemError: the path cannot be opened.
    """
    fd = open_regular(path, error, what)
    try:
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if name is not None and size > int(limit(name)):
        cap = int(limit(name))
        raise error(exceeded(f"the file's {size_words(size)}", size_words(cap), name, size), path)


def read_regular(path: str | Path, name: str, error: type[QbdiError], what: str) -> bytes:
    """The bytes of a regular file of at most ``limit(name)`` bytes.

    Args:
        path: the file.
        name: the size limit's environment variable (``"QBDI_MAX_MIDI_BYTES"``).
        error: the exception class for a non-regular or too-large file.
        what: what the file should be, for the messages ("a .mid file").

    Returns:
        The file's bytes (read in one go; a file growing while read is cut at the limit + 1 byte
        and refused).

    Raises:
        error: not a regular file, or larger than the limit.
        FileSystemError: the file cannot be read.
    """
    cap = int(limit(name))
    fd = open_regular(path, error, what)
    try:
        size = os.fstat(fd).st_size
        if size > cap:
            raise error(exceeded(f"the file's {size_words(size)}", size_words(cap), name, size), path)
        chunks, got = [], 0
        while got <= cap:
            block = os.read(fd, min(cap + 1 - got, 1 << 20))
            if not block:
                break
            chunks.append(block)
            got += len(block)
    except OSError as exc:
        raise fs_error(exc, path, "read") from None
    finally:
        os.close(fd)
    if got > cap:
        raise error(exceeded("the file (still growing)", size_words(cap), name, 2 * cap), path)
    return b"".join(chunks)


def check_count(count: int, name: str, what: str, path: str | Path | None,
                error: type[QbdiError]) -> None:
    """Raise ``error`` when ``count`` exceeds ``limit(name)`` (call it as the count grows).

    Args:
        count: the count so far.
        name: the limit's environment variable (``"QBDI_MAX_MIDI_MESSAGES"``).
        what: the counted things ("MIDI messages").
        path: the file, named in the message.
        error: the exception class.

    Raises:
        error: ``count`` is over the limit.
    """
    cap = int(limit(name))
    if count > cap:
        raise error(f"holds more than {cap:,} {what} (the limit); set {name}={10 * cap} to allow "
                    "more", path)


def clamp_tempo(bpm: float) -> float:
    """A tempo in quarter notes per minute clamped to [:data:`MIN_TEMPO_BPM`, :data:`MAX_TEMPO_BPM`]."""
    return float(min(max(float(bpm), MIN_TEMPO_BPM), MAX_TEMPO_BPM))


def valid_time_signature(numerator: int, denominator: int) -> bool:
    """Whether numerator/denominator is a time signature: 1 <= numerator <= 255, denominator a power
    of two in 1 ... :data:`MAX_DENOMINATOR`."""
    n, d = int(numerator), int(denominator)
    return 1 <= n <= MAX_NUMERATOR and 1 <= d <= MAX_DENOMINATOR and d & (d - 1) == 0


def check_audio_seconds(seconds: float, what: str = "the audio") -> None:
    """Refuse to synthesize more than ``limit("QBDI_MAX_AUDIO_SECONDS")`` seconds of audio.

    Args:
        seconds: the length the rendering would have, computed from steps and tempo.
        what: what is rendered, for the message (a file name or "the audio").

    Raises:
        OptionError: longer than the limit (one line, with the variable that raises it).
    """
    cap = float(limit("QBDI_MAX_AUDIO_SECONDS"))
    if not seconds <= cap:
        raise OptionError(exceeded(f"{what} would last {seconds:,.0f} s, which",
                                   f"{cap:g} s of audio", "QBDI_MAX_AUDIO_SECONDS",
                                   float(math.ceil(seconds))))


# ---------------------------------------------------------------------------------------------
# npz archives read member by member, each header checked before its data are expanded

def read_npz(path: str | Path, expected: dict[str, tuple[int, ...]], *, fix: str,
             where: str | Path | None = None) -> dict[str, np.ndarray]:
    """Read named float arrays of an ``.npz`` file, checking every header before any data.

    For each member ``NAME.npy`` the zip directory's uncompressed size and the ``.npy`` header
    (shape, dtype, read with :mod:`numpy.lib.format` from the member's stream, a few hundred bytes)
    are checked against ``expected`` first; only then are its data decompressed, and never more
    than the header announced. The file itself and the sum of the arrays are bounded by
    ``QBDI_MAX_MODEL_BYTES``. A zip bomb is refused after reading its directory and a header.

    Args:
        path: the .npz file.
        expected: member name (without ``.npy``) -> shape, in the order wanted.
        fix: what to do about a bad file, appended to messages ("retrain with `qbdi train --force`").
        where: the path named in messages (default ``path``).

    Returns:
        name -> array (little- or big-endian floats as stored, C order).

    Raises:
        ModelError: missing file or member, not a zip, a member of another shape or a non-float
            dtype, sizes that disagree or exceed the limit, truncated data.
        FileSystemError: the file cannot be read (permission, I/O error).
    """
    path = Path(path)
    where = path if where is None else Path(where)
    name_ = "QBDI_MAX_MODEL_BYTES"
    cap = int(limit(name_))

    def bad(words: str) -> ModelError:
        return ModelError(f"corrupt model directory: {path.name} {words}; {fix}", where)

    try:
        fd = open_regular(path, ModelError, f"the {path.name} written by `qbdi train`")
    except FileSystemError as exc:
        if exc.errno == errno.ENOENT:
            raise ModelError(f"corrupt model directory: {path.name} is missing; {fix}", where) from None
        raise
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > cap:
            raise ModelError(exceeded(f"{path.name}'s {size_words(size)}", size_words(cap), name_, size),
                             where)
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise fs_error(exc, path, "read") from None
            raise bad(f"is unreadable ({exc})") from None
        with zf:
            members = {}
            for n in expected:
                try:
                    members[n] = zf.getinfo(f"{n}.npy")
                except KeyError:
                    raise bad(f"is unreadable (array {n} is missing)") from None
            total = 0
            for n, shape in expected.items():
                total += int(np.prod(shape, dtype=np.int64)) * 8
            if total > cap:
                raise ModelError(exceeded(f"the arrays the configuration implies ({size_words(total)})",
                                          size_words(cap), name_, total), where)
            out = {}
            for n, shape in expected.items():
                out[n] = _read_npz_member(zf, members[n], shape, bad, mismatch=lambda got: ModelError(
                    f"corrupt model directory: {path.name}'s weight shapes do not match the "
                    f"configuration ({n} is {got}, the configuration implies {tuple(shape)}); {fix}", where),
                    path=path)
    return out


def _read_npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple, bad, *, mismatch,
                     path: Path) -> np.ndarray:
    """One member of :func:`read_npz`'s file: its .npy header checked against ``shape`` (a float
    dtype, the size the zip directory announces), then exactly its data read; a C-ordered copy.
    ``bad(words)`` and ``mismatch(got_shape)`` make the ModelErrors; ``path`` is named in I/O errors."""
    from numpy.lib import format as npy_format

    n = info.filename[: -len(".npy")]
    try:
        with zf.open(info) as fp:
            version = npy_format.read_magic(fp)
            if version == (1, 0):
                got_shape, fortran, dtype = npy_format.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                got_shape, fortran, dtype = npy_format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unknown .npy version {version}")
            header_len = fp.tell()
            if tuple(got_shape) != tuple(shape):
                raise mismatch(tuple(got_shape))
            if dtype.kind != "f" or dtype.itemsize > 8:
                raise bad(f"array {n} has dtype {dtype}, not floating point")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if info.file_size != header_len + nbytes:
                raise bad(f"array {n} announces {info.file_size} bytes, its header "
                          f"{header_len + nbytes}")
            data = fp.read(nbytes)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise fs_error(exc, path, "read") from None
        raise bad(f"is unreadable ({exc})") from None
    if len(data) != nbytes:
        raise bad(f"is unreadable (array {n} is truncated)")
    a = np.frombuffer(data, dtype=dtype)
    a = a.reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(a).copy()
