"""Full-size models with random weights (no download), and a stand-in tokenizer for them."""

from __future__ import annotations

import math

import torch

from core.config import KyutaiSpeechToTextConfig, MimiConfig
from core.modeling import KyutaiSpeechToTextForConditionalGeneration
from core.tokenizer import TextTokenizer

SHAPES = {
    # the released checkpoints' shapes (model-spec-transformers §4.4)
    "1b": dict(vocab_size=8001, num_hidden_layers=16, num_attention_heads=16, sliding_window=750,
               audio_pad_token_id=8001 + 32 * 2049),
    "2.6b": dict(vocab_size=4001, num_hidden_layers=48, num_attention_heads=32, sliding_window=375,
                 audio_pad_token_id=4001 + 32 * 2049),
}


def shape_config(name: str) -> KyutaiSpeechToTextConfig:
    return KyutaiSpeechToTextConfig(codec_config=MimiConfig(), **SHAPES[name])


def random_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights with sensible scales: linears ~ N(0, 1/fan_in), norms 1, codebooks spread out."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in model.state_dict().items():
        shape = tuple(t.shape)
        if name.endswith("cluster_usage"):
            value = torch.rand(shape, generator=g) + 0.5
        elif name.endswith("embed_sum"):
            value = torch.randn(shape, generator=g) * 3.0
        elif len(shape) == 1 and ("norm" in name or name.endswith("scale")):
            value = torch.ones(shape) * (0.1 if name.endswith("scale") else 1.0)
        elif len(shape) == 1:
            value = torch.zeros(shape)
        else:
            fan_in = math.prod(shape[1:]) if "embed_tokens" not in name else 1
            value = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        state[name] = value
    return state


def build(name: str, seed: int = 0) -> KyutaiSpeechToTextForConditionalGeneration:
    """Float32 model of the named shape with random weights, on the CPU."""
    with torch.device("meta"):
        model = KyutaiSpeechToTextForConditionalGeneration(shape_config(name))
    model.load_state_dict(random_state(model, seed), assign=True)
    model.to("cpu")
    model.codec_model.prepare()
    return model.eval()


def stand_in_tokenizer(text_card: int) -> TextTokenizer:
    """A Unigram vocabulary of `text_card` made-up pieces, so random ids decode to something."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pieces = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0), ("<pad>", 0.0)]
    pieces += [(("\u2581" if i % 3 == 0 else "") + f"w{i}", -1.0) for i in range(text_card - 4)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    return TextTokenizer(tok)
