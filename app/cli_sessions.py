"""`surtitle sessions` and `surtitle export`: the session journal from the terminal.

Export reads the journal and renders with app.export, the very code the desktop app uses, so a
session exported while it is still live and one exported a year later come out the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.cli_common import format_clock, printable
from app.cli_output import deliver, format_from_extension, output_target
from app.export import FORMATS, to_txt
from app.journal import Access, Journal, SessionInfo


def add_sessions(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser("sessions", parents=[common], help="list the recorded sessions",
                            description="List the sessions in the journal, newest first.")
    p.set_defaults(run=run_sessions)


def add_export(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser("export", parents=[common], help="write a recorded session's transcript",
                            description="Write a session's transcript from the journal as txt, srt, vtt or json.")
    p.add_argument("session", type=int, metavar="SESSION_ID", help="the id `surtitle sessions` shows")
    p.add_argument("-f", "--format", choices=sorted(FORMATS),
                   help="output format (default: from the -o file's extension, else txt)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file, '-' for stdout (default: stdout)")
    p.add_argument("--timestamps", action="store_true", help="txt only: start each paragraph with [hh:mm:ss]")
    p.set_defaults(run=run_export)


def run_sessions(args: argparse.Namespace, transcriber_factory) -> int:
    journal = Journal(access=Access.READ)  # listing needs no write access, nor takes a write lock
    try:
        sessions = journal.sessions()
        unfinished = {s.id for s in journal.unfinished()}
    finally:
        journal.close()
    if not sessions:
        print(f"no sessions yet in {str(journal.path)!r}; `surtitle live` records one", file=sys.stderr)
        return 0
    print(f"{'ID':>5}  {'STARTED':16}  {'LENGTH':>8}  {'WORDS':>6}  TITLE")
    for s in sessions:
        print(f"{s.id:>5}  {_local(s.started_at):16}  {format_clock(s.duration_s):>8}  {s.word_count:>6}  "
              f"{printable(s.title)}{_state(s, unfinished)}")
    return 0


def run_export(args: argparse.Namespace, transcriber_factory) -> int:
    fmt = args.format or format_from_extension(args.output) or "txt"
    extension, render = FORMATS[fmt]
    journal = Journal(access=Access.READ)
    try:
        info = journal.session(args.session)
        words = journal.words(info.id)
    finally:
        journal.close()
    # never over what the transcript comes from: the journal (and its WAL files) or the session's audio
    target = output_target(args.output, keep=journal.files + ([info.audio_path] if info.audio_path else []))
    if args.timestamps and fmt == "txt":
        text = to_txt(words, timestamps=True)
    else:
        text = render(words, session_meta(info))
    return 0 if deliver(text, target, Path(f"session-{info.id}"), extension) else 1


def session_meta(info: SessionInfo) -> dict[str, object]:
    """What the JSON export says about where its words come from."""
    return {
        "session": info.id, "title": info.title, "model": info.model, "device": info.device,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(info.started_at)),
        "duration_s": round(info.duration_s, 3),
        "audio": None if info.audio_path is None else str(info.audio_path),
    }


def _local(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _state(info: SessionInfo, unfinished: set[int]) -> str:
    if info.id in unfinished:
        return "  (interrupted; recovered at the next `surtitle live`)"
    return "  (recording)" if info.ended_at is None else ""
