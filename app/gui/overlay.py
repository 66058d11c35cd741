"""The caption overlay: a frameless, translucent, always-on-top strip of live captions.

Final words are drawn in full colour, the word still being recognised after them in a dimmer one;
nothing already shown is ever rewritten (see `captions.CaptionBuffer`). The text is outlined on a
rounded semi-opaque box so it stays readable over any video. Everything it looks like comes from
`Settings`, which it follows live; its placement is remembered per screen (`placement`).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QContextMenuEvent, QFont, QFontMetricsF, QGuiApplication, QPainter, QScreen
from PySide6.QtWidgets import QWidget

from app.gui.caption_painter import CaptionStyle, paint_captions
from app.gui.captions import CaptionBuffer
from app.gui.grips import WindowGrips
from app.gui.overlay_menu import show_overlay_menu
from app.gui.placement import DEFAULT_WIDTH_FRACTION, Placement, PlacementStore, Preset, key_of, preset_rect
from app.gui.qt_signals import emit
from app.gui.settings import Key, Settings

SETTLE_MS = 400  # after the last move/resize event, remember where the overlay ended up


class CaptionOverlay(QWidget):
    placement_changed = Signal(object)  # Preset

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        flags = Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
        super().__init__(parent, flags)
        self.setWindowTitle("Surtitle captions")
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)  # never steal the user's focus
        self._settings = settings
        self._placements = PlacementStore(settings)
        self._preset = Preset.BOTTOM
        self._font = QFont()
        self._buffer = CaptionBuffer(len, 1.0, 1)
        self._hovered = False

        self._silence = QTimer(self, singleShot=True)
        self._silence.timeout.connect(self.on_silence_timeout)
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.on_settle_timeout)
        self._grips = WindowGrips(self)
        self._grips.moved.connect(self.on_grips_moved)
        self._grips.resized.connect(self.on_grips_resized)

        self._apply_style()
        self.resize(QSize(900, self._height_for(self.lines)))
        self.set_click_through(bool(settings.value(Key.OVERLAY_CLICK_THROUGH)))
        settings.changed.connect(self.on_settings_changed)

    # ---- captions ---------------------------------------------------------------------------

    @property
    def lines(self) -> int:
        return int(self._settings.value(Key.OVERLAY_LINES))

    @property
    def preset(self) -> Preset:
        return self._preset

    def add_words(self, texts: Sequence[str]) -> None:
        if not texts:
            return
        self._buffer.append_words(texts)
        self._restart_silence_timer()
        self.update()

    def set_partial(self, text: str) -> None:
        if not self._settings.value(Key.OVERLAY_SHOW_PARTIAL):
            text = ""
        self._buffer.set_partial(text)
        if text:
            self._restart_silence_timer()
        self.update()

    def clear(self) -> None:
        self._buffer.clear()
        self.update()

    def caption_lines(self):
        """What is on screen now, oldest line first (`CaptionLine`s)."""
        return self._buffer.lines()

    def on_silence_timeout(self) -> None:
        self.clear()

    def _restart_silence_timer(self) -> None:
        clear_after_s = float(self._settings.value(Key.OVERLAY_CLEAR_AFTER_S))
        if clear_after_s > 0:
            self._silence.start(round(clear_after_s * 1000))
        else:
            self._silence.stop()

    # ---- look -------------------------------------------------------------------------------

    def _apply_style(self) -> None:
        self._font = QFont(str(self._settings.value(Key.OVERLAY_FONT_FAMILY)))
        self._font.setPointSizeF(float(self._settings.value(Key.OVERLAY_FONT_SIZE)))
        self._font.setWeight(QFont.Weight.DemiBold)
        self.setFont(self._font)  # the widget's font is the caption font (accessibility tools read it)
        metrics = QFontMetricsF(self._font)
        self._buffer.set_measure(metrics.horizontalAdvance)
        self._buffer.set_max_lines(self.lines)
        self._buffer.set_width(self._text_width())
        self.setMinimumSize(QSize(round(metrics.averageCharWidth() * 12), self._height_for(1)))

    def _style(self) -> CaptionStyle:
        background = QColor(str(self._settings.value(Key.OVERLAY_BACKGROUND_COLOR)))
        background.setAlpha(round(255 * int(self._settings.value(Key.OVERLAY_BACKGROUND_OPACITY)) / 100))
        return CaptionStyle(self._font, QColor(str(self._settings.value(Key.OVERLAY_TEXT_COLOR))), background,
                            bool(self._settings.value(Key.OVERLAY_OUTLINE)), self.lines)

    def _height_for(self, lines: int) -> int:
        return self._style().height_for(lines)

    def _text_width(self) -> float:
        return max(1.0, self.width() - 2 * self._style().padding[0])

    def resizeEvent(self, event) -> None:
        self._buffer.set_width(self._text_width())
        self._settle.start()
        super().resizeEvent(event)

    def moveEvent(self, event) -> None:
        self._settle.start()
        super().moveEvent(event)

    def enterEvent(self, event) -> None:
        self._hovered = True
        self.update()

    def leaveEvent(self, event) -> None:
        self._hovered = False
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        hint = self._hovered and not self.is_click_through()
        paint_captions(painter, self.rect(), self._style(), self._buffer.lines(), hint)
        painter.end()

    # ---- settings ---------------------------------------------------------------------------

    def follow_visibility_setting(self) -> None:
        """Shown or hidden as the "Show captions" setting says, in its remembered place."""
        if self._settings.value(Key.OVERLAY_VISIBLE):
            if not self.isVisible():
                self.restore_placement()
                self.show()
        else:
            self.hide()

    def on_settings_changed(self, key: Key) -> None:
        if key is Key.OVERLAY_VISIBLE:
            self.follow_visibility_setting()
        elif key is Key.OVERLAY_CLICK_THROUGH:
            self.set_click_through(bool(self._settings.value(key)))
        elif key is Key.OVERLAY_SHOW_PARTIAL and not self._settings.value(key):
            self._buffer.set_partial("")
        elif key in (Key.OVERLAY_LINES, Key.OVERLAY_FONT_FAMILY, Key.OVERLAY_FONT_SIZE):
            self._apply_style()
            self._fit_height_to_lines()
        elif key is Key.OVERLAY_CLEAR_AFTER_S and self._silence.isActive():
            self._restart_silence_timer()
        self.update()

    def _fit_height_to_lines(self) -> None:
        height = self._height_for(self.lines)
        if self.height() != height:
            self.resize(self.width(), height)
            if self._preset is not Preset.FLOATING:
                self.apply_preset(self._preset)

    # ---- click-through ----------------------------------------------------------------------

    def is_click_through(self) -> bool:
        return self.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

    def set_click_through(self, on: bool) -> None:
        """Let the mouse reach the windows underneath; the tray and Ctrl+L bring it back."""
        if on == self.is_click_through():
            return
        visible = self.isVisible()
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, on)
        # Window flags only reach the window system when the window is (re)shown.
        self.setWindowFlag(Qt.WindowType.WindowTransparentForInput, on)
        if visible:
            self.show()
        self._hovered = False
        self.update()

    # ---- placement --------------------------------------------------------------------------

    def _screen(self) -> QScreen:
        wanted = str(self._settings.value(Key.OVERLAY_SCREEN))
        for screen in QGuiApplication.screens():
            if key_of(screen) == wanted:
                return screen
        return self.screen() if self.isVisible() else QGuiApplication.primaryScreen()

    def restore_placement(self) -> None:
        """Put the overlay where the user last had it on its screen (Bottom the first time)."""
        screen = self._screen()
        size = QSize(round(screen.availableGeometry().width() * DEFAULT_WIDTH_FRACTION), self._height_for(self.lines))
        placement = self._placements.resolve(key_of(screen), screen.availableGeometry(), size)
        self._preset = placement.preset
        self.setGeometry(placement.rect)
        self._fit_height_to_lines()

    def apply_preset(self, preset: Preset) -> None:
        screen = self.screen() if self.isVisible() else self._screen()
        if preset is not Preset.FLOATING:
            self.setGeometry(preset_rect(preset, screen.availableGeometry(), self.size()))
        self._preset = preset
        self._remember(screen)
        emit(self.placement_changed, preset)

    def on_grips_moved(self) -> None:
        self._preset = Preset.FLOATING
        self._settle.start()
        emit(self.placement_changed, self._preset)

    def on_grips_resized(self) -> None:
        self._settle.start()

    def on_settle_timeout(self) -> None:
        """A move or resize has ended: snap to whole lines and remember it for this screen."""
        if not self.isVisible():
            return
        style = self._style()
        lines = max(1, round((self.height() - 2 * style.padding[1]) / style.line_height))
        if lines != self.lines:
            self._settings.set_value(Key.OVERLAY_LINES, lines)  # resizes through on_settings_changed
        elif self.height() != self._height_for(lines):
            self.resize(self.width(), self._height_for(lines))
        if self._preset is not Preset.FLOATING:
            self.setGeometry(preset_rect(self._preset, self.screen().availableGeometry(), self.size()))
        self._settle.stop()  # our own setGeometry above must not start another round
        self._remember(self.screen())

    def _remember(self, screen: QScreen) -> None:
        key = key_of(screen)
        self._settings.set_value(Key.OVERLAY_SCREEN, key)
        self._placements.set(key, Placement(self._preset, QRect(self.geometry())))

    # ---- context menu ---------------------------------------------------------------------

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        show_overlay_menu(self, self._settings, self._preset, self.apply_preset, event.globalPos())
