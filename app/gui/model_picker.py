"""Model drop-down: the two released Kyutai models, a local folder, or "Local folder…" to pick one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from app.gui.qt_signals import emit
from app.gui.settings import MODEL_1B, MODEL_2_6B

KNOWN_MODELS = (
    (MODEL_1B, "Kyutai STT 1B · English + French · fast"),
    (MODEL_2_6B, "Kyutai STT 2.6B · English · most accurate"),
)
_BROWSE = "__browse__"
REQUIRED_FILES = ("config.json", "tokenizer.json")

FolderChooser = Callable[[QWidget], str]  # returns "" when cancelled


def choose_folder(parent: QWidget) -> str:
    return QFileDialog.getExistingDirectory(parent, "Folder holding the model (config.json, *.safetensors)")


def missing_files(folder: str) -> list[str]:
    """Files a checkpoint folder must hold that `folder` lacks ([] when it looks usable)."""
    path = Path(folder)
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any(path.glob("*.safetensors")):
        missing.append("*.safetensors")
    return missing


class ModelPicker(QComboBox):
    model_chosen = Signal(str)  # hub id or folder path
    folder_rejected = Signal(str)  # one sentence: why the picked folder cannot be used

    def __init__(self, chooser: FolderChooser = choose_folder, parent: QWidget | None = None):
        super().__init__(parent)
        self._chooser = chooser
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setToolTip("The speech model. The first use downloads it (1B: about 2.7 GB); "
                        "without network, pick a folder where it is already saved.")
        for model, label in KNOWN_MODELS:
            self.addItem(label, model)
        self.insertSeparator(self.count())
        self.addItem("Local folder…", _BROWSE)
        self._previous = 0
        self.activated.connect(self.on_self_activated)

    def selected_model(self) -> str:
        return self.currentData()

    def select_model(self, model: str) -> None:
        index = self.findData(model)
        if index < 0:  # a local folder: listed just above the separator
            index = self._add_folder(model)
        self.setCurrentIndex(index)
        self._previous = index

    def _add_folder(self, folder: str) -> int:
        index = self.findData(folder)
        if index >= 0:
            return index
        index = len(KNOWN_MODELS)
        self.insertItem(index, f"Folder: {Path(folder).name}", folder)
        self.setItemData(index, folder, Qt.ItemDataRole.ToolTipRole)  # full path on hover
        return index

    def browse(self) -> None:
        folder = self._chooser(self)
        if not folder:
            self.setCurrentIndex(self._previous)
            return
        missing = missing_files(folder)
        if missing:
            self.setCurrentIndex(self._previous)
            emit(self.folder_rejected, f"{folder} does not hold a model: {', '.join(missing)} missing.")
            return
        self.select_model(folder)
        emit(self.model_chosen, folder)

    def on_self_activated(self, index: int) -> None:
        if self.itemData(index) == _BROWSE:
            self.browse()
            return
        self._previous = index
        emit(self.model_chosen, self.selected_model())
