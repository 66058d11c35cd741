"""Loading the engine (app/model_loading.py), and KeptEngine: the engine kept between live sessions."""

import gc
import weakref
from dataclasses import dataclass, replace

from app.model_loading import KeptEngine


@dataclass(frozen=True)
class Options:
    model: str = "m"
    device: str = "auto"
    quantize: str | None = "auto"
    dtype: str | None = None
    compile: bool = False


class Engine:
    def __init__(self, options):
        self.options, self.resets = options, 0

    def reset(self):
        self.resets += 1


def test_the_same_options_get_the_kept_engine_reset():
    loaded = []
    engines = KeptEngine(lambda o, report: loaded.append(Engine(o)) or loaded[-1])
    first = engines(Options(), None)
    engines.give_back(first, Options(), healthy=True)
    assert engines(Options(), None) is first and first.resets == 1
    assert len(loaded) == 1


def test_an_engine_in_use_is_never_handed_out_twice():
    engines = KeptEngine(lambda o, report: Engine(o))
    first = engines(Options(), None)
    assert engines(Options(), None) is not first  # not given back yet: a second session loads its own


def test_other_options_free_the_kept_engine_before_loading():
    earlier = []  # weak references to every engine loaded so far
    others_alive = []  # at each load: was an earlier engine still in memory?

    def loader(options, report):
        gc.collect()
        others_alive.append(any(ref() is not None for ref in earlier))
        engine = Engine(options)
        earlier.append(weakref.ref(engine))
        return engine

    engines = KeptEngine(loader)
    options = Options()
    for change in ({}, {"model": "other"}, {"device": "cuda"}, {"quantize": None}, {"dtype": "bfloat16"},
                   {"compile": True}):
        options = replace(options, **change)
        engines.give_back(engines(options, None), options, healthy=True)
    assert len(others_alive) == 6  # each change of options loaded anew...
    assert not any(others_alive)  # ...after the kept engine was gone: never two models in memory


def test_an_unhealthy_engine_is_dropped():
    loaded = []
    engines = KeptEngine(lambda o, report: loaded.append(Engine(o)) or loaded[-1])
    engines.give_back(engines(Options(), None), Options(), healthy=False)
    engines(Options(), None)
    assert len(loaded) == 2


def test_an_int4_engine_reports_its_kernel_before_its_weights(tiny_ckpt):
    import pytest

    from app.model_loading import load_transcriber
    from core.int4 import unavailable_reason

    if unavailable_reason():
        pytest.skip(unavailable_reason())
    stages = []
    engine = load_transcriber(Options(model=str(tiny_ckpt), quantize="int4"),
                              lambda stage, done, total: stages.append(stage))
    assert engine.model.quantization == "int4"
    assert stages[0] == "kernel" and "weights" in stages and "kernel" not in stages[1:]
