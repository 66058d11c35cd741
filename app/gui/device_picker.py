"""Microphone drop-down that keeps up with devices being plugged in and out.

The list is re-read when the drop-down opens and on a slow timer, so a headset plugged in while the
window is open shows up without a restart. The choice is kept by name, since device indices shift
when another device appears. Scanning stops while a session records: re-scanning PortAudio can
disturb an open stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QWidget

from app.gui.qt_signals import emit

log = logging.getLogger(__name__)

RESCAN_INTERVAL_MS = 5000
DEFAULT_LABEL = "System default microphone"
NONE_LABEL = "No microphone found"

DeviceLister = Callable[[], Sequence[str]]  # names of the input devices present now


def system_devices() -> Sequence[str]:
    """The real input devices, re-scanned; none (rather than a crash) when audio is unusable."""
    try:
        from app.audio.capture import list_input_devices

        return [device.name for device in list_input_devices(rescan=True)]
    except Exception as exc:  # no PortAudio, no sound server...: the picker says "No microphone"
        log.warning("cannot list input devices: %s", exc)
        return []


class InputDevicePicker(QComboBox):
    device_chosen = Signal(str)  # the device name, "" for the system default

    def __init__(self, lister: DeviceLister = system_devices, parent: QWidget | None = None):
        super().__init__(parent)
        self._lister = lister
        self._names: tuple[str, ...] = ()
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setMinimumContentsLength(18)
        self.setToolTip("The microphone (or other input) to caption. The list updates when devices "
                        "are plugged in or out.")
        self._timer = QTimer(self, interval=RESCAN_INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.activated.connect(self.on_self_activated)
        self.refresh()

    @property
    def has_devices(self) -> bool:
        return bool(self._names)

    def selected_name(self) -> str:
        return self.currentData() or ""

    def select_name(self, name: str) -> None:
        """Select the device called `name`, or the system default when it is not plugged in."""
        index = self.findData(name) if name else 0
        self.setCurrentIndex(max(index, 0))

    def set_scanning(self, on: bool) -> None:
        (self._timer.start if on else self._timer.stop)()

    def showPopup(self) -> None:
        if self._timer.isActive():
            self.refresh()
        super().showPopup()

    def refresh(self) -> None:
        names = tuple(dict.fromkeys(self._lister()))  # unique, in order
        if names == self._names and self.count():
            return
        keep = self.selected_name()
        self._names = names
        self.blockSignals(True)
        self.clear()
        if names:
            self.addItem(DEFAULT_LABEL, "")
            for name in names:
                self.addItem(name, name)
        else:
            self.addItem(NONE_LABEL, "")
        self.select_name(keep)
        self.blockSignals(False)
        self.setEnabled(bool(names))
        if keep and self.selected_name() != keep:
            log.info("input device %r is gone; using the system default", keep)

    def on_self_activated(self, _index: int) -> None:
        emit(self.device_chosen, self.selected_name())
