"""User preferences: every key, its default and how it is shown, declared once.

`SCHEMA` is the single owner of defaults (vorta-style); the settings dialog is generated from it
and `Settings.value` coerces what QSettings hands back, since INI and some native backends return
every value as a string ("true", "12").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QObject, QSettings, Signal

from app.gui.qt_signals import emit

log = logging.getLogger(__name__)

MODEL_1B = "kyutai/stt-1b-en_fr-trfs"
MODEL_2_6B = "kyutai/stt-2.6b-en-trfs"


class Key(str, Enum):
    SOURCE = "audio/source"  # an app.pipeline_types.Source value: the microphone or the system's sound
    INPUT_DEVICE = "audio/input_device"  # device name; "" = the system default
    MODEL = "model/source"  # hub repo id or local checkpoint folder
    COMPUTE_DEVICE = "engine/device"
    PRECISION = "engine/precision"
    COMPILE = "engine/compile"
    MAX_LAG_S = "engine/max_lag_s"
    SAVE_AUDIO = "session/save_audio"
    OVERLAY_VISIBLE = "overlay/visible"
    OVERLAY_LINES = "overlay/lines"
    OVERLAY_FONT_FAMILY = "overlay/font_family"
    OVERLAY_FONT_SIZE = "overlay/font_size"
    OVERLAY_TEXT_COLOR = "overlay/text_color"
    OVERLAY_BACKGROUND_COLOR = "overlay/background_color"
    OVERLAY_BACKGROUND_OPACITY = "overlay/background_opacity"
    OVERLAY_OUTLINE = "overlay/outline"
    OVERLAY_SHOW_PARTIAL = "overlay/show_partial"
    OVERLAY_CLEAR_AFTER_S = "overlay/clear_after_s"
    OVERLAY_CLICK_THROUGH = "overlay/click_through"
    OVERLAY_SCREEN = "overlay/screen"  # key of the screen the overlay was last on
    WINDOW_GEOMETRY = "window/geometry"


@dataclass(frozen=True)
class Setting:
    key: Key
    default: object  # its type is the stored type: bool, int, float or str
    label: str = ""  # shown in the settings dialog; "" = not shown there (internal state)
    tooltip: str = ""
    group: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (stored value, label) for a drop-down
    minimum: float = 0
    maximum: float = 100
    kind: str = ""  # "color" or "font" where a str needs a special editor
    aliases: tuple[tuple[str, str], ...] = ()  # (old stored value, its value now) for renamed choices

    def coerce(self, raw: object) -> object:
        """`raw` as the default's type, or the default when it cannot be read as one."""
        want = type(self.default)
        try:
            if want is bool:
                value = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("true", "1", "yes", "on")
            elif want in (int, float):
                value = min(max(want(raw), want(self.minimum)), want(self.maximum))
            else:
                value = want(raw)
                value = dict(self.aliases).get(value.strip().lower(), value) if self.aliases else value
        except (TypeError, ValueError):
            log.warning("setting %s: unreadable value %r, using the default", self.key.value, raw)
            return self.default
        if self.choices and value not in {stored for stored, _ in self.choices}:
            return self.default
        return value


_CAPTIONS, _RECOGNITION = "Captions", "Recognition"
GROUPS = (_CAPTIONS, _RECOGNITION)  # the order the settings dialog shows them in

SCHEMA: dict[Key, Setting] = {s.key: s for s in (
    Setting(Key.SOURCE, "mic", "Listen to", group=_RECOGNITION,
            tooltip="The microphone, or what the computer plays: the other side of a call, a video "
                    "(Linux: the default output, followed when it changes).",
            choices=(("mic", "Microphone"), ("system", "What the computer plays"),
                     ("both", "Both sides of a call (you and the others)"))),
    Setting(Key.INPUT_DEVICE, ""),
    Setting(Key.MODEL, MODEL_1B),
    Setting(Key.COMPUTE_DEVICE, "auto", "Run the model on", group=_RECOGNITION,
            tooltip="Auto uses the GPU when there is one. Choose CPU if the GPU runs out of memory.",
            choices=(("auto", "Auto (GPU if available)"), ("cuda", "GPU"), ("cpu", "CPU"))),
    Setting(Key.PRECISION, "auto", "Precision", group=_RECOGNITION,
            tooltip="8-bit weights use a quarter of the memory and run about twice as fast on a CPU, "
                    "with slightly different results. 4-bit weights are faster again where the CPU's memory "
                    "is slow, but less precise; the first session builds their kernel (about a minute; "
                    "needs g++). Automatic picks 8-bit on a CPU, or 4-bit where the first session "
                    "measures that 8-bit cannot keep up (remembered for this computer).",
            choices=(("auto", "Automatic (8-bit on CPU, 4-bit if too slow; full on GPU)"), ("full", "Full"),
                     ("int8", "8-bit weights (smaller, faster on CPU)"),
                     ("int4", "4-bit weights (fastest on a slow CPU, less precise)"))),
    Setting(Key.COMPILE, "auto", "Compile the model for this CPU", group=_RECOGNITION,
            tooltip="Compiled, a CPU runs the model 12-40% faster, but the first session takes a minute "
                    "or two longer to start (later ones reuse the result) and a C++ compiler (g++) must "
                    "be installed; without one the model runs uncompiled. Automatic times a few frames "
                    "as the model loads and compiles only if the CPU would not keep up otherwise.",
            choices=(("auto", "Automatic (when the CPU needs it)"), ("always", "Always"), ("never", "Never")),
            # this was a checkbox: a stored "true" meant always; "false" was the old default
            aliases=(("true", "always"), ("false", "auto"))),
    Setting(Key.MAX_LAG_S, 10.0, "Skip audio when behind by more than (s)", group=_RECOGNITION,
            tooltip="If the computer cannot keep up, captions jump forward after this many seconds "
                    "of delay; the skipped stretch is marked in the transcript.",
            minimum=2, maximum=120),
    Setting(Key.SAVE_AUDIO, True, "Keep the audio of each session", group=_RECOGNITION,
            tooltip="Saves the recording next to the transcript so a session can be checked later."),
    Setting(Key.OVERLAY_VISIBLE, True),
    Setting(Key.OVERLAY_LINES, 2, "Lines", group=_CAPTIONS, minimum=1, maximum=8,
            tooltip="How many lines of captions are shown; older lines scroll off the top."),
    Setting(Key.OVERLAY_FONT_FAMILY, "Sans Serif", "Font", group=_CAPTIONS, kind="font"),
    Setting(Key.OVERLAY_FONT_SIZE, 26, "Text size (pt)", group=_CAPTIONS, minimum=10, maximum=96),
    Setting(Key.OVERLAY_TEXT_COLOR, "#ffffff", "Text colour", group=_CAPTIONS, kind="color"),
    Setting(Key.OVERLAY_BACKGROUND_COLOR, "#101010", "Background colour", group=_CAPTIONS, kind="color"),
    Setting(Key.OVERLAY_BACKGROUND_OPACITY, 70, "Background opacity (%)", group=_CAPTIONS,
            minimum=0, maximum=100, tooltip="0 shows the text alone, 100 a solid box."),
    Setting(Key.OVERLAY_OUTLINE, True, "Outline the text", group=_CAPTIONS,
            tooltip="A dark edge around each letter keeps captions readable over bright video."),
    Setting(Key.OVERLAY_SHOW_PARTIAL, True, "Show the word being recognised", group=_CAPTIONS,
            tooltip="The word still being heard appears dimmed until it is final. "
                    "Final words are never changed."),
    Setting(Key.OVERLAY_CLEAR_AFTER_S, 6.0, "Clear after silence (s)", group=_CAPTIONS,
            minimum=0, maximum=600, tooltip="0 keeps the last words on screen until new ones come."),
    Setting(Key.OVERLAY_CLICK_THROUGH, False, "Clicks pass through the captions", group=_CAPTIONS,
            tooltip="Lock the captions in place so the mouse reaches the window underneath. "
                    "Unlock from the tray icon or with Ctrl+L in the main window."),
    Setting(Key.OVERLAY_SCREEN, ""),
    Setting(Key.WINDOW_GEOMETRY, ""),
)}


class Settings(QObject):
    """Typed access to QSettings; `changed(key)` fires after every write so views can follow."""

    changed = Signal(object)  # Key

    def __init__(self, store: QSettings | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._store = store if store is not None else QSettings()

    def value(self, key: Key) -> object:
        spec = SCHEMA[key]
        return spec.coerce(self._store.value(key.value, spec.default))

    def set_value(self, key: Key, value: object) -> None:
        value = SCHEMA[key].coerce(value)
        if self.value(key) == value and self._store.contains(key.value):
            return
        self._store.setValue(key.value, value)
        emit(self.changed, key)

    def reset(self, key: Key) -> None:
        self._store.remove(key.value)
        emit(self.changed, key)

    # Free-form entries outside the schema (per-screen overlay placement), kept under one group.
    def raw(self, name: str, default: str = "") -> str:
        value = self._store.value(name, default)
        return value if isinstance(value, str) else default

    def set_raw(self, name: str, value: str) -> None:
        self._store.setValue(name, value)

    def sync(self) -> None:
        self._store.sync()
