"""The settings dialog is the schema: one editor per labelled key, changes apply at once."""

from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox

from app.gui.settings import SCHEMA, Key
from app.gui.settings_dialog import SettingsDialog


def test_shows_exactly_the_labelled_keys(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert set(dialog.editors) == {key for key, spec in SCHEMA.items() if spec.label}
    assert all(editor.toolTip() or not SCHEMA[key].tooltip for key, editor in dialog.editors.items())


def test_editing_applies_immediately_and_defaults_come_back(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    lines = dialog.editors[Key.OVERLAY_LINES]
    assert isinstance(lines, QSpinBox)
    lines.setValue(5)
    assert settings.value(Key.OVERLAY_LINES) == 5
    device = dialog.editors[Key.COMPUTE_DEVICE]
    assert isinstance(device, QComboBox)
    device.setCurrentIndex(device.findData("cpu"))
    assert settings.value(Key.COMPUTE_DEVICE) == "cpu"
    outline = dialog.editors[Key.OVERLAY_OUTLINE]
    assert isinstance(outline, QCheckBox)
    outline.setChecked(False)
    assert settings.value(Key.OVERLAY_OUTLINE) is False
    dialog.restore_defaults()
    assert settings.value(Key.OVERLAY_LINES) == SCHEMA[Key.OVERLAY_LINES].default
    assert dialog.editors[Key.OVERLAY_LINES].value() == SCHEMA[Key.OVERLAY_LINES].default
