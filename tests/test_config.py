"""Config: documented fields and defaults, hub spellings, validation with clear messages."""

import json

import pytest

from core import ConfigError, KyutaiSpeechToTextConfig, MimiConfig
from tests.oracle import OFFICIAL_CONFIGS, variant_config


def test_default_is_the_26b_shape():
    cfg = KyutaiSpeechToTextConfig()
    assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (4001, 2048, 48, 32)
    assert (cfg.head_dim, cfg.num_key_value_heads, cfg.sliding_window, cfg.ffn_dim) == (64, 32, 375, 11264)
    assert (cfg.audio_pad_token_id, cfg.bos_token_id, cfg.pad_token_id, cfg.rope_theta) == (69569, 48000, 3, 100000.0)
    assert cfg.frame_size == 1920 and cfg.frame_rate == 12.5
    assert cfg.codec_config.sliding_window == 250 and cfg.codec_config.num_quantizers == 32


def test_documented_fields_exist():
    names = ("codebook_vocab_size vocab_size hidden_size num_hidden_layers num_attention_heads num_key_value_heads "
             "max_position_embeddings rope_theta hidden_act head_dim initializer_range use_cache sliding_window "
             "attention_dropout ffn_dim rms_norm_eps num_codebooks audio_bos_token_id audio_pad_token_id "
             "tie_word_embeddings pad_token_id bos_token_id codec_config").split()
    cfg = KyutaiSpeechToTextConfig()
    for name in names:
        assert hasattr(cfg, name), name


@pytest.mark.parametrize("repo", sorted(OFFICIAL_CONFIGS))
def test_official_configs_read_with_legacy_keys(repo):
    raw = OFFICIAL_CONFIGS[repo]
    cfg = KyutaiSpeechToTextConfig.from_dict(raw)
    assert cfg.rope_theta == 100000.0 and cfg.codec_config.rope_theta == 10000.0
    assert cfg.audio_pad_token_id == cfg.embedding_rows - 1
    assert cfg.sliding_window == raw["sliding_window"]


def test_roundtrip_through_config_json(tmp_path):
    cfg = KyutaiSpeechToTextConfig.from_dict(variant_config("gqa"))
    cfg.save_pretrained(tmp_path)
    again = KyutaiSpeechToTextConfig.from_pretrained(tmp_path)
    assert again == cfg
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["rope_parameters"]["rope_theta"] == cfg.rope_theta
    assert written["codec_config"]["num_key_value_heads"] == 2


def test_transformers_reads_what_we_write(tmp_path):
    from transformers import KyutaiSpeechToTextConfig as Theirs

    cfg = KyutaiSpeechToTextConfig.from_dict(variant_config("window"))
    cfg.save_pretrained(tmp_path)
    theirs = Theirs.from_pretrained(tmp_path)
    for name in ("vocab_size", "hidden_size", "sliding_window", "num_codebooks", "audio_pad_token_id", "bos_token_id"):
        assert getattr(theirs, name) == getattr(cfg, name)
    assert theirs.codec_config.sliding_window == cfg.codec_config.sliding_window
    assert theirs.codec_config.frame_size == cfg.frame_size


def test_configs_are_frozen():
    cfg = KyutaiSpeechToTextConfig()
    with pytest.raises(Exception):
        cfg.hidden_size = 3
    assert cfg.replace(num_hidden_layers=2).num_hidden_layers == 2


@pytest.mark.parametrize("change, message", [
    ({"num_attention_heads": 30, "num_key_value_heads": None, "head_dim": None}, "not divisible"),
    ({"num_key_value_heads": 5}, "multiple of"),
    ({"num_codebooks": 40}, "num_codebooks"),
    ({"audio_pad_token_id": 10**6}, "audio_pad_token_id"),
    ({"ffn_dim": 11263}, "ffn_dim"),
    ({"hidden_act": "relu"}, "hidden_act"),
    ({"hidden_size": "big"}, "integer"),
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1.0}}, "rope_type"),
])
def test_inconsistent_configs_are_refused(change, message):
    raw = dict(OFFICIAL_CONFIGS["kyutai/stt-2.6b-en-trfs"])
    raw.pop("rope_theta", None)
    raw.update(change)
    with pytest.raises(ConfigError, match=message):
        KyutaiSpeechToTextConfig.from_dict(raw)


@pytest.mark.parametrize("missing", ["vocab_size", "hidden_size", "codec_config"])
def test_missing_fields_are_named(missing):
    raw = dict(OFFICIAL_CONFIGS["kyutai/stt-1b-en_fr-trfs"])
    del raw[missing]
    with pytest.raises(ConfigError, match=missing):
        KyutaiSpeechToTextConfig.from_dict(raw)


def test_wrong_model_type_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="whisper"):
        KyutaiSpeechToTextConfig.from_dict({"model_type": "whisper"})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        KyutaiSpeechToTextConfig.from_json_file(tmp_path / "config.json")


def test_codec_validation():
    with pytest.raises(ConfigError, match="mono"):
        MimiConfig(audio_channels=2)
    with pytest.raises(ConfigError, match="causal"):
        MimiConfig(use_causal_conv=False)
    assert MimiConfig().frame_size == 1920 and MimiConfig().hop_length == 960
