"""Overlay placement: preset rectangles and a memory per screen (no windows needed)."""

from PySide6.QtCore import QRect, QSize

from app.gui.placement import (EDGE_MARGIN_PX, Placement, PlacementStore, Preset, fit_inside, preset_rect,
                               screen_key)

SCREEN = QRect(0, 0, 1920, 1040)  # available area: 1080 minus a taskbar


def test_bottom_and_top_are_centred_near_their_edge():
    size = QSize(1200, 120)
    bottom = preset_rect(Preset.BOTTOM, SCREEN, size)
    top = preset_rect(Preset.TOP, SCREEN, size)
    assert bottom.size() == size == top.size()
    assert bottom.center().x() == top.center().x() == SCREEN.center().x()
    assert bottom.bottom() == SCREEN.bottom() - EDGE_MARGIN_PX
    assert top.top() == EDGE_MARGIN_PX


def test_presets_never_overflow_a_small_screen():
    rect = preset_rect(Preset.BOTTOM, QRect(0, 0, 800, 600), QSize(2000, 100))
    assert QRect(0, 0, 800, 600).contains(rect)


def test_fit_inside_brings_an_offscreen_rect_back():
    assert SCREEN.contains(fit_inside(QRect(5000, -300, 600, 100), SCREEN))


def test_screen_key_is_one_flat_token_per_screen_and_mode():
    a = screen_key("HDMI-1/left", QRect(0, 0, 1920, 1080))
    assert "/" not in a and "\\" not in a
    assert a != screen_key("HDMI-1/left", QRect(0, 0, 2560, 1440))  # another resolution, another memory
    assert a != screen_key("HDMI-1/left", QRect(1920, 0, 1920, 1080))


def test_each_screen_remembers_its_own_placement(settings):
    store = PlacementStore(settings)
    laptop, projector = screen_key("eDP-1", QRect(0, 0, 1920, 1080)), screen_key("HDMI-1", QRect(1920, 0, 1280, 720))
    store.set(laptop, Placement(Preset.TOP, QRect(360, 32, 1200, 100)))
    store.set(projector, Placement(Preset.FLOATING, QRect(2000, 300, 800, 140)))
    assert store.get(laptop) == Placement(Preset.TOP, QRect(360, 32, 1200, 100))
    assert PlacementStore(settings).get(projector).preset is Preset.FLOATING


def test_resolve_defaults_to_bottom_and_keeps_presets_in_place(settings):
    store = PlacementStore(settings)
    first = store.resolve("new", SCREEN, QSize(1000, 100))
    assert first.preset is Preset.BOTTOM
    store.set("s", Placement(Preset.TOP, QRect(7, 9, 1000, 100)))
    assert store.resolve("s", SCREEN, QSize(10, 10)).rect == preset_rect(Preset.TOP, SCREEN, QSize(1000, 100))


def test_unreadable_entries_are_ignored(settings):
    settings.set_raw("overlay_placement/bad", "sideways 1 2")
    assert PlacementStore(settings).get("bad") is None
