"""What a session listens to: the microphone, or what the computer plays (the other side of a call)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

from app.gui.qt_signals import emit
from app.audio.source import Source

LABELS = {
    Source.MICROPHONE: "Microphone",
    Source.SYSTEM: "What the computer plays",
    Source.BOTH: "Both sides of a call (you and the others)",
}


class SourcePicker(QComboBox):
    source_chosen = Signal(str)  # a Source value

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setToolTip("Caption the microphone, or what the computer plays: the other side of a call, a "
                        "video without subtitles (Linux: the default output, followed when it changes).")
        for source, label in LABELS.items():
            self.addItem(label, source.value)
        self.activated.connect(lambda index: emit(self.source_chosen, self.itemData(index)))

    def selected(self) -> Source:
        return Source(self.currentData())

    def select(self, source: Source) -> None:
        self.setCurrentIndex(self.findData(source.value))
