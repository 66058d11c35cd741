"""Settings: one schema of defaults, values coerced from what QSettings returns, persisted."""

import pytest
from PySide6.QtCore import QSettings

from app.gui.settings import SCHEMA, Key, Settings


def test_every_key_has_a_default_of_its_type(settings):
    for key, spec in SCHEMA.items():
        assert spec.key is key
        assert type(settings.value(key)) is type(spec.default)


def test_values_persist_across_instances(settings):
    settings.set_value(Key.OVERLAY_LINES, 4)
    settings.set_value(Key.OVERLAY_OUTLINE, False)
    settings.set_value(Key.COMPUTE_DEVICE, "cpu")
    settings.sync()
    again = Settings()
    assert again.value(Key.OVERLAY_LINES) == 4
    assert again.value(Key.OVERLAY_OUTLINE) is False
    assert again.value(Key.COMPUTE_DEVICE) == "cpu"


@pytest.mark.parametrize("raw, expected", [("true", True), ("false", False), ("1", True), ("0", False), (True, True)])
def test_booleans_are_coerced_from_strings(raw, expected):
    store = QSettings()
    store.setValue(Key.SAVE_AUDIO.value, raw)
    assert Settings(store).value(Key.SAVE_AUDIO) is expected


@pytest.mark.parametrize("raw, expected", [("true", "always"), (True, "always"), ("false", "auto"), (False, "auto"),
                                           ("never", "never"), ("sometimes", "auto")])
def test_compile_was_a_checkbox_and_old_values_still_read(raw, expected):
    store = QSettings()
    store.setValue(Key.COMPILE.value, raw)
    assert Settings(store).value(Key.COMPILE) == expected


def test_numbers_are_coerced_and_clamped():
    store = QSettings()
    settings = Settings(store)
    store.setValue(Key.OVERLAY_FONT_SIZE.value, "30")
    assert settings.value(Key.OVERLAY_FONT_SIZE) == 30
    store.setValue(Key.OVERLAY_LINES.value, "99")
    assert settings.value(Key.OVERLAY_LINES) == SCHEMA[Key.OVERLAY_LINES].maximum
    store.setValue(Key.OVERLAY_LINES.value, "lots")
    assert settings.value(Key.OVERLAY_LINES) == SCHEMA[Key.OVERLAY_LINES].default


def test_unknown_choice_falls_back_to_the_default():
    store = QSettings()
    store.setValue(Key.COMPUTE_DEVICE.value, "tpu")
    assert Settings(store).value(Key.COMPUTE_DEVICE) == "auto"


def test_changed_fires_once_per_real_change(qtbot, settings):
    seen = []
    settings.changed.connect(seen.append)
    settings.set_value(Key.OVERLAY_LINES, 3)
    settings.set_value(Key.OVERLAY_LINES, 3)
    assert seen == [Key.OVERLAY_LINES]
