"""The live session: microphone ring → resampler → engine → journal (+ session audio), in any thread.

One object owns the whole path (design note 2): the Qt worker runs it in a QThread and turns the
listener calls into signals; `surtitle live` runs it in the terminal. Nothing here knows Qt.

    pipeline = LivePipeline(PipelineOptions(EngineOptions("kyutai/stt-1b-en_fr-trfs", live=True)), listener)
    pipeline.run(stop_event)        # blocks; returns the session id once stop_event is set

`run` opens the input device at its own rate (first: a missing microphone is said at once, not
after the model has loaded), loads the model if `load` was not called, starts a journal session,
then loops: read the ring (waking at least every 0.1 s to look at stop, pause and
the device), hand the samples to the SessionRecorder (resample, save, transcribe, journal), commit
the journal when due, report status about twice a second. On stop it transcribes what the ring
still holds, flushes the engine so the last words are kept, and ends the session. How samples
become session time, gaps and words is `app.session_recorder`'s job.

A session that hears both sides of a call has two inputs, the microphone and what the computer
plays, each with its own capture and recorder (timeline, gaps, pauses), their words labelled "You"
and "Others"; one engine steps the two streams as one batch (app.engine_lanes), and the session
audio is one stereo file, left the microphone, right the computer.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from app.audio.capture import AudioCapture
from app.audio.level import SILENT, Level
from app.audio.source import Source
from app.audio.system_audio import SystemAudioCapture
from app.engine_lanes import EngineLanes
from app.export import to_json
from app.journal import Journal, JournalError
from app.model_loading import Transcriber, TranscriberFactory, load_transcriber
from app.output_file import write_text_atomic
from app.paths import AUDIO_FOLDER
from app.pipeline_types import PipelineInfo, PipelineListener, PipelineOptions, PipelineStatus, SilentListener
from app.session_audio import SessionAudio, SessionAudioError, SharedRecording, new_audio_path
from app.session_recorder import SessionRecorder
from core.errors import CheckpointError, SurtitleError
from core.words import Word

__all__ = ["LivePipeline", "PipelineInfo", "PipelineListener", "PipelineOptions", "PipelineStatus", "Source"]

log = logging.getLogger(__name__)

# Most audio handed on per pass: bounded work between looks at stop and status. An engine that has
# fallen behind gets this much at once, and its codec's cost per frame falls with the frames per
# call (stt-1b int4, 2 AMD cores: 27.5 ms a frame for 0.5 s, 15.8 for 1 s, 14.8 for 2 s).
READ_MAX_S = 1.0
READ_MIN_S = 0.02  # wake for this much at least: a few callbacks' worth, well under an engine frame
READ_TIMEOUT_S = 0.1  # the loop looks at stop, pause and the device at least this often
RING_MARGIN_S = 20.0  # ring room beyond max_lag_s, so one slow engine call loses no samples
JOURNAL_REMINDER_S = 60.0  # while the journal cannot be written, say so again this often (not every commit)

CaptureFactory = Callable[[PipelineOptions, Source], AudioCapture]  # (options, MICROPHONE or SYSTEM)
LABELS = {Source.MICROPHONE: "You", Source.SYSTEM: "Others"}  # speakers, where a session hears both


def default_capture(options: PipelineOptions, source: Source) -> AudioCapture:
    ring_s = options.max_lag_s + RING_MARGIN_S
    if source is Source.SYSTEM:
        return SystemAudioCapture(ring_s=ring_s)
    return AudioCapture(options.input_device, ring_s=ring_s)


@dataclass
class _Input:
    """One thing a session hears: its capture, and the recorder that keeps its timeline and words."""

    capture: AudioCapture
    label: str  # the speaker its words are said by; "" when a session hears one thing only
    recorder: SessionRecorder | None = None


class LivePipeline:
    def __init__(self, options: PipelineOptions, listener: PipelineListener | None = None, *,
                 capture_factory: CaptureFactory = default_capture,
                 transcriber_factory: TranscriberFactory = load_transcriber,
                 journal: Journal | None = None, clock: Callable[[], float] = time.monotonic):
        self.options = options
        self.listener = listener or SilentListener()
        self.journal = journal  # None: the user's journal, opened by run()
        self.transcriber: Transcriber | None = None
        self.session_id: int | None = None
        model = options.engine.model
        self.model_name = Path(model).name if Path(model).expanduser().is_dir() else model
        self._capture_factory = capture_factory
        self._transcriber_factory = transcriber_factory
        self._inputs: list[_Input] = []
        self._clock = clock
        self._journal_outage: _Outage | None = None

    # -- public -----------------------------------------------------------------------------------

    def open_input(self) -> None:
        """Find and open the input devices (not started yet); raises CaptureError. Cheap, so drivers call
        it before `load`: no one should wait for a model to load to hear there is no microphone."""
        if self._inputs:
            return
        sources = self.options.source.parts
        for source in sources:
            capture = self._capture_factory(self.options, source)
            try:
                capture.open()
            except BaseException:
                self._close_inputs()
                raise
            self._inputs.append(_Input(capture, LABELS[source] if len(sources) > 1 else ""))

    def load(self) -> None:
        """Load the model once, reporting through on_loading; raises CheckpointError or ConfigError,
        and then lets go of the input device `open_input` took: the session will not begin."""
        if self.transcriber is not None:
            return
        report = lambda stage, done, total: self._notify("on_loading", stage, done, total)  # noqa: E731
        try:
            self.transcriber = self._transcriber_factory(self.options.engine, report)
        except BaseException as exc:
            self._close_inputs()
            if isinstance(exc, OSError):
                raise CheckpointError(f"cannot load model {self.options.engine.model!r}: {_first_line(exc)}") from exc
            raise

    def level(self) -> Level:
        """The input level now, of the loudest input (any thread: a GUI meter polls this)."""
        levels = [i.capture.level() for i in list(self._inputs)]
        return max(levels, key=lambda level: level.rms_dbfs, default=SILENT)

    def run(self, stop: threading.Event, pause: threading.Event | None = None) -> int | None:
        """Record until `stop` is set; returns the session id (None if no session was started). Once.

        Never raises: every failure reaches on_error as one line, and on_finished always comes
        last. While `pause` is set, audio is neither kept nor transcribed.
        """
        self.session_id, self._journal_outage = None, None
        self._paused, self._device_lost = False, False
        self._rtf, self._next_status = 0.0, 0.0
        healthy = True  # no unexpected failure: the engine may serve another session
        try:
            self.open_input()
            self.load()
            if not stop.is_set():
                self._start()
                self._loop(stop, pause)
        except SurtitleError as exc:
            self._notify("on_error", str(exc))
        except Exception as exc:  # a bug: logged in full, shown in one line
            healthy = False
            log.exception("live pipeline failed")
            self._notify("on_error", f"unexpected {type(exc).__name__}: {_first_line(exc)}")
        finally:
            healthy = self._finish() and healthy
            self._give_back_engine(healthy)
            self._notify("on_finished", self.session_id)
        return self.session_id

    def release(self) -> None:
        """Done without a session (stopped while loading): the input is closed and the engine goes
        back to a factory that keeps it."""
        self._close_inputs()
        self._give_back_engine(healthy=True)

    def _close_inputs(self) -> None:
        for i in self._inputs:
            i.capture.close()

    def _give_back_engine(self, healthy: bool) -> None:
        """Hand the engine back to a factory that keeps it between sessions (app.model_loading.KeptEngine)."""
        give_back = getattr(self._transcriber_factory, "give_back", None)
        if give_back is not None and self.transcriber is not None:
            engine, self.transcriber = self.transcriber, None
            give_back(engine, self.options.engine, healthy)

    # -- lifecycle --------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.journal is None:
            self.journal = Journal()
        inputs = self._inputs
        for i in inputs:
            i.capture.start()
        engines = [self.transcriber] if len(inputs) == 1 else EngineLanes(self.transcriber, len(inputs)).lanes
        audio = self._new_audio(len(inputs))
        for k, (i, engine) in enumerate(zip(inputs, engines)):
            channel = audio if audio is None or len(inputs) == 1 else audio.channel(k)  # left: the microphone
            i.recorder = SessionRecorder(engine, i.capture.samplerate, channel, _InputSink(self, i.label))
        audio_path = audio.path if audio else None
        device = " + ".join(i.capture.device_name for i in inputs)
        self.session_id = self.journal.start_session(self.options.engine.model, device, self.options.title,
                                                     audio_path)
        self._next_status = time.monotonic() + self.options.status_interval_s
        self._notify("on_ready", PipelineInfo(self.session_id, self.model_name, device, inputs[0].capture.samplerate,
                                              self.journal.path, audio_path, self.transcriber.delay_s))

    def _new_audio(self, channels: int) -> SessionAudio | SharedRecording | None:
        if not self.options.save_audio:
            return None
        path = new_audio_path(self.journal.path.parent / AUDIO_FOLDER)  # beside whichever journal is used
        try:
            if channels == 1:
                return SessionAudio(path, self.transcriber.sample_rate)
            return SharedRecording(path, self.transcriber.sample_rate, channels)
        except SessionAudioError as exc:
            self._notify("on_error", f"{exc}; recording captions without audio")
            return None

    def _loop(self, stop: threading.Event, pause: threading.Event | None) -> None:
        max_lag = self.options.max_lag_s
        reads = [(round(READ_MAX_S * i.capture.samplerate), round(READ_MIN_S * i.capture.samplerate))
                 for i in self._inputs]
        while not stop.is_set():
            if any(i.capture.lost for i in self._inputs):
                self._device_lost = True
                return
            if pause is not None and pause.is_set() != self._paused:
                self._paused = pause.is_set()
                for i in self._inputs:
                    if self._paused:
                        i.recorder.pause(i.capture.ring, max_lag)
                    else:
                        i.recorder.resume(i.capture.ring)
                self._status(force=True)  # tells the driver the pause (or resume) took effect
            for k, (i, (max_read, min_read)) in enumerate(zip(self._inputs, reads)):
                ring, recorder = i.capture.ring, i.recorder
                if not self._paused:
                    recorder.catch_up(ring, max_lag)
                # the first input paces the loop; the others give what they have
                timeout = READ_TIMEOUT_S if k == 0 else 0.0
                start, block = ring.read(max_read, timeout=timeout, min_samples=min_read if k == 0 else 1)
                if self._paused:
                    recorder.discard(start, block)
                elif len(block):
                    recorder.handle(start, block)
            self._journal_call(self.journal.commit_if_due)
            self._status()

    def _finish(self) -> bool:
        """Stop capture, transcribe what it captured, flush the engine, end the session.

        Returns False if the engine failed unexpectedly on the way."""
        sid = self.session_id
        healthy = True
        self._close_inputs()  # no more samples; the rings keep what they have
        started = [i for i in self._inputs if i.recorder is not None]
        if started and sid is None:  # failed before the session began
            self._close_audio(started, keep=False)
        elif started:
            for i in started:
                try:
                    i.recorder.finish(i.capture.ring, self.options.max_lag_s, self._paused)
                except Exception as exc:  # what is journaled already must still be ended
                    healthy = False
                    log.exception("finishing the session failed")
                    self._notify("on_error", f"the last words could not be transcribed ({type(exc).__name__}: "
                                             f"{_first_line(exc)})")
            if self._device_lost:
                lost = [i for i in started if i.capture.lost] or started
                for i in lost:
                    end = i.recorder.session_s
                    self._journal_call(self.journal.add_gap, sid, end, end, "device lost")
                names = " and ".join(repr(i.capture.device_name) for i in lost)
                self._notify("on_error", f"input device {names} disappeared; the session so far is saved")
            self._status(force=True)  # the final numbers
            self._close_audio(started, keep=True)
            self._end_session(sid)
        return healthy

    def _close_audio(self, inputs: list[_Input], keep: bool) -> None:
        for i in inputs:
            audio, i.recorder.audio = i.recorder.audio, None
            if audio is None:
                continue
            try:
                audio.close()
                if not keep:  # failed before the session began: leave no orphan file
                    audio.path.unlink(missing_ok=True)
            except (SessionAudioError, OSError) as exc:
                self._notify("on_error", str(exc))

    def _end_session(self, sid: int) -> None:
        try:
            self.journal.end_session(sid)
        except JournalError as exc:
            unsaved = self.journal.unsaved_words(sid)
            rescue = _rescue(unsaved, sid, self.options.engine.model)
            where = f"they were saved to {str(rescue)!r}" if rescue else "they could not be saved anywhere"
            self._notify("on_error", f"{exc}; {len(unsaved)} words are not in the journal, {where}")

    # -- RecorderSink: where the recorder's results go --------------------------------------------

    def words_final(self, words: list[Word]) -> None:
        self._journal_call(self.journal.add_words, self.session_id, words)
        self._notify("on_words", words)

    def partial_changed(self, text: str) -> None:
        self._notify("on_partial", text)

    def gap(self, start: float, end: float, reason: str) -> None:
        self._journal_call(self.journal.add_gap, self.session_id, start, end, reason)
        self._notify("on_gap", start, end, reason)

    def audio_failed(self, error: SessionAudioError) -> None:
        self._notify("on_error", f"{error}; captions and the journal go on without audio")

    # -- reporting --------------------------------------------------------------------------------

    def _journal_call(self, method: Callable, *args) -> None:
        """A journal write. On failure the journal keeps the words and retries at each commit: say so
        when the outage begins, then once a `JOURNAL_REMINDER_S` with the count, until all is saved."""
        try:
            method(*args)
        except JournalError as exc:
            now, outage = self._clock(), self._journal_outage
            if outage is None:
                self._journal_outage = _Outage(since=now, said_at=now)
                self._notify("on_error", str(exc))
                return
            outage.failures += 1
            if now - outage.said_at >= JOURNAL_REMINDER_S:
                outage.said_at = now
                waiting = len(self.journal.unsaved_words(self.session_id))
                self._notify("on_error", f"{exc} (still failing: {outage.failures} tries in "
                                         f"{_spoken(now - outage.since)}; {waiting} words wait in memory)")
            return
        if self._journal_outage is not None and not self.journal.unsaved_words(self.session_id):
            self._journal_outage = None  # everything is on disk again

    def _status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_status:
            return
        self._next_status = now + self.options.status_interval_s
        recorders = [i.recorder for i in self._inputs]
        audio_s = max(r.computed_audio_s for r in recorders)
        if audio_s > 0:  # over the last interval; kept while nothing is computed
            self._rtf = sum(r.compute_s for r in recorders) / audio_s  # the streams share the engine's time
            for r in recorders:
                r.compute_s = r.computed_audio_s = 0.0
        level = self.level()
        backlog = 0.0 if self._paused else max(i.recorder.backlog_s(i.capture.ring) for i in self._inputs)
        self._notify("on_status", PipelineStatus(
            session_id=self.session_id, session_s=max(r.session_s for r in recorders),
            lag_s=backlog + self.transcriber.delay_s,
            rtf=self._rtf, dropped_s=max(r.skipped_s for r in recorders),
            level_dbfs=level.rms_dbfs, peak_dbfs=level.peak_dbfs,
            device_name=" + ".join(i.capture.device_name for i in self._inputs),
            model_name=self.model_name, paused=self._paused))

    def _notify(self, name: str, *args) -> None:
        try:
            getattr(self.listener, name)(*args)
        except Exception:  # a listener bug must not stop the recording
            log.exception("pipeline listener %s failed", name)


class _InputSink:
    """A recorder's results, labelled with its input's speaker, on their way to the pipeline."""

    def __init__(self, pipeline: LivePipeline, label: str):
        self._pipeline, self._label = pipeline, label

    def words_final(self, words: list[Word]) -> None:
        self._pipeline.words_final([replace(w, speaker=self._label) for w in words] if self._label else words)

    def partial_changed(self, text: str) -> None:
        self._pipeline.partial_changed(f"{self._label}: {text}" if self._label and text else text)

    def gap(self, start: float, end: float, reason: str) -> None:
        self._pipeline.gap(start, end, f"{reason} ({self._label})" if self._label else reason)

    def audio_failed(self, error: SessionAudioError) -> None:
        self._pipeline.audio_failed(error)


@dataclass
class _Outage:
    """The journal has been refusing writes since `since`; the user was last told at `said_at`."""

    since: float
    said_at: float
    failures: int = 1


def _spoken(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes else f"{round(seconds)} s"


def _rescue(words: list[Word], session_id: int, model: str) -> Path | None:
    """Last resort when the journal refuses the final words: a JSON file in the temp folder."""
    if not words:
        return None
    path = Path(tempfile.gettempdir()) / f"surtitle-session-{session_id}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    with contextlib.suppress(OSError):
        write_text_atomic(path, to_json(words, {"session": session_id, "model": model, "unsaved": True}))
        return path
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
