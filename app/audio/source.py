"""What a live session hears, as one name for the window, the command line and the pipeline."""

from __future__ import annotations

import enum


class Source(enum.Enum):
    MICROPHONE = "mic"  # an input device: the microphone, or whatever input the user picks
    SYSTEM = "system"  # what the computer plays (the default output): the other side of a call, a video
    BOTH = "both"  # both sides of a call: the microphone and the computer, two labelled speakers

    @property
    def parts(self) -> tuple["Source", ...]:
        """The inputs this source is made of, the microphone first."""
        return (Source.MICROPHONE, Source.SYSTEM) if self is Source.BOTH else (self,)
