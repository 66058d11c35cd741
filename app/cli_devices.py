"""`surtitle devices`: what a live session can hear, microphones and outputs, as the system names them.

An input is picked with `surtitle live --input NAME`; the default output (marked *) is what
`surtitle live --source system` captures, and the capture follows it when it changes.
"""

from __future__ import annotations

import argparse

from app.audio.capture import CaptureError, list_input_devices
from app.audio.system_audio import list_outputs
from app.cli_common import error, printable


def add_devices(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser("devices", parents=[common], help="list the microphones and sound outputs",
                            description="List the inputs `surtitle live --input` can record from and the outputs "
                            "whose sound `--source system` captures (the default ones marked *).")
    p.set_defaults(run=run_devices)


def run_devices(args: argparse.Namespace, transcriber_factory) -> int:
    found = False
    print("Microphones and other inputs (surtitle live --input NAME):")
    try:
        inputs = list_input_devices()
    except CaptureError as exc:
        error(str(exc))
        inputs = []
    for d in inputs:
        found = True
        print(f"  {'*' if d.is_default else ' '} {d.index:3d}  {printable(d.name)}  "
              f"({d.hostapi}, {d.channels} ch, {d.default_samplerate} Hz)")
    if not inputs:
        print("    none: connect a microphone, or check that the sound server is running")
    print("Outputs (surtitle live --source system captures the default one):")
    try:
        outputs = list_outputs()
    except CaptureError as exc:
        print(f"    none listed: {exc}")
        outputs = []
    for o in outputs:
        found = True
        print(f"  {'*' if o.is_default else ' '} {printable(o.description)}  ({printable(o.name)})")
    return 0 if found else 1
