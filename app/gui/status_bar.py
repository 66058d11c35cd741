"""Status bar: what the session is doing, and honest numbers on how well it keeps up.

Lag is the delay between speech and its caption. It is shown all the time and turns amber, then
red, as it grows, so falling behind is never silent; dropped audio is counted next to it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

LAG_WARN_S = 1.5  # backlog beyond the model's own fixed delay (0.5 s for 1B, 2.5 s for 2.6B)
_AMBER, _RED = "#c98a00", "#d0453a"


def _metric(tooltip: str) -> QLabel:
    label = QLabel()
    label.setToolTip(tooltip)
    label.setContentsMargins(8, 0, 8, 0)
    return label


class SessionStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.lag = _metric("How long after speech the captions appear. It stays steady while the "
                           "computer keeps up; if it grows, choose a smaller model or the GPU.")
        self.rtf = _metric("Real-time factor: seconds of computing per second of audio. Below 1.0 "
                           "keeps up with speech.")
        self.dropped = _metric("Audio skipped because the computer could not keep up. Skipped "
                               "stretches are marked in the transcript.")
        self.device = _metric("Where the model runs.")
        self.model = _metric("The speech model in use.")
        for label in (self.lag, self.rtf, self.dropped, self.device, self.model):
            self.addPermanentWidget(label)
        self._max_lag_s = 10.0
        self._delay_s = 0.5
        self.clear_metrics()

    def set_max_lag(self, max_lag_s: float) -> None:
        self._max_lag_s = max_lag_s

    def set_model_delay(self, delay_s: float) -> None:
        """The model's fixed delay: lag up to this is by design, not falling behind."""
        self._delay_s = delay_s

    def clear_metrics(self) -> None:
        for label in (self.lag, self.rtf, self.dropped, self.device, self.model):
            label.clear()
            label.hide()

    def show_status(self, status: Any) -> None:
        """Fill in from a `PipelineStatus`."""
        lag_s = float(status.lag_s)
        behind_s = lag_s - self._delay_s
        color = _RED if behind_s >= self._max_lag_s / 2 else _AMBER if behind_s >= LAG_WARN_S else ""
        self._set(self.lag, f"Lag {lag_s:.1f} s", color)
        self._set(self.rtf, f"Real-time factor {float(status.rtf):.2f}",
                  _AMBER if float(status.rtf) >= 1.0 else "")
        dropped_s = float(status.dropped_s)
        self._set(self.dropped, f"Dropped {dropped_s:.1f} s", _RED if dropped_s > 0 else "")
        self._set(self.device, str(status.device_name))
        self._set(self.model, _short_model_name(str(status.model_name)))

    def _set(self, label: QLabel, text: str, color: str = "") -> None:
        label.setText(text)
        label.setStyleSheet(f"color: {color}; font-weight: 600;" if color else "")
        label.show()


def _short_model_name(name: str) -> str:
    """'kyutai/stt-1b-en_fr-trfs' → 'stt-1b-en_fr'; a folder → its last part."""
    tail = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return tail.removesuffix("-trfs") or name
