"""MIDI <-> piano roll <-> frames: the paper's representation (PAPER.md section 2). Notebook 01.

Layout of a roll, fixed by :class:`RollSpec`: one row per 16th-note step, ``spec.n_columns`` = 156
uint8 columns. Columns ``[0, 78)`` are the *play* plane (pitch sounding on this step), columns
``[78, 156)`` the *articulate* plane (pitch starts on this step); column ``k`` of a plane is MIDI
pitch ``spec.min_pitch + k``. A valid roll has articulate <= play everywhere.

A frame is ``spec.steps_per_frame`` = 16 consecutive rows flattened row-major, so
``frame.reshape(16, 156)`` gives the rows back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, asdict

import numpy as np


@dataclass(frozen=True)
class RollSpec:
    """Layout of a piano roll and of its frames; travels with every saved model.

    Attributes:
        min_pitch: lowest MIDI pitch represented (24, C1).
        max_pitch: highest MIDI pitch represented, inclusive (101, F7).
        steps_per_quarter: time steps per quarter note (4: 16th notes).
        steps_per_frame: steps in one frame (16: one 4/4 bar).
        planes: names of the planes, in column order.
    """

    min_pitch: int = 24
    max_pitch: int = 101
    steps_per_quarter: int = 4
    steps_per_frame: int = 16
    planes: tuple[str, ...] = ("play", "articulate")

    def __post_init__(self):
        if not (0 <= self.min_pitch <= self.max_pitch <= 127):
            raise ValueError(f"pitch range {self.min_pitch}..{self.max_pitch} is not within 0..127")
        if self.steps_per_quarter < 1 or self.steps_per_frame < 1:
            raise ValueError("steps_per_quarter and steps_per_frame must be positive")
        if tuple(self.planes) != ("play", "articulate"):
            raise ValueError(f"planes must be ('play', 'articulate'), got {self.planes!r}")
        object.__setattr__(self, "planes", tuple(self.planes))

    @property
    def n_pitches(self) -> int:
        """Pitches per plane (78)."""
        return self.max_pitch - self.min_pitch + 1

    @property
    def n_columns(self) -> int:
        """Columns of a roll row (156)."""
        return self.n_pitches * len(self.planes)

    @property
    def frame_size(self) -> int:
        """Values in one flattened frame (2496)."""
        return self.n_columns * self.steps_per_frame

    @property
    def quarters_per_frame(self) -> float:
        """Quarter notes spanned by one frame (4.0)."""
        return self.steps_per_frame / self.steps_per_quarter

    def to_dict(self) -> dict:
        """JSON-ready dict; inverse of :meth:`from_dict`."""
        d = asdict(self)
        d["planes"] = list(self.planes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RollSpec":
        """Build a spec from :meth:`to_dict` output."""
        d = dict(d)
        d["planes"] = tuple(d.get("planes", ("play", "articulate")))
        return cls(**d)


@dataclass
class Piece:
    """A piece of music as a roll plus what the roll cannot say by itself.

    Attributes:
        roll: (T, spec.n_columns) uint8, a valid roll.
        spec: the layout of ``roll``.
        name: a human-readable name (usually the file stem).
        tempo_map: list of (step, bpm), sorted, first entry at step 0.
        time_signatures: list of (step, numerator, denominator), sorted; empty if the source had none.
        ticks_per_beat: resolution of the source MIDI file (480 when not read from MIDI).
        bar_offset_steps: step at which the first full bar starts (a pickup's length), 0 if none.
        dropped: counts of what could not be represented, by reason
            (e.g. ``{"out_of_range": 3, "drum": 120}``); empty when nothing was lost.
    """

    roll: np.ndarray
    spec: RollSpec = field(default_factory=RollSpec)
    name: str = ""
    tempo_map: list = field(default_factory=lambda: [(0, 120.0)])
    time_signatures: list = field(default_factory=list)
    ticks_per_beat: int = 480
    bar_offset_steps: int = 0
    dropped: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        """Number of roll rows."""
        return int(self.roll.shape[0])

    @property
    def tempo_bpm(self) -> float:
        """The first (initial) tempo in quarter notes per minute."""
        return float(self.tempo_map[0][1]) if self.tempo_map else 120.0
