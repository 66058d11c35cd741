"""Loading the engine (app/model_loading.py), and KeptEngine: the engine kept between live sessions."""

import gc
import json
import weakref
from dataclasses import replace

from app.engine_options import EngineOptions
from app.model_loading import KeptEngine
from tests.markers import needs_int4


def Options(**fields) -> EngineOptions:  # noqa: N802 (reads as the type it makes)
    """A live engine's options, as the pipeline asks for them."""
    return EngineOptions(**{"model": "m", "live": True, **fields})


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


def _auto_load(folder, stages):
    from app.model_loading import load_transcriber

    return load_transcriber(Options(model=str(folder), quantize="auto"),
                            lambda stage, done, total: stages.append((stage, done, total)))


@needs_int4
def test_auto_precision_loads_int4_where_int8_cannot_keep_up_and_remembers(tiny_ckpt, tmp_path, monkeypatch):
    import core.generation
    import core.streaming
    from app.live_precision import CHOICE_FILE

    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(core.generation, "KEEP_UP_SHARE", 0.0)  # a live budget no step can meet
    stages = []
    engine = _auto_load(tiny_ckpt, stages)
    assert engine.model.quantization == "int4"
    names = [s[0] for s in stages]
    # int8 loads and is timed, then int4 (its kernel, its weights) replaces it
    switch = names.index("int4")
    assert "weights" in names[:switch] and names[switch + 1] == "kernel" and "weights" in names[switch + 2:]
    ms, allowed = stages[switch][1:]
    assert ms >= 0 and allowed == 0
    remembered = json.loads((tmp_path / CHOICE_FILE).read_text())
    [(key, entry)] = remembered.items()
    assert str(tiny_ckpt) in key and entry["mode"] == "int4"
    # the next start loads int4 at once: nothing is timed, no int8 weights are read
    monkeypatch.setattr(core.streaming.StreamingTranscriber, "live_frame_seconds", None)
    stages.clear()
    assert _auto_load(tiny_ckpt, stages).model.quantization == "int4"
    assert [s[0] for s in stages][0] == "kernel" and "int4" not in [s[0] for s in stages]


@needs_int4
def test_auto_precision_keeps_int8_where_it_keeps_up(tiny_ckpt, tmp_path, monkeypatch):
    import core.generation
    from app.live_precision import CHOICE_FILE

    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(core.generation, "KEEP_UP_SHARE", 1e6)  # a budget every step meets, however slow the runner
    stages = []
    engine = _auto_load(tiny_ckpt, stages)
    assert engine.model.quantization == "int8" and "int4" not in [s[0] for s in stages]
    [entry] = json.loads((tmp_path / CHOICE_FILE).read_text()).values()
    assert entry["mode"] == "int8" and entry["int8_frame_ms"] > 0  # measured, and remembered


def test_explicit_precision_is_never_second_guessed(tiny_ckpt, tmp_path, monkeypatch):
    import core.generation
    from app.live_precision import CHOICE_FILE
    from app.model_loading import load_transcriber

    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(core.generation, "KEEP_UP_SHARE", 0.0)
    engine = load_transcriber(Options(model=str(tiny_ckpt), quantize="int8"), lambda *a: None)
    assert engine.model.quantization == "int8" and not (tmp_path / CHOICE_FILE).exists()


def test_a_remembered_choice_that_cannot_be_read_or_written_costs_only_the_shortcut(tmp_path, caplog):
    from app.live_precision import PrecisionChoices

    path = tmp_path / "precision.json"
    path.write_text("{not json")
    choices = PrecisionChoices(path)
    key = choices.key("m", 2)
    assert choices.get(key) is None  # unreadable: measured again
    choices.put(key, "int4", 0.1)
    assert choices.get(key) == "int4" and PrecisionChoices(path).get(choices.key("other", 2)) is None
    path.write_text(json.dumps({key: {"mode": "int3"}, "x": 5}))
    assert choices.get(key) is None and choices.get("x") is None  # nonsense in the file is ignored
    blocked = PrecisionChoices(tmp_path / "a-file" / "precision.json")
    (tmp_path / "a-file").write_text("")  # its folder cannot be made
    blocked.put(key, "int8", 0.05)  # logged, not raised
    assert blocked.get(key) is None and "could not remember" in caplog.text


def test_auto_precision_for_files_is_int8_and_measures_nothing(tiny_ckpt, tmp_path, monkeypatch):
    import core.generation
    from app.live_precision import CHOICE_FILE
    from app.model_loading import load_transcriber

    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(core.generation, "KEEP_UP_SHARE", 0.0)  # a live engine would take int4 here
    engine = load_transcriber(EngineOptions(str(tiny_ckpt)))  # `surtitle transcribe`: "auto", not live
    assert engine.model.quantization == "int8" and not (tmp_path / CHOICE_FILE).exists()
