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
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
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


# --- several files at once (app/file_batches.py) ------------------------------------------------


def _files(folder: Path, seconds: list[float]) -> list[Path]:
    """Mono 16 kHz noise files of the given lengths (the CLI resamples them)."""
    folder.mkdir()
    paths = []
    for i, s in enumerate(seconds):
        audio = (np.random.default_rng(10 + i).standard_normal(round(s * 16000)) * 0.1).astype(np.float32)
        paths.append(folder / f"f{i}.wav")
        sf.write(paths[-1], audio, 16000, subtype="FLOAT")
    return paths


def _json_words(folder: Path, name: str) -> list[tuple]:
    return [(w["text"], w["start"], w["end"]) for w in json.loads((folder / f"{name}.json").read_text())["words"]]


def test_files_transcribed_together_get_the_words_each_gets_alone(tiny_checkpoint, tmp_path, monkeypatch):
    from app import cli

    pools = []
    real_open_pool = cli.open_pool
    monkeypatch.setattr(cli, "open_pool", lambda t, slots: pools.append(slots) or real_open_pool(t, slots))
    # 2.4, 2.0 and 1.7 s go together; 0.9 s is too short to join them and runs alone
    paths = _files(tmp_path / "in", [2.0, 0.9, 2.4, 1.7])
    model = ["--model", str(tiny_checkpoint("gqa")), "--quantize", "none", "-f", "json"]
    assert cli.main(["transcribe", *map(str, paths), *model, "-o", str(tmp_path / "together")]) == 0
    assert pools == [3]
    assert cli.main(["transcribe", *map(str, paths), *model, "-o", str(tmp_path / "alone"), "--batch", "1"]) == 0
    assert pools == [3]  # --batch 1: no pool
    for path in paths:
        alone = _json_words(tmp_path / "alone", path.stem)
        assert alone and _json_words(tmp_path / "together", path.stem) == alone
    duration = json.loads((tmp_path / "together" / "f2.json").read_text())["meta"]["duration_s"]
    assert duration == pytest.approx(2.4, abs=1e-3)


def test_a_file_failing_part_way_spares_the_others_in_its_batch(tiny_checkpoint, tmp_path):
    paths = _files(tmp_path / "in", [6.0, 6.5, 7.0])
    bad = np.zeros(7 * 16000, np.float32)
    bad[6 * 16000] = np.nan  # in its second 5 s block: the other files are well under way
    sf.write(paths[2], bad, 16000, subtype="FLOAT")
    model = ["--model", tiny_checkpoint("base"), "--quantize", "none", "-f", "json"]
    together = surtitle("transcribe", *paths, *model, "-o", tmp_path / "together")
    assert_one_line_error(together, "f2.wav", "0:00:06", "marked as incomplete")
    sf.write(tmp_path / "in" / "f2-first-6s.wav", bad[:6 * 16000], 16000, subtype="FLOAT")
    alone = surtitle("transcribe", *paths[:2], tmp_path / "in" / "f2-first-6s.wav", *model, "-o", tmp_path / "alone",
                     "--batch", "1")
    assert alone.returncode == 0, alone.stderr
    for path in paths[:2]:
        assert _json_words(tmp_path / "together", path.stem) == _json_words(tmp_path / "alone", path.stem)
    # the damaged file keeps the words of the audio before the NaN, as if that were the whole file
    partial = json.loads((tmp_path / "together" / "f2.json").read_text())
    assert partial["incomplete"]["stops_at_s"] == pytest.approx(6.0, abs=1e-3)
    assert _json_words(tmp_path / "together", "f2") == _json_words(tmp_path / "alone", "f2-first-6s")


def test_compile_with_a_batch_is_a_usage_error(tmp_path):
    result = surtitle("transcribe", tmp_path / "a.wav", tmp_path / "b.wav", "--compile", "--batch", "4")
    assert result.returncode == 2 and "--compile transcribes one file at a time" in result.stderr
