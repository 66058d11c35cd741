"""The settings dialog, generated from `settings.SCHEMA`: every labelled key gets an editor.

Changes apply at once (the overlay restyles while you watch), so there is no OK/Cancel to get
wrong; "Restore defaults" puts back the schema's values.
"""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFontComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from app.gui.settings import GROUPS, SCHEMA, Key, Setting, Settings


class _ColorButton(QPushButton):
    def __init__(self, settings: Settings, key: Key):
        super().__init__()
        self._settings, self._key = settings, key
        self.setFixedWidth(120)
        self.clicked.connect(self.on_self_clicked)
        self.load()

    def load(self) -> None:
        color = str(self._settings.value(self._key))
        text = "#000000" if QColor(color).lightness() > 140 else "#ffffff"
        self.setText(color)
        self.setStyleSheet(f"background: {color}; color: {text}; border-radius: 4px; padding: 4px 8px;")

    def on_self_clicked(self) -> None:
        color = QColorDialog.getColor(QColor(str(self._settings.value(self._key))), self, self._key.name.title())
        if color.isValid():
            self._settings.set_value(self._key, color.name())
            self.load()


def _editor(settings: Settings, spec: Setting) -> QWidget:
    key, value = spec.key, settings.value(spec.key)
    if spec.kind == "color":
        return _ColorButton(settings, key)
    if spec.kind == "font":
        box = QFontComboBox()
        box.setCurrentFont(QFont(str(value)))
        box.currentFontChanged.connect(lambda font: settings.set_value(key, font.family()))
        return box
    if spec.choices:
        box = QComboBox()
        for stored, label in spec.choices:
            box.addItem(label, stored)
        box.setCurrentIndex(max(0, box.findData(value)))
        box.currentIndexChanged.connect(lambda _i: settings.set_value(key, box.currentData()))
        return box
    if isinstance(value, bool):
        check = QCheckBox()
        check.setChecked(value)
        check.toggled.connect(lambda on: settings.set_value(key, on))
        return check
    if isinstance(value, int):
        spin = QSpinBox(minimum=int(spec.minimum), maximum=int(spec.maximum), value=value)
        spin.valueChanged.connect(lambda v: settings.set_value(key, v))
        return spin
    spin = QDoubleSpinBox(minimum=spec.minimum, maximum=spec.maximum, value=float(value), decimals=1,
                          singleStep=0.5)
    spin.valueChanged.connect(lambda v: settings.set_value(key, v))
    return spin


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Surtitle · Settings")
        self._settings = settings
        self.editors: dict[Key, QWidget] = {}
        self._layout = QVBoxLayout(self)
        self._build()

    def _build(self) -> None:
        groups: dict[str, list[Setting]] = defaultdict(list)
        for spec in SCHEMA.values():
            if spec.label:
                groups[spec.group].append(spec)
        for name in GROUPS:
            specs = groups[name]
            box = QGroupBox(name)
            form = QFormLayout(box)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
            for spec in specs:
                editor = _editor(self._settings, spec)
                editor.setToolTip(spec.tooltip)
                editor.setAccessibleName(spec.label)
                label = QLabel(spec.label)
                label.setToolTip(spec.tooltip)
                form.addRow(label, editor)
                self.editors[spec.key] = editor
            self._layout.addWidget(box)
        note = QLabel("Changes to the model's device and precision apply from the next session.")
        note.setWordWrap(True)
        note.setEnabled(False)
        self._layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close |
                                   QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.rejected.connect(self.close)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        row = QHBoxLayout()
        row.addWidget(buttons)
        self._layout.addLayout(row)

    def restore_defaults(self) -> None:
        for key in self.editors:
            self._settings.set_value(key, SCHEMA[key].default)
        # Rebuild the editors so they show the defaults.
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
            elif item.layout() is not None:
                _delete_layout(item.layout())
        self.editors.clear()
        self._build()


def _delete_layout(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
