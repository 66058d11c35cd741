"""core.generation's clock, simulated, for tests of what a step's speed decides (compile or not,
int8 or int4): timings become facts of the test, not of the machine it runs on."""

from types import SimpleNamespace

import core.generation
from core.generation import FrameStepper


class StepClock:
    """Time passes only while FrameStepper.step runs, each call taking the next of `step_s` seconds
    (round and round). `step_s` may be changed between calls; `calls` counts them."""

    def __init__(self, monkeypatch, *step_s: float):
        self.now, self.step_s, self.calls = 0.0, step_s, 0
        step = FrameStepper.step

        def timed_step(stepper, frames):
            self.now += self.step_s[self.calls % len(self.step_s)]
            self.calls += 1
            return step(stepper, frames)

        monkeypatch.setattr(FrameStepper, "step", timed_step)
        monkeypatch.setattr(core.generation, "time", SimpleNamespace(perf_counter=lambda: self.now))
