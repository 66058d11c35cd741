"""Audio files of any common rate, channel count and container come out as 24 kHz mono float32."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from app.audio_file import audio_duration_s, iter_audio_blocks, read_audio
from core.errors import AudioError

RATE = 24_000


def _sine(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x)


@pytest.mark.parametrize("container", ["WAV", "FLAC", "OGG"])
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2], ids=["mono", "stereo"])
def test_any_rate_and_layout_becomes_24k_mono(tmp_path, container, rate, channels):
    x = _sine(440.0, 1.5, rate)
    data = np.stack([x] * channels, axis=1)  # [n, channels]
    path = tmp_path / f"tone.{container.lower()}"
    sf.write(path, data, rate, format=container)

    y = read_audio(path)

    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 1.5 * RATE) <= 2  # duration kept
    assert _peak_hz(y, RATE) == pytest.approx(440.0, abs=2.0)  # pitch kept
    # OGG is lossy, so only compare levels loosely; the tone must not be attenuated by the mixing
    assert np.sqrt(np.mean(y[RATE // 10 : -RATE // 10] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert audio_duration_s(path) == pytest.approx(1.5, abs=1e-3)


def test_downmix_is_the_mean_of_the_channels(tmp_path):
    n = RATE // 2
    left, right = np.full(n, 0.5, np.float32), np.full(n, -0.1, np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), RATE, subtype="FLOAT")

    np.testing.assert_allclose(read_audio(path), np.full(n, 0.2, np.float32), atol=1e-7)


def test_blocks_are_bounded_and_join_to_the_one_shot_resampling(tmp_path):
    rate = 44100
    x = _sine(1000.0, 7.3, rate)
    path = tmp_path / "long.flac"
    sf.write(path, x, rate)

    blocks = list(iter_audio_blocks(path, block_s=0.5))

    assert len(blocks) > 10
    assert max(len(b) for b in blocks) <= 1.1 * 0.5 * RATE  # one block each, plus resampler latency
    joined = np.concatenate(blocks)
    assert abs(len(joined) - 7.3 * RATE) <= 2
    np.testing.assert_allclose(joined, soxr.resample(x, rate, RATE, quality="HQ"), atol=1e-4)  # no seams


def test_native_rate_passes_through_unchanged(tmp_path):
    x = _sine(300.0, 1.0, RATE)
    path = tmp_path / "native.wav"
    sf.write(path, x, RATE, subtype="FLOAT")

    np.testing.assert_array_equal(read_audio(path), x)


# --- every bad case is one AudioError sentence that names the file ---------------------------


def _error_for(path) -> str:
    with pytest.raises(AudioError) as info:
        read_audio(path)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "does not exist" in _error_for(tmp_path / "nowhere.wav")


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    assert "folder" in _error_for(folder)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert "cannot be read" in _error_for(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.flac"
    path.write_bytes(b"")
    assert "cannot be read" in _error_for(path)


def test_zero_samples(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 16000)
    assert "no audio" in _error_for(path)
    with pytest.raises(AudioError, match="no audio"):
        audio_duration_s(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_sample_is_located(tmp_path, bad):
    rate = 16000
    x = np.zeros(3 * rate, np.float32)
    x[int(2.25 * rate)] = bad
    path = tmp_path / "broken.wav"
    sf.write(path, x, rate, subtype="FLOAT")

    message = _error_for(path)

    assert "NaN or infinite" in message and "0:00:02.250" in message


def test_non_finite_sample_in_a_later_block_stops_the_stream_there(tmp_path):
    x = np.zeros(4 * RATE, np.float32)
    x[3 * RATE] = np.nan
    path = tmp_path / "late.wav"
    sf.write(path, x, RATE, subtype="FLOAT")

    blocks = iter_audio_blocks(path, block_s=1.0)
    assert sum(len(next(blocks)) for _ in range(3)) == 3 * RATE  # the good audio comes first
    with pytest.raises(AudioError, match="0:00:03.000"):
        next(blocks)


def test_file_reading_and_export_do_not_pull_qt():
    code = "import sys, app.audio_file, app.export, app.cli; print('PySide6' in sys.modules)"
    repo = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert run.stdout.strip() == "False"
