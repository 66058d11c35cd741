"""A stand-in for pulsectl: a sound server whose sinks, default output and recording streams the
test sets, and which records what the code asked of it (moves, connections closed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace


@dataclass
class FakePulseServer:
    sinks: dict[str, str] = field(default_factory=lambda: {"speakers": "Speakers", "headphones": "Headphones"})
    default_sink: str = "speakers"
    outputs: list[SimpleNamespace] = field(default_factory=list)  # recording streams: index, source, proplist
    moves: list[tuple[int, int]] = field(default_factory=list)
    connections: list["FakePulse"] = field(default_factory=list)

    def connect(self) -> "FakePulse":
        pulse = FakePulse(self)
        self.connections.append(pulse)
        return pulse

    def sources(self) -> list[str]:
        """Every sink's monitor, then a microphone, numbered in this order."""
        return [f"{name}.monitor" for name in self.sinks] + ["vmic.monitor"]

    def record(self, source: str, pid: int | None = None) -> SimpleNamespace:
        """A recording stream on `source`, by this process unless `pid` says otherwise."""
        stream = SimpleNamespace(index=100 + len(self.outputs), source=self.sources().index(source),
                                 proplist={"application.process.id": str(os.getpid() if pid is None else pid)})
        self.outputs.append(stream)
        return stream


class FakePulse:
    def __init__(self, server: FakePulseServer):
        self.server = server
        self.closed = False

    def server_info(self):
        return SimpleNamespace(default_sink_name=self.server.default_sink)

    def sink_list(self):
        return [SimpleNamespace(name=n, description=d) for n, d in self.server.sinks.items()]

    def get_source_by_name(self, name: str):
        return SimpleNamespace(name=name, index=self.server.sources().index(name))

    def source_output_list(self):
        return list(self.server.outputs)

    def source_output_move(self, index: int, source: int) -> None:
        self.server.moves.append((index, source))
        next(o for o in self.server.outputs if o.index == index).source = source

    def close(self) -> None:
        self.closed = True
