"""The main window with a fake pipeline: a whole session, pause, errors, export, closing."""

from PySide6.QtCore import Qt

from app.gui.actions import START_STOP_KEY
from app.gui.messages import Remedy
from app.gui.session import SessionState
from app.gui.settings import Key
from app.journal import Journal
from tests.gui.conftest import SaveTo
from tests.gui.fakes import status, words


def start(qtbot, window):
    with qtbot.waitSignal(window.controller.ready, timeout=5000):
        window.commands.start.trigger()


def stop(qtbot, window):
    with qtbot.waitSignal(window.controller.finished, timeout=5000):
        window.commands.stop.trigger()


def test_newcomer_sees_what_to_do(make_window):
    window = make_window()
    assert window.transcript.is_empty
    assert window.transcript._empty.title.text() == "Press Start to caption your microphone"
    assert window.commands.start.isEnabled() and not window.commands.stop.isEnabled()
    assert not window.commands.pause.isEnabled()
    for widget in (window.devices, window.models, window.controls.meter):
        assert widget.toolTip()
    assert window.models.selected_model() == "kyutai/stt-1b-en_fr-trfs"


def test_whole_session_words_reach_transcript_and_overlay(qtbot, make_window, pipelines, journal):
    window = make_window()
    start(qtbot, window)
    assert window.controller.state is SessionState.RUNNING
    assert not window.devices.isEnabled() and not window.models.isEnabled()
    pipeline = pipelines.latest
    with qtbot.waitSignal(window.controller.words_received, timeout=5000):
        pipeline.push(lambda p: p.say(words("Hello", "there.")))
    with qtbot.waitSignal(window.controller.status_changed, timeout=5000):
        pipeline.push(lambda p: p.listener.on_partial("gen"))
        pipeline.push(lambda p: p.listener.on_status(status(lag_s=0.6, rtf=0.42, dropped_s=0.0, level_dbfs=-12)))
    assert window.transcript.plain_text() == "00:00  Hello there."
    lines = window.overlay.caption_lines()
    assert lines[-1].final == "Hello there." and lines[-1].partial == "gen"
    assert window.status.lag.text() == "Lag 0.6 s"
    assert window.status.rtf.text() == "Real-time factor 0.42"
    assert window.controls.meter.level_db == -12
    stop(qtbot, window)
    assert window.controller.state is SessionState.IDLE
    assert window.commands.start.isEnabled()
    assert "Session saved (2 words)" in window.status.currentMessage()
    assert [w.text for w in journal.words(pipeline.session_id)] == ["Hello", "there."]


def test_pause_and_resume(qtbot, make_window, pipelines):
    window = make_window()
    start(qtbot, window)
    window.commands.pause.trigger()
    assert window.controller.state is SessionState.PAUSED
    assert window.commands.pause.text() == "Resume"
    with qtbot.waitSignal(window.controller.partial_changed, timeout=5000):
        pipelines.latest.push(lambda p: p.listener.on_partial(""))
    window.commands.pause.trigger()
    assert window.controller.state is SessionState.RUNNING
    assert pipelines.latest.paused_seen == [True]
    stop(qtbot, window)


def test_ctrl_r_starts_then_stops(qtbot, make_window):
    window = make_window()
    assert window.commands.start.shortcut().toString() == START_STOP_KEY
    start(qtbot, window)
    assert window.commands.stop.shortcut().toString() == START_STOP_KEY
    assert window.commands.start.shortcut().isEmpty()
    stop(qtbot, window)
    assert window.commands.start.shortcut().toString() == START_STOP_KEY


def test_skipped_audio_is_marked_in_the_transcript(qtbot, make_window, pipelines):
    window = make_window()
    start(qtbot, window)
    with qtbot.waitSignal(window.controller.gap_recorded, timeout=5000):
        pipelines.latest.push(lambda p: p.listener.on_gap(12.0, 15.5, "the computer fell behind"))
    assert "[00:12–00:15 not captioned: the computer fell behind]" in window.transcript.plain_text()
    stop(qtbot, window)


def test_close_while_recording_waits_for_the_session(qtbot, make_window, pipelines, journal):
    pipelines.kwargs["flush_words"] = words("goodbye")
    window = make_window()
    window.show()
    start(qtbot, window)
    with qtbot.waitSignal(window.controller.finished, timeout=5000):
        assert window.close() is False  # not yet: the session is flushing
        assert window.isVisible()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert [w.text for w in journal.words(pipelines.latest.session_id)] == ["goodbye"]
    assert journal.session(pipelines.latest.session_id).ended_at is not None


def test_load_failure_is_one_line_with_a_remedy(qtbot, make_window, pipelines, settings):
    pipelines.kwargs["load_error"] = MemoryError("CUDA out of memory.\nTraceback (most recent call last): ...")
    window = make_window()
    with qtbot.waitSignal(window.controller.finished, timeout=5000):
        window.commands.start.trigger()
    message = window.errors.last_message
    assert "GPU ran out of memory" in message and "\n" not in message and "Traceback" not in message
    assert window.status.currentMessage() == message
    remedy = [b for b in window.errors.dialog.buttons() if b.text() == "Use the CPU"]
    assert remedy
    remedy[0].click()
    assert settings.value(Key.COMPUTE_DEVICE) == "cpu"


def test_no_microphone_says_so_instead_of_starting(make_window):
    window = make_window(device_lister=lambda: [])
    assert window.devices.currentText() == "No microphone found"
    window.commands.start.trigger()
    assert not window.controller.is_active
    assert window.errors.last_message.startswith("No microphone found")


def test_what_the_computer_plays_is_captioned_without_a_microphone(qtbot, make_window, settings, pipelines):
    from app.audio.source import Source

    window = make_window(device_lister=lambda: [])
    assert window.sources.currentText() == "Microphone"  # the default
    window.sources.setCurrentIndex(window.sources.findData(Source.SYSTEM.value))
    window.sources.activated.emit(window.sources.currentIndex())
    assert settings.value(Key.SOURCE) == "system"
    assert not window.devices.isEnabled()  # no microphone is listened to: nothing to pick there
    window.commands.start.trigger()  # no microphone, and it starts all the same
    assert pipelines.latest.options.source is Source.SYSTEM
    qtbot.waitUntil(lambda: window.controller.is_active, timeout=5000)
    assert not window.sources.isEnabled()  # not while a session runs
    window.controller.stop()
    qtbot.waitUntil(lambda: not window.controller.is_active, timeout=5000)
    assert window.sources.isEnabled() and make_window().sources.currentText() == "What the computer plays"


def test_both_sides_of_a_call_need_the_microphone_too(make_window, settings, pipelines):
    from app.audio.source import Source

    settings.set_value(Key.SOURCE, "both")
    window = make_window()
    assert window.sources.selected() is Source.BOTH and window.devices.isEnabled()  # its microphone is picked
    window.commands.start.trigger()
    assert pipelines.latest.options.source is Source.BOTH
    assert not make_window(device_lister=lambda: []).devices.isEnabled()


def test_second_error_reuses_the_open_dialog(make_window):
    window = make_window()
    window.errors.show("First problem.")
    dialog = window.errors.dialog
    window.errors.show("Second problem.")
    assert window.errors.dialog is dialog and dialog.text() == "Second problem."


def test_export_of_the_live_session_reads_the_journal(qtbot, make_window, pipelines, tmp_path):
    target = tmp_path / "meeting.srt"
    chooser = SaveTo((str(target), "SubRip subtitles (*.srt)"))
    window = make_window(exporter=__import__("app.gui.exporting", fromlist=["Exporter"]).Exporter(chooser))
    start(qtbot, window)
    with qtbot.waitSignal(window.controller.words_received, timeout=5000):
        pipelines.latest.push(lambda p: p.say(words("Live", "export", "works.")))
    window.commands.export.trigger()
    assert target.read_text().startswith("1\n00:00:00,000 --> ")
    assert "Live export works." in target.read_text()
    stop(qtbot, window)


def test_overlay_and_click_through_actions_follow_settings(qtbot, make_window, settings):
    window = make_window()
    assert window.overlay.isVisible()
    window.commands.show_overlay.trigger()
    assert not window.overlay.isVisible() and settings.value(Key.OVERLAY_VISIBLE) is False
    window.commands.show_overlay.trigger()
    assert window.overlay.isVisible()
    window.commands.click_through.trigger()
    assert window.overlay.is_click_through()
    # The way back without the mouse reaching the overlay: the application-wide shortcut.
    assert window.commands.click_through.shortcut().toString() == "Ctrl+L"
    assert window.commands.click_through.shortcutContext() == Qt.ShortcutContext.ApplicationShortcut
    window.commands.click_through.trigger()
    assert not window.overlay.is_click_through()
    settings.set_value(Key.OVERLAY_CLICK_THROUGH, True)  # e.g. from the overlay's own menu
    assert window.commands.click_through.isChecked()


def test_chosen_device_and_model_are_remembered(qtbot, make_window, settings):
    window = make_window()
    window.devices.setCurrentIndex(window.devices.findData("USB headset"))
    window.devices.activated.emit(window.devices.currentIndex())
    window.models.setCurrentIndex(1)
    window.models.activated.emit(1)
    window.close()
    again = make_window()
    assert again.devices.selected_name() == "USB headset"
    assert again.models.selected_model() == "kyutai/stt-2.6b-en-trfs"
    assert settings.value(Key.MODEL) == "kyutai/stt-2.6b-en-trfs"


def test_interrupted_sessions_are_offered_for_recovery(qtbot, make_window, journal, monkeypatch):
    crashed = Journal(journal.path)  # another run of the app, which never ended its session
    sid = crashed.start_session("kyutai/stt-1b-en_fr-trfs", "mic")
    crashed.add_words(sid, words("saved", "before", "the", "crash"))
    crashed.commit()
    monkeypatch.setattr("app.journal._process_alive", lambda pid: False)  # as if that process had died
    window = make_window()
    assert window.banner.isVisibleTo(window)
    assert "interrupted" in window.banner.message.text()
    window.banner.recover_button.click()
    assert journal.session(sid).ended_at is not None
    assert "Recovered 1 session" in window.banner.message.text()


def test_remedy_choose_input_opens_the_device_list(make_window):
    plugged = []
    window = make_window(device_lister=lambda: list(plugged))
    window.commands.start.trigger()  # no microphone: the error offers to choose one
    plugged.append("USB headset")  # plugged in while the error shows, before the next rescan
    [choose] = [b for b in window.errors.dialog.buttons() if b.text() == "Choose a microphone"]
    choose.click()
    devices = window.devices
    assert [devices.itemText(i) for i in range(devices.count())] == ["System default microphone", "USB headset"]
    assert devices.isEnabled() and devices.view().isVisible()  # open, to pick from


def test_compiling_shows_a_busy_bar_that_says_so(make_window):
    window = make_window()
    window.controls.show_loading("weights", 5, 10)
    assert window.controls.progress.format() == "Loading the model… 50%"
    window.controls.show_loading("compile", 0, 0)
    bar = window.controls.progress
    assert bar.format().startswith("Compiling the model for this CPU") and (bar.minimum(), bar.maximum()) == (0, 0)
    window.controls.show_loading("kernel", 0, 0)
    assert bar.format().startswith("Preparing the 4-bit kernel") and (bar.minimum(), bar.maximum()) == (0, 0)
    window.controls.show_loading("int4", 82, 64)  # "auto" found int8 too slow here
    assert bar.format().startswith("8-bit weights are too slow on this CPU (82 ms a frame of 64)")
    assert (bar.minimum(), bar.maximum()) == (0, 0)


def test_the_4_bit_remedy_sets_the_precision_for_the_next_session(make_window, settings):
    window = make_window()
    window.on_errors_remedy_chosen(Remedy.USE_INT4)
    assert settings.value(Key.PRECISION) == "int4"
    assert "4-bit" in window.status.currentMessage()


def test_the_transcript_opens_each_turn_with_who_speaks(qtbot):
    from app.gui.transcript_view import TranscriptView
    from core.words import Word

    view = TranscriptView()
    qtbot.addWidget(view)
    view.append_words([Word("can", 0.0, 0.3, "You"), Word("you", 0.4, 0.6, "You")])
    view.append_words([Word("yes", 0.8, 1.0, "Others"), Word("we", 1.1, 1.3, "Others")])
    view.append_words([Word("good", 1.5, 1.8, "You")])
    assert view.plain_text().splitlines() == ["00:00  You: can you", "00:00  Others: yes we", "00:01  You: good"]
