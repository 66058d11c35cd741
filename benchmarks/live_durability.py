"""How long a live session's final words wait before they are on disk, against the journal's promise
that words final for more than a second survive a crash.

    source .ci/start-virtual-mic.sh   # a PulseAudio virtual microphone (or use a real one)
    python -m benchmarks.live_durability --model PATH --play speech.wav [--seconds 20]

Runs a LivePipeline in this process on the default input (or --input) with a journal of its own in a
temporary folder, eager int8 unless --quantize / --compile say otherwise. A reader thread polls the
journal file every 10 ms through its own connection, as a process that survives a crash would read it.
Each word's delay runs from the moment the pipeline hands it over as final (on_words) to the first
poll that finds it on disk. Prints the delays' median, 95th percentile and maximum in ms, and how many
words waited longer than the promise, as one JSON line. With --play, the file is played into the
sink 'vmic' over and over (paplay); without it, speak into the microphone.

The end-to-end test (tests/test_live_e2e.py) checks that words on disk survive a SIGKILL; how soon
they get there is a timing, so it is measured here rather than asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

PROMISE_S = 1.0  # words final for more than this are on disk (app.journal)
POLL_S = 0.01


class Timestamps:
    """Final words as the listener gets them, and when a reader first sees each on disk."""

    def __init__(self):
        self.final_at: list[float] = []  # per word, in order
        self.saved_at: list[float] = []
        self.ready = threading.Event()


def main() -> None:
    from app.journal import Journal
    from app.engine_options import EngineOptions
    from app.pipeline import LivePipeline, PipelineOptions
    from app.pipeline_types import PipelineListener

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint folder or hub repo id")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to record (default: 20)")
    parser.add_argument("--play", type=Path, help="a WAV file to play into the sink 'vmic', looped")
    parser.add_argument("--input", help="input device (default: the default input)")
    parser.add_argument("--quantize", default="int8", choices=["none", "int8", "int4", "auto"])
    parser.add_argument("--compile", default="no", choices=["no", "yes", "auto"])
    args = parser.parse_args()

    stamps = Timestamps()

    class Listener(PipelineListener):
        def on_ready(self, info):
            stamps.ready.set()

        def on_words(self, words):
            now = time.monotonic()
            stamps.final_at.extend([now] * len(words))

        def on_error(self, message):
            print(f"live_durability: {message}", flush=True)

    folder = Path(tempfile.mkdtemp(prefix="surtitle-durability-"))
    journal = Journal(folder / "journal.sqlite3")
    engine = EngineOptions(args.model, quantize=None if args.quantize == "none" else args.quantize,
                           compile={"no": False, "yes": True, "auto": "auto"}[args.compile], live=True)
    options = PipelineOptions(engine, input_device=args.input, save_audio=False)
    pipeline = LivePipeline(options, Listener(), journal=journal)
    stop, done = threading.Event(), threading.Event()
    thread = threading.Thread(target=pipeline.run, args=(stop,))
    thread.start()
    if not stamps.ready.wait(600):
        stop.set()
        thread.join()
        raise SystemExit("live_durability: the session did not start")

    def poll() -> None:
        with closing(sqlite3.connect(f"file:{journal.path}?mode=ro", uri=True, timeout=5)) as conn:
            while not done.is_set():
                (saved,), = conn.execute("SELECT count(*) FROM words").fetchall()
                now = time.monotonic()
                while len(stamps.saved_at) < saved:
                    stamps.saved_at.append(now)
                time.sleep(POLL_S)

    reader = threading.Thread(target=poll)
    reader.start()
    player = None
    if args.play is not None:
        player = subprocess.Popen(["bash", "-c", f'while paplay --device=vmic "{args.play}"; do :; done'])
    time.sleep(args.seconds)
    # what is final by now, the reader must still see on disk: the session goes on meanwhile
    counted = len(stamps.final_at)
    deadline = time.monotonic() + 10 * PROMISE_S
    while len(stamps.saved_at) < counted and time.monotonic() < deadline:
        time.sleep(POLL_S)
    done.set()
    reader.join()
    stop.set()
    thread.join()
    if player is not None:
        player.kill()
        player.wait()
    delays = sorted(saved - final for final, saved in zip(stamps.final_at[:counted], stamps.saved_at))
    missing = counted - len(delays)
    if not delays:
        raise SystemExit("live_durability: no words became final (is anything reaching the microphone?)")

    def ms(q: float) -> float:
        return round(1e3 * delays[min(len(delays) - 1, int(q * len(delays)))], 1)

    print(json.dumps({"words": counted, "median_ms": ms(0.5), "p95_ms": ms(0.95), "max_ms": round(1e3 * delays[-1], 1),
                      "over_promise": sum(d > PROMISE_S for d in delays) + missing, "promise_ms": 1e3 * PROMISE_S,
                      "commit_interval_ms": 1e3 * journal.commit_interval_s}))


if __name__ == "__main__":
    main()
