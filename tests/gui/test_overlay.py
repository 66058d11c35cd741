"""The caption overlay: window flags, what it paints, append-only captions, moving and locking it."""

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from app.gui.overlay import CaptionOverlay
from app.gui.placement import PlacementStore, Preset, key_of
from app.gui.settings import Key
from tests.gui.test_captions import shows_the_newest_words


@pytest.fixture
def overlay(qtbot, settings):
    widget = CaptionOverlay(settings)
    qtbot.addWidget(widget)
    widget.resize(900, widget.height())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def image(widget) -> QImage:
    return widget.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32)


def bright_opaque_columns(img: QImage) -> list[int]:
    return [x for x in range(img.width()) for y in range(img.height())
            if img.pixelColor(x, y).alpha() == 255 and img.pixelColor(x, y).lightness() > 200]


def test_window_is_a_frameless_translucent_tool_on_top(overlay):
    flags = overlay.windowFlags()
    for flag in (Qt.WindowType.Tool, Qt.WindowType.FramelessWindowHint, Qt.WindowType.WindowStaysOnTopHint):
        assert flags & flag
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)


def test_painted_captions_are_translucent_with_readable_text(overlay, settings):
    settings.set_value(Key.OVERLAY_BACKGROUND_OPACITY, 60)
    overlay.add_words(["Hello", "world"])
    img = image(overlay)
    assert img.hasAlphaChannel()
    assert img.pixelColor(0, 0).alpha() == 0  # outside the rounded corner
    assert img.pixelColor(img.width() - 1, img.height() - 1).alpha() == 0
    background = img.pixelColor(6, img.height() // 2)  # inside the box, left of the text
    assert abs(background.alpha() - round(255 * 0.60)) <= 1
    assert len(bright_opaque_columns(img)) > 100  # solid white letters


def test_background_opacity_follows_the_setting(overlay, settings):
    overlay.add_words(["Hi"])
    settings.set_value(Key.OVERLAY_BACKGROUND_OPACITY, 100)
    assert image(overlay).pixelColor(6, overlay.height() // 2).alpha() == 255
    settings.set_value(Key.OVERLAY_BACKGROUND_OPACITY, 0)
    assert image(overlay).pixelColor(6, overlay.height() // 2).alpha() == 0


def test_partial_word_is_drawn_dimmer_after_the_final_words(overlay):
    overlay.add_words(["Final"])
    overlay.set_partial("tentative")
    img = image(overlay)
    final_end = max(bright_opaque_columns(img))
    after = [img.pixelColor(x, y) for x in range(final_end + 12, img.width() - 20) for y in range(img.height())]
    assert sum(p.lightness() > 120 and p.alpha() > 100 for p in after) > 100, "the partial word was not drawn"
    assert not any(p.alpha() == 255 and p.lightness() > 200 for p in after)  # dimmer than final words


def test_partial_can_be_turned_off(overlay, settings):
    settings.set_value(Key.OVERLAY_SHOW_PARTIAL, False)
    overlay.set_partial("hidden")
    assert overlay.caption_lines() == []


def test_captions_only_grow_and_old_lines_scroll_away(overlay, settings):
    settings.set_value(Key.OVERLAY_LINES, 2)
    appended = []
    for i in range(60):
        overlay.set_partial(f"wo{i}")
        overlay.add_words([f"word{i}"])
        appended.append(f"word{i}")
        current = overlay.caption_lines()
        assert shows_the_newest_words(appended, current), (i, current)
        assert len(current) <= 2
    assert "word0" not in " ".join(line.final for line in current).split()  # scrolled away


def test_captions_clear_after_the_configured_silence(qtbot, overlay, settings):
    settings.set_value(Key.OVERLAY_CLEAR_AFTER_S, 0.05)
    overlay.add_words(["soon", "gone"])
    assert overlay.caption_lines()
    qtbot.waitUntil(lambda: overlay.caption_lines() == [], timeout=2000)


def test_more_lines_make_the_overlay_taller(overlay, settings):
    two = overlay.height()
    settings.set_value(Key.OVERLAY_LINES, 4)
    assert overlay.height() > two * 1.6


def test_click_through_toggles_and_comes_back(overlay, settings):
    settings.set_value(Key.OVERLAY_CLICK_THROUGH, True)
    assert overlay.is_click_through()
    assert overlay.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert overlay.isVisible()
    settings.set_value(Key.OVERLAY_CLICK_THROUGH, False)
    assert not overlay.is_click_through()
    assert not overlay.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert overlay.isVisible()


def _mouse(widget, kind, local: QPoint, buttons=Qt.MouseButton.LeftButton):
    pos = QPointF(local)
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(local)), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget, start: QPoint, delta: QPoint):
    _mouse(widget, QEvent.Type.MouseButtonPress, start)
    _mouse(widget, QEvent.Type.MouseMove, start + delta)
    _mouse(widget, QEvent.Type.MouseButtonRelease, start + delta, Qt.MouseButton.NoButton)


def test_dragging_moves_it_and_makes_it_floating(qtbot, overlay, settings):
    overlay.apply_preset(Preset.BOTTOM)
    before = overlay.pos()
    drag(overlay, QPoint(overlay.width() // 2, overlay.height() // 2), QPoint(-40, -120))
    assert overlay.pos() == before + QPoint(-40, -120)
    assert overlay.preset is Preset.FLOATING
    store = PlacementStore(settings)
    qtbot.waitUntil(lambda: store.get(key_of(overlay.screen())).preset is Preset.FLOATING, timeout=2000)
    assert store.get(key_of(overlay.screen())).rect.topLeft() == overlay.pos()


def test_edge_grip_resizes_width(overlay):
    width = overlay.width()
    drag(overlay, QPoint(overlay.width() - 2, overlay.height() // 2), QPoint(-100, 0))
    assert overlay.width() == width - 100


def test_resizing_the_height_snaps_to_whole_lines(qtbot, overlay, settings):
    settings.set_value(Key.OVERLAY_LINES, 2)
    line = overlay.height() / 2.6  # roughly one line's height
    drag(overlay, QPoint(overlay.width() // 2, overlay.height() - 2), QPoint(0, round(line * 1.1)))
    qtbot.waitUntil(lambda: settings.value(Key.OVERLAY_LINES) == 3, timeout=2000)
    three = overlay.height()
    settings.set_value(Key.OVERLAY_LINES, 2)
    assert overlay.height() < three


def test_preset_is_restored_by_a_new_overlay(qtbot, overlay, settings):
    overlay.apply_preset(Preset.TOP)
    top_y = overlay.y()
    overlay.close()
    again = CaptionOverlay(settings)
    qtbot.addWidget(again)
    again.restore_placement()
    assert again.preset is Preset.TOP
    assert again.y() == top_y


def test_visibility_follows_the_setting(overlay, settings):
    settings.set_value(Key.OVERLAY_VISIBLE, False)
    assert not overlay.isVisible()
    settings.set_value(Key.OVERLAY_VISIBLE, True)
    assert overlay.isVisible()
