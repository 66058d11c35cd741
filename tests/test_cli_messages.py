"""Each mistake a user can make gets one line on stderr naming the real problem: nothing else (no
warning, no traceback, no class name) and never a line that blames something else."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def surtitle(*args):
    env = dict(os.environ, SURTITLE_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def only_line(result) -> str:
    """The run failed with exactly one line on stderr, an error line; returns it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("surtitle: error: ") and "unexpected" not in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    sf.write(path, np.zeros(24_000, np.float32), 24_000)
    return path


def _with_config(tiny_ckpt, tmp_path, **changes) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("device, says", [
    ("cuda:1", "device 'cuda:1' was asked for"),  # it said 'cuda', which is not what the user typed
    ("mps", "device 'mps' (Apple's Metal GPU) was asked for"),  # was an "unexpected RuntimeError"
])
def test_a_device_this_machine_lacks_is_named_as_asked(tiny_ckpt, clip, device, says):
    import torch

    if torch.cuda.device_count() > 1 or torch.backends.mps.is_available():
        pytest.skip("this machine has the device")
    assert says in only_line(surtitle("transcribe", clip, "--model", tiny_ckpt, "--device", device))


@pytest.mark.parametrize("field, value, says", [
    ("num_hidden_layers", -1, "num_hidden_layers must be at least 1, got -1"),  # was "unexpected tensor"
    ("num_attention_heads", 0, "num_attention_heads must be at least 1, got 0"),  # leaked a torch warning
    ("hidden_size", 0, "hidden_size must be at least 1, got 0"),
])
def test_an_impossible_config_names_the_field(tiny_ckpt, clip, tmp_path, field, value, says):
    folder = _with_config(tiny_ckpt, tmp_path, **{field: value})
    line = only_line(surtitle("transcribe", clip, "--model", folder))
    assert says in line and str(folder / "config.json") in line
    assert "config.json: config.json" not in line


def test_an_impossible_codec_config_names_the_field(tiny_ckpt, clip, tmp_path):
    codec = json.loads((tiny_ckpt / "config.json").read_text())["codec_config"]
    folder = _with_config(tiny_ckpt, tmp_path, codec_config={**codec, "num_hidden_layers": -1})
    assert "codec_config: num_hidden_layers must be at least 1, got -1" in only_line(
        surtitle("transcribe", clip, "--model", folder))


def test_a_file_given_as_the_model_is_called_a_file(clip):
    line = only_line(surtitle("transcribe", clip, "--model", clip))
    assert f"{clip} is a file, not a model folder" in line and "does not exist" not in line
