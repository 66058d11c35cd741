"""The strip above the transcript: what to listen to, with which model, and the session buttons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QLabel, QProgressBar, QToolButton, QVBoxLayout,
                               QWidget)

from app.gui.actions import AppActions
from app.gui.device_picker import InputDevicePicker
from app.gui.level_meter import LevelMeter
from app.gui.model_picker import ModelPicker
from app.gui.source_picker import SourcePicker


def loading_text(stage: str, done: int, total: int) -> str:
    """'Downloading the model… 1.2 GB of 2.7 GB', 'Loading the model… 40%', 'Compiling…' and so on."""
    if stage == "compile":
        return "Compiling the model for this CPU… (first start: a minute or two)"
    if stage == "int4":
        return f"8-bit weights are too slow on this CPU ({done} ms a frame of {total}): loading 4-bit weights…"
    if stage == "kernel":
        return "Preparing the 4-bit kernel… (first start: about a minute)"
    if "download" in stage.lower():
        if total > 0:
            return f"Downloading the model… {_size(done)} of {_size(total)}"
        return f"Downloading the model… {_size(done)}"
    if total > 0:
        return f"Loading the model… {100 * done // total}%"
    return "Loading the model…"


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def _button(action: QAction, primary: bool = False) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setMinimumHeight(32)
    button.setMinimumWidth(84)
    if primary:
        button.setObjectName("primary")  # styled by resources/style.qss
    return button


class SessionControls(QWidget):
    def __init__(self, actions: AppActions, sources: SourcePicker, devices: InputDevicePicker, models: ModelPicker,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.sources, self.devices, self.models = sources, devices, models
        self.meter = LevelMeter()
        self.progress = QProgressBar(textVisible=True)
        self.progress.setFormat("")
        self.progress.hide()

        pickers = QFormLayout()
        pickers.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        pickers.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        pickers.addRow("Listen to", sources)
        pickers.addRow("Microphone", devices)
        pickers.addRow("Model", models)
        meter_row = QHBoxLayout()
        meter_row.addWidget(QLabel("Level"))
        meter_row.addWidget(self.meter, 1)

        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(_button(actions.start, primary=True))
        buttons.addWidget(_button(actions.pause))
        buttons.addWidget(_button(actions.stop))
        buttons.addSpacing(16)
        buttons.addLayout(meter_row, 1)
        buttons.addSpacing(16)
        for action in (actions.show_overlay, actions.history, actions.export):
            button = _button(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 8)
        layout.setSpacing(10)
        layout.addLayout(pickers)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)

    def show_loading(self, stage: str, done: int, total: int) -> None:
        if stage in ("weights", "download") and total > 0:  # the others' numbers are no progress
            # QProgressBar counts in int: scale bytes down to per mille.
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, 1000 * done // total))
        else:
            self.progress.setRange(0, 0)  # busy: size unknown
        self.progress.setFormat(loading_text(stage, done, total))
        self.progress.show()

    def hide_loading(self) -> None:
        self.progress.hide()
