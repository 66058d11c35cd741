"""`surtitle transcribe` end to end, with a fake engine standing in for the model.

Only the engine is fake: reading files, exporting, writing and error handling are the real code.
"""

import json
import re

import numpy as np
import pytest
import soundfile as sf

from app import cli, cli_output
from app.cli import main
from app.engine_options import EngineOptions
from core.errors import CheckpointError
from tests.cli_fakes import RATE, FakeFactory, FakeTranscriber, one_error_line, run, wav
from tests.disks import fill, small_disk


# --- happy paths -------------------------------------------------------------------------------


def test_one_file_prints_text_to_stdout(tmp_path, capsys):
    code, factory = run([wav(tmp_path / "talk.wav", seconds=2.5)])

    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out == "w0 w1 end.\n"
    assert factory.calls == [EngineOptions(cli.DEFAULT_MODEL, None, None, "auto")]  # int8 on a CPU


def test_srt_format_is_taken_from_the_output_extension(tmp_path, capsys):
    out_path = tmp_path / "talk.srt"
    code, _ = run([wav(tmp_path / "talk.flac", seconds=3.2, rate=44100, channels=2), "-o", out_path])

    assert code == 0
    text = out_path.read_text()
    assert text.startswith("1\n00:00:00,100 --> ")
    assert "w0 w1 w2 end." in text.replace("\n", " ")
    assert capsys.readouterr().out == ""


def test_json_carries_model_file_and_duration(tmp_path, capsys):
    talk = wav(tmp_path / "talk.wav", seconds=2.0)
    code, _ = run([talk, "--format", "json", "--model", "some/model"])

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["meta"] == {"model": "some/model", "file": str(talk), "duration_s": 2.0}
    assert [w["text"] for w in document["words"]] == ["w0", "w1", "end."]


def test_txt_timestamps(tmp_path, capsys):
    code, _ = run([wav(tmp_path / "a.wav"), "--timestamps"])
    assert code == 0 and capsys.readouterr().out == "[00:00:00] w0 w1 end.\n"


def test_engine_options_reach_the_factory(tmp_path):
    _, factory = run(
        [wav(tmp_path / "a.wav"), "--model", str(tmp_path), "--device", "cuda:1", "--dtype", "bfloat16",
         "--quantize", "int8", "-o", "-"]
    )
    assert factory.calls == [EngineOptions(str(tmp_path), "cuda:1", "bfloat16", "int8")]
    _, factory = run([wav(tmp_path / "a.wav"), "--quantize", "int4", "-o", "-"])
    assert factory.calls == [EngineOptions(cli.DEFAULT_MODEL, None, None, "int4")]
    _, factory = run([wav(tmp_path / "a.wav"), "--compile", "-o", "-"])
    assert factory.calls == [EngineOptions(cli.DEFAULT_MODEL, None, None, "auto", compile=True)]
    _, factory = run([wav(tmp_path / "a.wav"), "--no-compile", "-o", "-"])
    assert factory.calls == [EngineOptions(cli.DEFAULT_MODEL, None, None, "auto", compile=False)]


def test_several_files_into_a_folder_load_the_model_once(tmp_path, capsys):
    inputs = [wav(tmp_path / f"part{i}.wav", seconds=1.5 + i) for i in range(3)]
    out_dir = tmp_path / "subs"

    code, factory = run([*inputs, "-o", out_dir, "-f", "vtt"])

    assert code == 0
    assert len(factory.calls) == 1
    assert factory.transcriber.resets >= 3  # each file starts from a clean stream
    for i in range(3):
        text = (out_dir / f"part{i}.vtt").read_text()
        assert text.startswith("WEBVTT\n") and f"w{i}" in text
    assert "part2.vtt" in capsys.readouterr().err


def test_several_files_without_output_go_next_to_their_inputs(tmp_path):
    inputs = [wav(tmp_path / "a.wav"), wav(tmp_path / "b.ogg")]
    code, _ = run([*inputs, "-f", "srt"])
    assert code == 0
    assert (tmp_path / "a.srt").exists() and (tmp_path / "b.srt").exists()


# --- bad input ---------------------------------------------------------------------------------


def _broken_inputs(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file" * 10)
    nan = tmp_path / "nan.wav"
    x = np.zeros(RATE, np.float32)
    x[100] = np.nan
    sf.write(nan, x, RATE, subtype="FLOAT")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), RATE)
    return {"missing": tmp_path / "missing.wav", "garbage": garbage, "nan": nan, "empty": empty}


@pytest.mark.parametrize("case", ["missing", "garbage", "nan", "empty"])
def test_bad_audio_is_one_line_and_exit_1(tmp_path, capsys, case):
    path = _broken_inputs(tmp_path)[case]

    code, factory = run([path])

    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert path.name in one_error_line(err)


def test_model_is_not_loaded_when_no_input_is_readable(tmp_path, capsys):
    _, factory = run([tmp_path / "missing.wav"])
    assert factory.calls == []


def test_a_bad_file_does_not_stop_the_others(tmp_path, capsys):
    good1, good2 = wav(tmp_path / "good1.wav"), wav(tmp_path / "good2.wav")
    bad = _broken_inputs(tmp_path)

    code, _ = run([good1, bad["nan"], bad["missing"], good2, "-o", tmp_path / "out"])

    err = capsys.readouterr().err
    assert code == 1
    assert (tmp_path / "out" / "good1.txt").read_text() == "w0 w1 end.\n"
    assert (tmp_path / "out" / "good2.txt").read_text() == "w0 w1 end.\n"
    errors = [line for line in err.splitlines() if line.startswith("surtitle: error:")]
    assert len(errors) == 2 and "Traceback" not in err


def test_nan_late_in_a_long_file_is_reported_with_its_time(tmp_path, capsys):
    x = np.zeros(12 * RATE, np.float32)
    x[11 * RATE] = np.inf
    path = tmp_path / "late.wav"
    sf.write(path, x, RATE, subtype="FLOAT")

    code, _ = run([path])

    assert code == 1
    assert "0:00:11.000" in one_error_line(capsys.readouterr().err)


# --- output that cannot be written -------------------------------------------------------------


def test_unwritable_output_keeps_the_transcript(tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    target = tmp_path / "no" / "such" / "folder" / "talk.txt"

    code, _ = run([wav(tmp_path / "talk.wav"), "-o", target])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == "w0 w1 end.\n"  # printed...
    line = one_error_line(err)
    assert str(target) in line
    (saved,) = workdir.glob("surtitle-talk-*.txt")  # ...and saved
    assert saved.read_text() == out and saved.name in line


def test_disk_full_falls_back_to_the_temp_folder(tmp_path, capsys, monkeypatch):
    spare = tmp_path / "spare"
    spare.mkdir()
    talk = wav(tmp_path / "talk.wav")
    with small_disk(tmp_path / "disk", size="64k") as disk:
        fill(disk)
        monkeypatch.chdir(disk)  # the current folder is full too: the rescue goes to the temp folder
        monkeypatch.setattr(cli_output.tempfile, "gettempdir", lambda: str(spare))

        code, _ = run([talk, "-o", disk / "talk.srt"])

        monkeypatch.chdir(tmp_path)
    out, err = capsys.readouterr()
    assert code == 1 and "end." in out
    assert "No space left on device" in one_error_line(err)
    (saved,) = spare.glob("surtitle-talk-*.srt")
    assert saved.read_text() == out


# --- model loading and unexpected failures -----------------------------------------------------


def test_hub_failure_says_how_to_use_a_local_checkpoint(tmp_path, capsys):
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = LocalEntryNotFoundError("Cannot find the requested files in the disk cache\nand traffic is off")
    code, _ = run([wav(tmp_path / "a.wav"), "--model", "kyutai/nope"], FakeFactory(error=offline))

    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    assert "'kyutai/nope'" in line and "no network" in line and "--model /path/to/folder" in line


def test_invalid_repo_id_is_explained(tmp_path, capsys):
    from huggingface_hub.errors import HFValidationError

    error = HFValidationError("Repo id must use alphanumeric chars or '-', '_', '.'")
    code, _ = run([wav(tmp_path / "a.wav"), "--model", "not a/valid id"], FakeFactory(error=error))
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "neither an existing folder" in line and "--model /path/to/folder" in line


def test_engine_checkpoint_errors_pass_through_unchanged(tmp_path, capsys):
    error = CheckpointError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu")
    code, _ = run([wav(tmp_path / "a.wav"), "--device", "cuda"], FakeFactory(error=error))
    assert code == 1
    assert one_error_line(capsys.readouterr().err) == f"surtitle: error: {error}"


def test_unreadable_local_checkpoint_names_the_folder_without_hub_advice(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    error = PermissionError(13, "Permission denied", str(folder / "model.safetensors"))
    code, _ = run([wav(tmp_path / "a.wav"), "--model", folder], FakeFactory(error=error))

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and str(folder) in line and "Permission denied" in line and "Hub" not in line


def test_unexpected_exception_is_one_line_with_a_hint(tmp_path, capsys):
    factory = FakeFactory(FakeTranscriber(fail_with=RuntimeError("shape mismatch\nin layer 3")))
    code, _ = run([wav(tmp_path / "a.wav")], factory)

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "RuntimeError" in line and "--verbose" in line


def test_verbose_shows_the_traceback(tmp_path, capsys):
    factory = FakeFactory(FakeTranscriber(fail_with=RuntimeError("boom")))
    code, _ = run([wav(tmp_path / "a.wav"), "--verbose"], factory)

    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and "RuntimeError: boom" in err


# --- arguments and progress --------------------------------------------------------------------


def test_default_model_is_the_engines():
    import core

    assert cli.DEFAULT_MODEL == core.DEFAULT_MODEL


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("transcribe", "live", "sessions", "export"))


@pytest.mark.parametrize(
    "argv",
    [["--format", "docx"], ["--device", "gpu0"], ["--quantize", "int3"]],
    ids=["format", "device", "quantize"],
)
def test_bad_arguments_exit_2(tmp_path, capsys, argv):
    code, factory = run([wav(tmp_path / "a.wav"), *argv])
    assert code == 2 and factory.calls == []


def test_stdout_takes_only_one_file(tmp_path, capsys):
    code, _ = run([wav(tmp_path / "a.wav"), wav(tmp_path / "b.wav"), "-o", "-"])
    assert code == 2 and "one input" in one_error_line(capsys.readouterr().err)


def test_two_inputs_with_one_name_would_collide(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    code, _ = run([wav(tmp_path / "x" / "a.wav"), wav(tmp_path / "y" / "a.wav"), "-o", tmp_path / "out"])
    assert code == 2 and "both" in one_error_line(capsys.readouterr().err)


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, capsys):
    long_file = wav(tmp_path / "long.wav", seconds=31.0, rate=8000)

    run([long_file, "-o", tmp_path / "a.txt"])
    assert "%" not in capsys.readouterr().err  # stderr is not a terminal under pytest

    run([long_file, "-o", tmp_path / "b.txt", "--progress"])
    assert re.search(r"long\.wav\s+100%", capsys.readouterr().err)
