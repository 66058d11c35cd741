"""The worker in its QThread: pipeline callbacks become signals; stop and pause are events."""

import threading

import pytest

from app.gui.messages import Remedy
from app.gui.session import SessionController, SessionState
from app.gui.worker import NO_SESSION
from tests.gui.fakes import FakePipelineFactory, status, words


@pytest.fixture
def controller(qtbot):
    made = []

    def make(factory):
        controller = SessionController(factory)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.shutdown()


def test_session_runs_in_its_own_thread_and_reports_everything(qtbot, controller):
    factory = FakePipelineFactory()
    session = controller(factory)
    received, threads = [], []
    session.words_received.connect(received.extend)
    session.loading_progressed.connect(lambda *args: threads.append(args))
    with qtbot.waitSignal(session.ready, timeout=5000):
        session.start(object())
    assert session.state is SessionState.RUNNING
    assert threads[0] == ("download", 1_350_000_000, 2_700_000_000)  # 64-bit byte counts survive
    pipeline = factory.latest
    callers = []
    pipeline.push(lambda p: callers.append(threading.current_thread()))
    with qtbot.waitSignal(session.status_changed, timeout=5000) as seen:
        pipeline.push(lambda p: p.say(words("hello", "world")))
        pipeline.push(lambda p: p.listener.on_status(status(lag_s=0.7)))
    assert seen.args[0].lag_s == 0.7
    assert [w.text for w in received] == ["hello", "world"]
    assert callers[0] is not threading.main_thread()
    with qtbot.waitSignal(session.finished, timeout=5000) as done:
        session.stop()
    assert done.args == [7]
    assert session.state is SessionState.IDLE


def test_pause_reaches_the_pipeline_as_an_event(qtbot, controller):
    factory = FakePipelineFactory()
    session = controller(factory)
    with qtbot.waitSignal(session.ready, timeout=5000):
        session.start(object())
    pipeline = factory.latest
    session.set_paused(True)
    assert session.state is SessionState.PAUSED
    with qtbot.waitSignal(session.partial_changed, timeout=5000):
        pipeline.push(lambda p: p.listener.on_partial("x"))
    session.set_paused(False)
    with qtbot.waitSignal(session.partial_changed, timeout=5000):
        pipeline.push(lambda p: p.listener.on_partial("y"))
    assert pipeline.paused_seen == [True, False]
    with qtbot.waitSignal(session.finished, timeout=5000):
        session.stop()


def test_flushed_words_arrive_before_finished(qtbot, controller):
    factory = FakePipelineFactory(flush_words=words("last", "words"))
    session = controller(factory)
    received = []
    session.words_received.connect(received.extend)
    with qtbot.waitSignal(session.ready, timeout=5000):
        session.start(object())
    with qtbot.waitSignal(session.finished, timeout=5000):
        session.stop()
    assert [w.text for w in received] == ["last", "words"]


def test_a_failing_load_is_one_sentence_and_still_finishes(qtbot, controller):
    factory = FakePipelineFactory(load_error=RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"))
    session = controller(factory)
    errors, remedies = [], []
    session.error_occurred.connect(errors.append)
    session.remedy_offered.connect(remedies.append)
    with qtbot.waitSignal(session.finished, timeout=5000) as done:
        session.start(object())
    assert done.args == [NO_SESSION]
    assert len(errors) == 1 and "\n" not in errors[0] and "GPU ran out of memory" in errors[0]
    assert remedies == [Remedy.USE_CPU.value]
    assert session.state is SessionState.IDLE


def test_stop_while_loading_skips_the_session(qtbot, controller):
    gate = threading.Event()
    factory = FakePipelineFactory(load_gate=gate)
    session = controller(factory)
    session.start(object())
    factory.latest  # the pipeline exists and is loading
    session.stop()
    assert session.state is SessionState.STOPPING
    with qtbot.waitSignal(session.finished, timeout=5000):
        gate.set()
    assert session.state is SessionState.IDLE
    assert factory.latest.released  # the loaded engine is handed back for the next Start


def test_pipeline_errors_pass_through_as_one_line(qtbot, controller):
    factory = FakePipelineFactory()
    session = controller(factory)
    with qtbot.waitSignal(session.ready, timeout=5000):
        session.start(object())
    with qtbot.waitSignal(session.error_occurred, timeout=5000) as seen:
        factory.latest.push(lambda p: p.listener.on_error("The microphone was unplugged.\nTraceback: ..."))
    assert seen.args == ["The microphone was unplugged."]
    with qtbot.waitSignal(session.finished, timeout=5000):
        session.stop()


def test_shutdown_blocks_until_the_thread_has_ended(qtbot, controller):
    # At application exit the GUI thread waits; the worker must still be able to end its thread.
    factory = FakePipelineFactory()
    session = controller(factory)
    with qtbot.waitSignal(session.ready, timeout=5000):
        session.start(object())
    thread = session._thread
    session.shutdown(timeout_ms=5000)
    assert thread.isFinished()


def test_options_follow_the_settings(settings):
    from app.gui.settings import Key
    from app.gui.worker import options_from_settings

    settings.set_value(Key.COMPUTE_DEVICE, "cpu")
    settings.set_value(Key.PRECISION, "int8")
    settings.set_value(Key.MAX_LAG_S, 5.0)
    options = options_from_settings(settings, "USB headset")
    engine = options.engine
    assert (engine.model, engine.device, engine.quantize, options.max_lag_s, options.input_device) == (
        "kyutai/stt-1b-en_fr-trfs", "cpu", "int8", 5.0, "USB headset")
    assert engine.live  # "auto" precision is chosen for live speed
    assert options_from_settings(settings, "").input_device is None
    assert engine.compile == "auto"  # the engine compiles only where the CPU would not keep up
    settings.set_value(Key.COMPILE, "always")
    assert options_from_settings(settings, "").engine.compile is True
    settings.set_value(Key.COMPILE, "never")
    assert options_from_settings(settings, "").engine.compile is False
    settings.set_value(Key.COMPUTE_DEVICE, "auto")
    assert options_from_settings(settings, "").engine.device is None  # automatic, as on the command line


def test_the_first_lag_gap_of_an_int8_cpu_engine_offers_4_bit_weights(tiny_ckpt):
    from app.gui.worker import TranscriptionWorker, _SignalListener
    from core import StreamingTranscriber

    worker = TranscriptionWorker(options=None)
    offered, said = [], []
    worker.remedy_offered.connect(offered.append)
    worker.error_occurred.connect(said.append)
    listener = _SignalListener(worker)
    engine = StreamingTranscriber.from_pretrained(tiny_ckpt, quantize="int8")
    listener.engine = lambda: engine
    listener.on_gap(0.0, 1.0, "dropped: overflow")  # not the engine's fault: no advice
    assert offered == []
    listener.on_gap(10.0, 20.0, "skipped: lag")
    listener.on_gap(40.0, 50.0, "skipped: lag")
    assert offered == [Remedy.USE_INT4.value] and len(said) == 1 and "4-bit" in said[0]
    full = _SignalListener(worker)
    float32 = StreamingTranscriber.from_pretrained(tiny_ckpt, quantize="none")
    full.engine = lambda: float32
    full.on_gap(10.0, 20.0, "skipped: lag")
    assert offered == [Remedy.USE_INT4.value]  # full precision was chosen on purpose


def test_options_take_4_bit_weights(settings):
    from app.gui.settings import Key
    from app.gui.worker import options_from_settings

    settings.set_value(Key.PRECISION, "int4")
    assert options_from_settings(settings, "").engine.quantize == "int4"
