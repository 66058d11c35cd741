"""Surtitle's engine: Kyutai speech-to-text in plain PyTorch (no Qt, no audio devices here).

The documented transformers-style API (`KyutaiSpeechToText*`) plus true streaming
(`StreamingTranscriber`: push audio, get final words with timestamps).
"""

from .checkpoint import DEFAULT_MODEL
from .config import KyutaiSpeechToTextConfig, MimiConfig
from .errors import AudioError, CheckpointError, ConfigError, SurtitleError
from .feature_extraction import BatchFeature, KyutaiSpeechToTextFeatureExtractor
from .modeling import KyutaiSpeechToTextForConditionalGeneration, KyutaiSpeechToTextModel
from .processing import KyutaiSpeechToTextProcessor
from .streaming import StreamingTranscriber
from .tokenizer import TextTokenizer
from .words import Word

__all__ = [
    "DEFAULT_MODEL", "KyutaiSpeechToTextConfig", "MimiConfig", "AudioError", "CheckpointError", "ConfigError",
    "SurtitleError", "BatchFeature", "KyutaiSpeechToTextFeatureExtractor", "KyutaiSpeechToTextForConditionalGeneration",
    "KyutaiSpeechToTextModel", "KyutaiSpeechToTextProcessor", "StreamingTranscriber", "TextTokenizer", "Word",
]
