"""What "auto" precision loads for a live session on a CPU: int8 where it keeps up, int4 where not.

Of the two CPU modes int8 is the more precise (int4 moves each product about five times as far
from float32), so "auto" prefers it wherever its step keeps up with live audio. Where it cannot, an
int8 session falls behind and loses audio as gaps, and int4, the fastest mode, is the one that
keeps up. Which of the two holds is measured, not guessed: the first live session of a model on a
machine loads int8 (compiled where this CPU needs it), times lone frames over a full key/value ring
(`StreamingTranscriber.live_frame_seconds`) and, over the live budget (80% of a frame), loads int4
instead (app.model_loading). The answer is remembered per model and CPU in `precision.json` beside
the journal, so later starts load the right weights at once. int8 or int4 asked for by name (the
settings, `--quantize`) is always what loads.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

from app.output_file import write_text_atomic
from app.paths import user_data_dir

log = logging.getLogger(__name__)

CHOICE_FILE = "precision.json"
MODES = ("int8", "int4")


def cpu_name() -> str:
    """The CPU as the OS names it (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


class PrecisionChoices:
    """The remembered answers, one per model and machine (CPU name, cores, torch threads).

    The file is a shortcut, never the truth: one that cannot be read is treated as empty (the
    next live session measures again) and one that cannot be written costs only that shortcut.
    """

    def __init__(self, path: Path | None = None):
        self.path = path if path is not None else user_data_dir() / CHOICE_FILE

    @staticmethod
    def key(model: str, threads: int) -> str:
        return f"{model} | {cpu_name()} | {os.cpu_count()} cores, {threads} threads"

    def get(self, key: str) -> str | None:
        entry = self._read().get(key)
        mode = entry.get("mode") if isinstance(entry, dict) else None
        return mode if mode in MODES else None

    def put(self, key: str, mode: str, frame_s: float) -> None:
        assert mode in MODES
        choices = self._read()
        choices[key] = {"mode": mode, "int8_frame_ms": round(frame_s * 1e3, 1),
                        "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(choices, indent=1, sort_keys=True))
        except OSError as exc:
            log.warning("could not remember the precision chosen for this machine in %s: %s", self.path, exc)

    def _read(self) -> dict:
        try:
            choices = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s (%s): the next live session measures again", self.path, exc)
            return {}
        return choices if isinstance(choices, dict) else {}
