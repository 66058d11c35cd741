"""The oracle fixtures themselves: checkpoints that transformers loads, in the hub's layout, whose
weights make token- and code-exact comparisons meaningful."""

import json

import numpy as np
import pytest
import torch

from tests import oracle
from tests.signals import noise

HUB_FILES = {
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
}


def test_checkpoint_has_the_hub_files_and_loads_without_missing_keys(tiny_ckpt):
    from transformers import KyutaiSpeechToTextForConditionalGeneration

    assert {p.name for p in tiny_ckpt.iterdir()} == HUB_FILES | {"model.safetensors"}
    _, info = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(tiny_ckpt, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    generation = json.loads((tiny_ckpt / "generation_config.json").read_text())
    assert generation["pad_token_id"] == oracle.TEXT_PAD_ID
    assert generation["audio_window_size"] == 1  # as on the hub; oracle_model() removes it


@pytest.mark.parametrize("variant", sorted(oracle.VARIANTS))
def test_meta_shapes_name_exactly_what_save_pretrained_writes(tiny_checkpoint, variant):
    path = tiny_checkpoint(variant)
    config = json.loads((path / "config.json").read_text())
    saved = oracle.saved_state_shapes(path)
    assert oracle.meta_state_shapes(config) == saved
    # flat legacy Mimi names in the file (spec 4.2), not the in-memory encoder.encoder_seanet.* ones
    assert "codec_model.encoder.layers.0.conv.weight" in saved
    assert "codec_model.downsample.conv.weight" in saved
    assert not any("encoder_seanet" in name for name in saved)


@pytest.mark.parametrize("variant", sorted(oracle.VARIANTS))
def test_variant_token_ids_follow_the_hub_layout(variant):
    config = oracle.variant_config(variant)
    table_rows = config["vocab_size"] + config["num_codebooks"] * config["codebook_vocab_size"] + 1
    assert config["audio_pad_token_id"] == table_rows - 1
    assert config["audio_bos_token_id"] == config["codec_config"]["codebook_size"]
    assert config["vocab_size"] <= config["bos_token_id"] < config["audio_pad_token_id"]  # not a text id


def test_sharded_checkpoint_has_an_index_and_the_same_tensors(tiny_checkpoint):
    from safetensors.torch import load_file

    path = tiny_checkpoint("base", sharded=True)
    index = json.loads((path / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in path.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2 and not (path / "model.safetensors").exists()
    assert sorted(set(index["weight_map"].values())) == shards
    whole = load_file(tiny_checkpoint("base") / "model.safetensors")
    parts = {}
    for shard in shards:
        parts.update(load_file(path / shard))
    assert parts.keys() == whole.keys()
    assert all(torch.equal(parts[k], whole[k]) for k in whole)


def test_legacy_config_looks_like_the_hub_and_gives_the_same_model(tiny_checkpoint, tiny_oracle):
    modern_path, legacy_path = tiny_checkpoint("gqa"), tiny_checkpoint("gqa", legacy_config=True)
    config = json.loads((legacy_path / "config.json").read_text())
    assert config["rope_theta"] == 100000.0 and config["codec_config"]["rope_theta"] == 10000.0
    assert config["torch_dtype"] == "float32"
    assert "rope_parameters" not in config and "rope_parameters" not in config["codec_config"]
    assert "dtype" not in config

    legacy = oracle.oracle_model(legacy_path)
    assert legacy.config.rope_parameters["rope_theta"] == 100000.0
    assert legacy.config.codec_config.rope_parameters["rope_theta"] == 10000.0
    audio = noise(1.5, seed=3)
    modern_model, processor = tiny_oracle("gqa")
    expected = oracle.oracle_generate(modern_path, audio, modern_model, processor)
    assert torch.equal(oracle.oracle_generate(legacy_path, audio, legacy, processor), expected)


def test_hub_cache_resolves_offline_to_symlinks_into_blobs(hub_cache, tiny_ckpt):
    import hashlib

    from huggingface_hub import constants, snapshot_download

    assert constants.HF_HUB_OFFLINE  # set by conftest before huggingface_hub was imported
    cache_dir, repo_id = hub_cache
    snapshot = snapshot_download(repo_id, cache_dir=cache_dir)
    repo_root = cache_dir / ("models--" + repo_id.replace("/", "--"))
    commit = (repo_root / "refs" / "main").read_text()
    assert snapshot == str(repo_root / "snapshots" / commit) and len(commit) == 40
    for name in HUB_FILES | {"model.safetensors"}:
        link = repo_root / "snapshots" / commit / name
        assert link.is_symlink() and link.resolve().parent == (repo_root / "blobs").resolve()
        assert link.read_bytes() == (tiny_ckpt / name).read_bytes()
    weights = (repo_root / "snapshots" / commit / "model.safetensors").resolve()
    assert weights.name == hashlib.sha256(weights.read_bytes()).hexdigest()  # LFS blobs are named by sha256


def test_tokenizer_loads_in_the_processor_and_decodes_like_sentencepiece(tiny_ckpt, tiny_oracle):
    model, processor = tiny_oracle("base")
    tokenizer = processor.tokenizer
    text_card = model.config.vocab_size - 1
    assert len(tokenizer) == text_card
    assert [tokenizer.convert_ids_to_tokens(i) for i in range(4)] == list(oracle.SPECIAL_PIECES)
    the, a, s = (tokenizer.convert_tokens_to_ids(p) for p in ("▁the", "▁a", "s"))
    bos = model.config.bos_token_id
    # BOS and text_card are outside the tokenizer: transformers skips them silently, no error
    ids = torch.tensor([[bos, 0, the, 3, 3, 0, a, s, text_card, 1, 2]])
    assert processor.batch_decode(ids, skip_special_tokens=True) == ["the as"]
    assert oracle.oracle_decode(tiny_ckpt, ids, processor) == ["the as"]


def test_large_vocabulary_tokenizer_has_byte_fallback(tiny_oracle):
    _, processor = tiny_oracle("gqa")
    tokenizer = processor.tokenizer
    assert tokenizer.convert_ids_to_tokens(4) == "<0x00>" and tokenizer.convert_ids_to_tokens(259) == "<0xFF>"
    ids = tokenizer("héllo", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<0xC3>") in ids  # é is not a piece: its UTF-8 bytes are
    assert tokenizer.decode(ids) == "héllo"


def test_official_configs_have_the_hub_tensor_count_and_shapes():
    shapes_26b = oracle.meta_state_shapes(oracle.OFFICIAL_CONFIGS["kyutai/stt-2.6b-en-trfs"])
    shapes_1b = oracle.meta_state_shapes(oracle.OFFICIAL_CONFIGS["kyutai/stt-1b-en_fr-trfs"])
    assert len(shapes_26b) == 737 and len(shapes_1b) == 481
    assert shapes_26b["model.embed_tokens.embed_tokens.weight"] == (69570, 2048)
    assert shapes_1b["model.embed_tokens.embed_tokens.weight"] == (73570, 2048)
    assert shapes_26b["lm_head.weight"] == (4001, 2048) and shapes_1b["lm_head.weight"] == (8001, 2048)
    for shapes in (shapes_26b, shapes_1b):
        assert shapes["model.layers.0.self_attn.q_proj.linear.weight"] == (2048, 2048)
        assert shapes["model.layers.0.mlp.fc1.weight"] == (11264, 2048)
        assert shapes["model.layers.0.mlp.fc2.weight"] == (2048, 5632)
        assert shapes["codec_model.encoder.layers.0.conv.weight"] == (64, 1, 7)
        assert shapes["codec_model.encoder.layers.12.conv.weight"] == (1024, 512, 16)
        assert shapes["codec_model.encoder.layers.14.conv.weight"] == (512, 1024, 3)
        assert shapes["codec_model.encoder_transformer.layers.7.mlp.fc1.weight"] == (2048, 512)
        assert shapes["codec_model.downsample.conv.weight"] == (512, 512, 4)
        acoustic = "codec_model.quantizer.acoustic_residual_vector_quantizer"
        assert shapes[f"{acoustic}.layers.30.codebook.embed_sum"] == (2048, 256)
        assert shapes[f"{acoustic}.layers.30.codebook.cluster_usage"] == (2048,)
        assert shapes[f"{acoustic}.input_proj.weight"] == (256, 512, 1)
        assert shapes["codec_model.upsample.conv.weight"] == (512, 1, 4)
    assert sum(name.startswith("model.layers.47.") for name in shapes_26b) == 8


@pytest.mark.parametrize("variant", sorted(oracle.VARIANTS))
def test_codes_vary_with_the_audio_and_are_far_from_ties(tiny_oracle, variant):
    model, _ = tiny_oracle(variant)
    clips = torch.from_numpy(np.stack([noise(3.0, seed=1), noise(3.0, seed=2)]))[:, None]
    with torch.no_grad():
        codes = model.codec_model.encode(clips).audio_codes  # (2, num_quantizers, frames)
    for k in range(codes.shape[1]):
        assert len(codes[0, k].unique()) > 3, f"codebook {k} barely varies within a clip"
        assert (codes[0, k] != codes[1, k]).float().mean() > 0.3, f"codebook {k} ignores the audio"
    margins = oracle.code_margins(model.codec_model, clips)
    assert margins.median() > 0.02  # nearest vs second-nearest centroid: a few percent apart
    assert margins.min() > 1e-6


@pytest.mark.parametrize("variant", sorted(oracle.VARIANTS))
def test_generated_tokens_depend_on_the_audio_with_decisive_logits(tiny_oracle, variant):
    model, processor = tiny_oracle(variant)
    clips = [noise(2.0, seed=5), noise(2.0, seed=6)]
    inputs = oracle.oracle_inputs(processor, clips)
    tokens = oracle.oracle_generate(None, clips, model, processor)
    steps = inputs["input_values"].shape[-1] // oracle.FRAME_SIZE
    assert tokens.shape == (2, 1 + steps)
    assert (tokens[:, 0] == model.config.bos_token_id).all()  # generate returns the BOS first
    assert (tokens[0] != tokens[1]).float().mean() > 0.3
    margins = oracle.logit_margins(model, inputs)
    assert margins.median() > 1.0  # logits' std is ~LM_HEAD_GAIN = 8
    assert margins.min() > 1e-3


def test_window_variant_windows_are_shorter_than_the_clip_and_matter(tiny_checkpoint, tiny_oracle):
    """With a window long enough to see everything, transformers gives other codes and tokens."""
    path = tiny_checkpoint("window")
    model, processor = tiny_oracle("window")
    audio = noise(3.0, seed=7)
    input_values = oracle.oracle_inputs(processor, audio)["input_values"]
    wide = oracle.oracle_model(path)
    wide.config.sliding_window = 1000  # the decoder's cache reads the window from the config
    for module in wide.codec_model.modules():
        if type(module).__name__ == "MimiAttention":
            module.sliding_window = 1000
    wide.codec_model.encoder.encoder_transformer.config.sliding_window = 1000  # its mask reads the config
    with torch.no_grad():
        codes = model.codec_model.encode(input_values).audio_codes
        wide_codes = wide.codec_model.encode(input_values).audio_codes
    assert not torch.equal(codes, wide_codes)
    tokens = oracle.oracle_generate(path, audio, model, processor)
    assert not torch.equal(tokens, oracle.oracle_generate(path, audio, wide, processor))


def test_checkpoints_are_deterministic_per_seed(tmp_path):
    from safetensors.torch import load_file

    first = load_file(oracle.build_checkpoint(tmp_path / "a", "base", seed=0) / "model.safetensors")
    again = load_file(oracle.build_checkpoint(tmp_path / "b", "base", seed=0) / "model.safetensors")
    other = load_file(oracle.build_checkpoint(tmp_path / "c", "base", seed=1) / "model.safetensors")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["lm_head.weight"], other["lm_head.weight"])
