"""What a live session hears, as one name for the window, the command line and the pipeline."""

from __future__ import annotations

import enum


class Source(enum.Enum):
    MICROPHONE = "mic"  # an input device: the microphone, or whatever input the user picks
    SYSTEM = "system"  # what the computer plays (the default output): the other side of a call, a video
