"""Loading checkpoints: layouts, the hub cache path, official shapes, and every broken case."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from core import CheckpointError, ConfigError, KyutaiSpeechToTextConfig
from core import KyutaiSpeechToTextForConditionalGeneration as Model
from core.checkpoint import _UNUSED, module_key
from tests.oracle import OFFICIAL_CONFIGS, build_checkpoint, install_in_hub_cache, meta_state_shapes


def logits_of(model, seed=0):
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg.codec_config.codebook_size, (1, 6, 1 + cfg.num_codebooks), generator=g)
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


@pytest.fixture
def ckpt_copy(tiny_checkpoint, tmp_path):
    """A private copy of the base checkpoint that a test may break."""
    return shutil.copytree(tiny_checkpoint("base"), tmp_path / "ckpt")


def test_sharded_and_single_file_load_the_same(tiny_checkpoint, tmp_path):
    sharded = build_checkpoint(tmp_path / "sharded", "base", sharded=True)
    assert (sharded / "model.safetensors.index.json").is_file()
    a, b = Model.from_pretrained(tiny_checkpoint("base")), Model.from_pretrained(sharded)
    assert torch.equal(logits_of(a), logits_of(b))


def test_legacy_hub_config_loads(tiny_checkpoint, tmp_path):
    legacy = build_checkpoint(tmp_path / "legacy", "base", legacy_config=True)
    raw = json.loads((legacy / "config.json").read_text())
    assert "rope_theta" in raw and "rope_parameters" not in raw
    assert torch.equal(logits_of(Model.from_pretrained(legacy)), logits_of(Model.from_pretrained(tiny_checkpoint("base"))))


def test_hub_repo_id_resolves_through_the_offline_cache(tiny_checkpoint, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    install_in_hub_cache(tiny_checkpoint("base"), cache, "kyutai/tiny-test-trfs")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = Model.from_pretrained("kyutai/tiny-test-trfs", cache_dir=str(cache))
    assert torch.equal(logits_of(model), logits_of(Model.from_pretrained(tiny_checkpoint("base"))))


def test_hub_repo_missing_offline_says_how_to_use_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="local checkpoint folder") as err:
        Model.from_pretrained("kyutai/not-downloaded-trfs", cache_dir=str(tmp_path))
    assert "\n" not in str(err.value)


def test_dtypes_codec_stays_float32(tiny_checkpoint):
    model = Model.from_pretrained(tiny_checkpoint("base"), torch_dtype=torch.bfloat16)
    assert model.lm_head.weight.dtype == torch.bfloat16
    assert model.model.layers[0].mlp.fc1.weight.dtype == torch.bfloat16
    assert {p.dtype for p in model.codec_model.parameters()} == {torch.float32}
    assert Model.from_pretrained(tiny_checkpoint("base"), dtype="auto").lm_head.weight.dtype == torch.float32


def test_nothing_is_left_on_the_meta_device(tiny_checkpoint):
    model = Model.from_pretrained(tiny_checkpoint("gqa"))
    tensors = list(model.parameters()) + list(model.buffers())
    assert all(t.device.type == "cpu" for t in tensors)


@pytest.mark.parametrize("repo", sorted(OFFICIAL_CONFIGS))
def test_official_shapes_match_what_transformers_writes(repo):
    raw = OFFICIAL_CONFIGS[repo]
    theirs = meta_state_shapes(raw)  # tensor name in the saved file -> shape
    with torch.device("meta"):
        ours = Model(KyutaiSpeechToTextConfig.from_dict(raw))
    expected = {name: tuple(t.shape) for name, t in ours.state_dict().items()}
    needed = {module_key(name): shape for name, shape in theirs.items() if not _UNUSED.search(name)}
    assert needed == expected
    assert len(theirs) == {"kyutai/stt-2.6b-en-trfs": 737, "kyutai/stt-1b-en_fr-trfs": 481}[repo]


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Model.from_pretrained(tmp_path / "nope")


def test_folder_without_config(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        Model.from_pretrained(tmp_path)


def test_missing_weights(ckpt_copy):
    (ckpt_copy / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        Model.from_pretrained(ckpt_copy)


def test_truncated_weights(ckpt_copy):
    path = ckpt_copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        Model.from_pretrained(ckpt_copy)


def test_garbage_weights(ckpt_copy):
    (ckpt_copy / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        Model.from_pretrained(ckpt_copy)


def test_missing_shard(tmp_path):
    sharded = build_checkpoint(tmp_path / "sharded", "base", sharded=True)
    shard = sorted(sharded.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(CheckpointError, match=shard.name):
        Model.from_pretrained(sharded)


def test_config_that_contradicts_the_weights_names_the_tensor(ckpt_copy):
    raw = json.loads((ckpt_copy / "config.json").read_text())
    raw["ffn_dim"] = raw["ffn_dim"] * 2
    (ckpt_copy / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"mlp\.fc1\.weight.*config and weights disagree"):
        Model.from_pretrained(ckpt_copy)


def test_config_with_more_layers_than_the_weights(ckpt_copy):
    raw = json.loads((ckpt_copy / "config.json").read_text())
    raw["num_hidden_layers"] += 1
    (ckpt_copy / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"lacks tensor model\.layers\.2\."):
        Model.from_pretrained(ckpt_copy)


def test_unexpected_and_missing_tensors_are_named(ckpt_copy):
    path = ckpt_copy / "model.safetensors"
    tensors = load_file(path)
    tensors["model.layers.0.mystery.weight"] = torch.zeros(2)
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match="mystery"):
        Model.from_pretrained(ckpt_copy)
    del tensors["model.layers.0.mystery.weight"]
    del tensors["lm_head.weight"]
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match="lm_head.weight"):
        Model.from_pretrained(ckpt_copy)


def test_broken_config_json_is_a_config_error(ckpt_copy):
    (ckpt_copy / "config.json").write_text('{"model_type": "kyutai_speech_to_text"}')
    with pytest.raises(ConfigError, match="lacks vocab_size"):
        Model.from_pretrained(ckpt_copy)


def test_missing_tokenizer_is_named(ckpt_copy):
    from core import StreamingTranscriber

    (ckpt_copy / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        StreamingTranscriber.from_pretrained(ckpt_copy)


def test_a_model_moved_after_loading_runs_where_it_was_moved(tiny_checkpoint):
    # HF habit: from_pretrained(...).to("cuda"). The codebooks' derived tables must move too; the
    # meta device stands in for a GPU here (shapes only, no data)
    model = Model.from_pretrained(tiny_checkpoint("base"))
    model.to("meta")
    codes = model.codec_model.encode(torch.zeros(1, 4 * 1920, device="meta"), 4)
    assert codes.device.type == "meta" and codes.shape == (1, 4, 4)
