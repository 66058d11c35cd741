"""The main window: pick a microphone and a model, press Start, read the transcript as it grows.

It assembles the parts and routes the session's signals to them; each part owns its own job
(controls, transcript, status bar, overlay, history, export). Closing while a session records does
not block: the close waits for the session to flush and save, then happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import QMainWindow, QVBoxLayout, QWidget

from app.gui.actions import AppActions
from app.gui.controls import SessionControls
from app.gui.device_picker import DeviceLister, InputDevicePicker, system_devices
from app.gui.error_box import ErrorReporter
from app.gui.exporting import Exporter, session_export
from app.gui.history import HistoryWindow
from app.gui.messages import Remedy
from app.gui.model_picker import FolderChooser, ModelPicker, choose_folder
from app.gui.overlay import CaptionOverlay
from app.gui.placement import Preset
from app.gui.recovery import RecoveryBanner
from app.gui.session import SessionController, SessionState
from app.gui.settings import Key, Settings
from app.gui.settings_dialog import SettingsDialog
from app.gui.source_picker import SourcePicker
from app.gui.status_bar import SessionStatusBar
from app.gui.transcript_view import TranscriptView, clock
from app.gui.tray import make_tray
from app.gui.worker import NO_SESSION, options_from_settings
from app.audio.source import Source

log = logging.getLogger(__name__)

OptionsFactory = Callable[[Settings, str], Any]  # (settings, input device name) -> PipelineOptions
_STATE_MESSAGES = {
    SessionState.LOADING: "Loading the model…",
    SessionState.RUNNING: "Listening",
    SessionState.PAUSED: "Paused: nothing is captioned until you resume",
    SessionState.STOPPING: "Saving the last words…",
}


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, journal: Any | None, *, controller: SessionController | None = None,
                 device_lister: DeviceLister = system_devices, folder_chooser: FolderChooser = choose_folder,
                 exporter: Exporter | None = None, options_factory: OptionsFactory = options_from_settings,
                 icon: QIcon | None = None):
        super().__init__()
        self.setWindowTitle("Surtitle")
        self.resize(880, 600)
        self.settings, self.journal = settings, journal
        self.controller = controller or SessionController(parent=self)
        self.exporter = exporter or Exporter()
        self._options_factory = options_factory
        self._remedy = Remedy.NONE
        self._close_when_finished = False
        self._last_session_id = NO_SESSION
        self._live_words: list = []  # the live session's words, for export when there is no journal
        self.history: HistoryWindow | None = None

        self.commands = AppActions(self)
        self.sources = SourcePicker()
        self.devices = InputDevicePicker(device_lister)
        self.models = ModelPicker(folder_chooser)
        self.controls = SessionControls(self.commands, self.sources, self.devices, self.models)
        self.banner = RecoveryBanner(journal) if journal is not None else None
        self.transcript = TranscriptView()
        self.status = SessionStatusBar()
        self.setStatusBar(self.status)
        self.overlay = CaptionOverlay(settings)
        self.errors = ErrorReporter(self, self.on_errors_remedy_chosen)
        self._build_layout()
        self.commands.fill_menu_bar(self.menuBar(), self.on_position_chosen)
        self.tray = make_tray(self.commands, icon or QIcon(), self)
        self._connect()
        self._restore()
        self.on_controller_state_changed(SessionState.IDLE)

    # ---- construction -----------------------------------------------------------------------

    def _build_layout(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.controls)
        if self.banner is not None:
            layout.addWidget(self.banner)
        layout.addWidget(self.transcript, 1)
        self.setCentralWidget(central)

    def _connect(self) -> None:
        a, c = self.commands, self.controller
        a.start.triggered.connect(self.on_start_triggered)
        a.pause.toggled.connect(self.on_pause_toggled)
        a.stop.triggered.connect(self.controller.stop)
        a.show_overlay.toggled.connect(lambda on: self.settings.set_value(Key.OVERLAY_VISIBLE, on))
        a.click_through.toggled.connect(lambda on: self.settings.set_value(Key.OVERLAY_CLICK_THROUGH, on))
        a.export.triggered.connect(self.on_export_triggered)
        a.history.triggered.connect(self.on_history_triggered)
        a.settings.triggered.connect(self.on_settings_triggered)
        a.show_window.triggered.connect(self.on_show_window_triggered)
        a.quit.triggered.connect(self.on_quit_triggered)
        c.state_changed.connect(self.on_controller_state_changed)
        c.loading_progressed.connect(self.controls.show_loading)
        c.ready.connect(self.on_controller_ready)
        c.words_received.connect(self.on_controller_words_received)
        c.partial_changed.connect(self.overlay.set_partial)
        c.status_changed.connect(self.on_controller_status_changed)
        c.gap_recorded.connect(self.on_controller_gap_recorded)
        c.remedy_offered.connect(self.on_controller_remedy_offered)
        c.error_occurred.connect(self.on_controller_error_occurred)
        c.finished.connect(self.on_controller_finished)
        self.sources.source_chosen.connect(lambda value: self.settings.set_value(Key.SOURCE, value))
        self.devices.device_chosen.connect(lambda name: self.settings.set_value(Key.INPUT_DEVICE, name))
        self.models.model_chosen.connect(lambda model: self.settings.set_value(Key.MODEL, model))
        self.models.folder_rejected.connect(self.errors.show)
        self.settings.changed.connect(self.on_settings_changed)
        if self.banner is not None:
            self.banner.history_requested.connect(self.on_history_triggered)
            self.banner.recovered.connect(lambda _ids: self.history and self.history.refresh())

    def _restore(self) -> None:
        geometry = self.settings.value(Key.WINDOW_GEOMETRY)
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(str(geometry).encode()))
        self.sources.select(Source(self.settings.value(Key.SOURCE)))
        self.devices.select_name(str(self.settings.value(Key.INPUT_DEVICE)))
        self.models.select_model(str(self.settings.value(Key.MODEL)))
        for key in (Key.OVERLAY_VISIBLE, Key.OVERLAY_CLICK_THROUGH):
            self.on_settings_changed(key)
        self.overlay.follow_visibility_setting()
        if self.banner is not None:
            self.banner.check()
        if self.journal is None:
            self.commands.history.setEnabled(False)
            self.commands.history.setToolTip("History is unavailable: the session journal could not be opened.")

    # ---- session ----------------------------------------------------------------------------

    def on_start_triggered(self) -> None:
        if self.controller.is_active:
            return
        if Source.MICROPHONE in self.sources.selected().parts and not self.devices.has_devices:
            self.errors.show("No microphone found: plug one in (the list updates by itself) and press "
                             "Start again.", Remedy.CHOOSE_INPUT)
            return
        options = self._options_factory(self.settings, self.devices.selected_name())
        self.status.set_max_lag(float(getattr(options, "max_lag_s", 10.0)))
        self._live_words = []
        self.transcript.clear()
        self.transcript.set_empty_message("Getting ready…", "The model loads at the first Start and then "
                                          "stays loaded; the first time it is also downloaded.")
        self.overlay.clear()
        self.controller.start(options)

    def on_pause_toggled(self, paused: bool) -> None:
        self.controller.set_paused(paused)

    def on_controller_state_changed(self, state: SessionState) -> None:
        a, active = self.commands, state is not SessionState.IDLE
        a.start.setEnabled(not active)
        a.pause.setEnabled(state in (SessionState.RUNNING, SessionState.PAUSED))
        a.pause.setText("Resume" if state is SessionState.PAUSED else "Pause")
        a.pause.blockSignals(True)
        a.pause.setChecked(state is SessionState.PAUSED)
        a.pause.blockSignals(False)
        a.stop.setEnabled(state in (SessionState.LOADING, SessionState.RUNNING, SessionState.PAUSED))
        a.move_start_stop_key(active)
        self._enable_input_pickers(active)
        self.devices.set_scanning(not active)  # re-scanning PortAudio would disturb the open stream
        self.models.setEnabled(not active)
        if state is not SessionState.LOADING:
            self.controls.hide_loading()
        if active:
            self.status.showMessage(_STATE_MESSAGES[state])
        self.setWindowTitle("Surtitle" if not active else f"Surtitle · {_STATE_MESSAGES[state].split(':')[0]}")

    def on_controller_ready(self, info: Any) -> None:
        self._last_session_id = self.controller.session_id
        self.status.set_model_delay(float(getattr(info, "delay_s", 0.5)))
        self.transcript.set_empty_message("Listening…", "Speak: words appear here moments after they are "
                                          "spoken, and are never changed afterwards.")
        if self.history is not None:
            self.history.set_live_session(self.controller.session_id)
            self.history.refresh()

    def on_controller_words_received(self, words: list) -> None:
        self._live_words.extend(words)
        self.transcript.append_words(words)
        self.overlay.add_words([w.text for w in words])

    def on_controller_status_changed(self, status: Any) -> None:
        self.status.show_status(status)
        self.controls.meter.set_level(float(status.level_dbfs))

    def on_controller_gap_recorded(self, start_s: float, end_s: float, reason: str) -> None:
        self.transcript.add_note(f"[{clock(start_s)}–{clock(end_s)} not captioned: {reason}]")

    def on_controller_remedy_offered(self, remedy: str) -> None:
        self._remedy = Remedy(remedy)

    def on_controller_error_occurred(self, message: str) -> None:
        remedy, self._remedy = self._remedy, Remedy.NONE
        self.errors.show(message, remedy)

    def on_controller_finished(self, session_id: int) -> None:
        self.controls.meter.reset()
        if session_id != NO_SESSION:
            self._last_session_id = session_id
            count = len(self._live_words)
            self.status.showMessage(f"Session saved ({count} word{'s' if count != 1 else ''}): "
                                    "export it now, or find it later in History.", 15_000)
        self.transcript.set_empty_message("Press Start to caption your microphone",
                                          "Nothing was said in the last session.")
        if self.history is not None:
            self.history.set_live_session(None)
            self.history.refresh()
        if self._close_when_finished:
            self.close()

    def on_errors_remedy_chosen(self, remedy: Remedy) -> None:
        if remedy is Remedy.USE_CPU:
            self.settings.set_value(Key.COMPUTE_DEVICE, "cpu")
            self.status.showMessage("The model will run on the CPU: press Start again.", 15_000)
        elif remedy is Remedy.USE_LOCAL_FOLDER:
            self.models.browse()
        elif remedy is Remedy.USE_INT4:
            self.settings.set_value(Key.PRECISION, "int4")
            self.status.showMessage("4-bit weights from the next session: stop and press Start again.", 15_000)
        elif remedy is Remedy.CHOOSE_INPUT:
            self.devices.refresh()
            self.devices.setFocus()
            self.devices.showPopup()

    # ---- other commands ---------------------------------------------------------------------

    def on_export_triggered(self) -> None:
        """Export the live session, or the last one; from the journal, like every export."""
        session_id = self.controller.session_id if self.controller.is_active else self._last_session_id
        found = session_export(self.journal, session_id) if self.journal is not None else None
        title, words, meta = found or ("transcript", list(self._live_words), {"title": "Live session"})
        if not words:
            self.errors.show("There is nothing to export yet: start a session, or open a past one in History.")
            return
        path = self.exporter.export(self, title, words, meta)
        if path:
            self.status.showMessage(f"Exported to {path}", 15_000)

    def on_history_triggered(self) -> None:
        if self.journal is None:
            return
        if self.history is None:
            self.history = HistoryWindow(self.journal, self.exporter, self)
            self.history.set_live_session(self.controller.session_id if self.controller.is_active else None)
        self.history.refresh()
        self.history.show()
        self.history.raise_()
        self.history.activateWindow()

    def on_settings_triggered(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def on_position_chosen(self, preset: Preset) -> None:
        self.settings.set_value(Key.OVERLAY_VISIBLE, True)
        self.overlay.apply_preset(preset)

    def _enable_input_pickers(self, active: bool) -> None:
        self.sources.setEnabled(not active)
        hears_microphone = Source.MICROPHONE in self.sources.selected().parts
        self.devices.setEnabled(not active and hears_microphone and self.devices.has_devices)

    def on_settings_changed(self, key: Key) -> None:
        value = self.settings.value(key)
        if key is Key.SOURCE:
            self.sources.select(Source(value))
            self._enable_input_pickers(self.controller.is_active)
        action = {Key.OVERLAY_VISIBLE: self.commands.show_overlay,
                  Key.OVERLAY_CLICK_THROUGH: self.commands.click_through}.get(key)
        if action is not None and action.isChecked() != bool(value):
            action.blockSignals(True)
            action.setChecked(bool(value))
            action.blockSignals(False)

    def on_show_window_triggered(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def on_quit_triggered(self) -> None:
        self.close()  # the app quits with its last window, once any session has saved

    # ---- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.is_active:
            # Never block the GUI: ask the session to end, and close once it has saved its last words.
            event.ignore()
            self._close_when_finished = True
            self.controller.stop()
            self.status.showMessage("Saving the last words before closing…")
            return
        self.settings.set_value(Key.WINDOW_GEOMETRY, bytes(self.saveGeometry().toBase64()).decode())
        self.settings.sync()
        self.overlay.close()
        if self.history is not None:
            self.history.close()
        if self.tray is not None:
            self.tray.hide()
        event.accept()
