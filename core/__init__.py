"""Surtitle's engine: Kyutai speech-to-text in plain PyTorch (no Qt, no audio devices here).

The documented transformers-style API (`KyutaiSpeechToText*`) plus true streaming
(`StreamingTranscriber`: push audio, get final words with timestamps), and `StreamPool` for many
independent live streams stepped as one batch.

Names are imported on first use, so that torch-free parts (`core.words`, `core.errors`,
`core.config`) can be used by the app's audio and export code without loading torch.
"""

from importlib import import_module

_EXPORTS = {
    "DEFAULT_MODEL": "config",
    "KyutaiSpeechToTextConfig": "config",
    "MimiConfig": "config",
    "SurtitleError": "errors",
    "AudioError": "errors",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "StreamError": "errors",
    "BatchFeature": "feature_extraction",
    "KyutaiSpeechToTextFeatureExtractor": "feature_extraction",
    "KyutaiSpeechToTextModel": "modeling",
    "KyutaiSpeechToTextForConditionalGeneration": "modeling",
    "KyutaiSpeechToTextProcessor": "processing",
    "StreamingTranscriber": "streaming",
    "StreamPool": "stream_pool",
    "SlotUpdate": "stream_pool",
    "TextTokenizer": "tokenizer",
    "Word": "words",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
