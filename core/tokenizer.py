"""The checkpoint's text tokenizer (`tokenizer.json`, a SentencePiece Unigram model) via `tokenizers`.

Ids 0-3 are <unk>, <s>, </s>, <pad>; Kyutai uses 0 as its "new word" marker and 3 as padding. The
decoder can also produce ids the tokenizer does not know (the converter's extra last row, and BOS
48000 lives in the joint table, not in the tokenizer): those are never text and are dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from .errors import CheckpointError

NUM_SPECIAL_IDS = 4  # <unk>, <s>, </s>, <pad>
WORD_PREFIX = "\u2581"  # SentencePiece's '▁'


class TextTokenizer:
    def __init__(self, tokenizer):
        self._tok = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self._starts = [
            (tokenizer.id_to_token(i) or "").startswith(WORD_PREFIX) for i in range(self.vocab_size)
        ]

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TextTokenizer":
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the checkpoint folder needs its tokenizer.json")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # tokenizers raises a bare Exception subclass on malformed JSON
            raise CheckpointError(f"{path} is not a valid tokenizer file ({exc})") from None

    def is_text(self, token_id: int) -> bool:
        return NUM_SPECIAL_IDS <= token_id < self.vocab_size

    def is_word_start(self, token_id: int) -> bool:
        return self.is_text(token_id) and self._starts[token_id]

    def id_to_piece(self, token_id: int) -> str | None:
        return self._tok.id_to_token(token_id) if 0 <= token_id < self.vocab_size else None

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids]
        low = NUM_SPECIAL_IDS if skip_special_tokens else 0
        return self._tok.decode([i for i in ids if low <= i < self.vocab_size], skip_special_tokens=skip_special_tokens)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def batch_decode(self, sequences: Sequence[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(seq, skip_special_tokens) for seq in sequences]
