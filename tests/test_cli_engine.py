"""`surtitle transcribe` with the real engine on tiny checkpoints, good and broken, in a subprocess
as a user runs it: exit codes, one-line errors, no tracebacks, the transcript kept."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core import StreamingTranscriber

ROOT = Path(__file__).resolve().parents[1]


def surtitle(*args, cwd=None):
    env = dict(os.environ, SURTITLE_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=300)


def assert_one_line_error(result, *needles):
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("surtitle: error:")]
    assert len(errors) >= 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def speech_like(tmp_path_factory):
    """A 3 s stereo 44.1 kHz file (the CLI must downmix and resample it)."""
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((44100 * 3, 2)) * 0.1).astype(np.float32)
    path = tmp_path_factory.mktemp("audio") / "clip.flac"
    sf.write(path, audio, 44100)
    return path


def test_json_words_equal_the_engines(tiny_checkpoint, speech_like, tmp_path):
    from app.audio_file import read_audio

    out = tmp_path / "clip.json"
    result = surtitle("transcribe", speech_like, "--model", tiny_checkpoint("base"), "-o", out, "--quantize", "none")
    assert result.returncode == 0, result.stderr
    words = json.loads(out.read_text())["words"]
    engine = StreamingTranscriber.from_pretrained(tiny_checkpoint("base"))
    audio = read_audio(speech_like)
    expected = engine.push(audio) + engine.flush()
    assert [w["text"] for w in words] == [w.text for w in expected] and words
    assert [w["start"] for w in words] == pytest.approx([w.start for w in expected], abs=1e-3)


def test_srt_output_is_valid(tiny_checkpoint, speech_like, tmp_path):
    out = tmp_path / "clip.srt"
    assert surtitle("transcribe", speech_like, "--model", tiny_checkpoint("base"), "-o", out).returncode == 0
    blocks = out.read_text().strip().split("\n\n")
    assert blocks and all(b.splitlines()[0].isdigit() and " --> " in b.splitlines()[1] for b in blocks)


def test_missing_model_folder(speech_like, tmp_path):
    assert_one_line_error(surtitle("transcribe", speech_like, "--model", tmp_path / "nowhere"), "does not exist")


def test_hub_unreachable_says_how_to_point_at_a_folder(speech_like, tmp_path):
    result = surtitle("transcribe", speech_like, "--model", "kyutai/stt-1b-en_fr-trfs")
    assert_one_line_error(result, "--model")


@pytest.fixture
def broken(tiny_checkpoint, tmp_path):
    return Path(shutil.copytree(tiny_checkpoint("base"), tmp_path / "ckpt"))


def test_missing_weights(broken, speech_like):
    (broken / "model.safetensors").unlink()
    assert_one_line_error(surtitle("transcribe", speech_like, "--model", broken), "model.safetensors")


def test_truncated_weights(broken, speech_like):
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) * 2 // 3])
    assert_one_line_error(surtitle("transcribe", speech_like, "--model", broken), "truncated or corrupt")


def test_config_contradicting_weights(broken, speech_like):
    raw = json.loads((broken / "config.json").read_text())
    raw["hidden_size"] *= 2
    (broken / "config.json").write_text(json.dumps(raw))
    assert_one_line_error(surtitle("transcribe", speech_like, "--model", broken), "config and weights disagree")


@pytest.mark.parametrize("case", ["empty", "garbage", "nan", "missing"])
def test_bad_audio(tiny_checkpoint, tmp_path, case):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        sf.write(path, np.zeros(0, np.float32), 16000)
    elif case == "garbage":
        path.write_bytes(b"RIFF not really a wave file" * 10)
    elif case == "nan":
        sf.write(path, np.array([0.0, np.nan, 0.1] * 1000, np.float32), 16000, subtype="FLOAT")
    result = surtitle("transcribe", path, "--model", tiny_checkpoint("base"))
    assert_one_line_error(result, path.name)


def test_unwritable_output_keeps_the_transcript(tiny_checkpoint, speech_like, tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "out.txt"
    result = surtitle("transcribe", speech_like, "--model", tiny_checkpoint("base"), "-o", target, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    saved = list(tmp_path.glob("surtitle-*.txt"))
    assert result.stdout.strip() and saved and saved[0].read_text().strip() == result.stdout.strip()
