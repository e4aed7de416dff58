"""Text <-> token ids with a Hugging Face ``tokenizer.json`` carried inside the model bundle.

The tokenizer is part of the committed model bytes (config field ``tokenizer``), so every
node turns the same text into the same ids. Truncation and padding from the file are turned
off: silently cutting a long input would change the job, so an over-long input is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer


class InputTooLongError(ValueError):
    """The text has more tokens than the model's context."""


@dataclass(frozen=True)
class EncodedBatch:
    ids: np.ndarray  # (B, T) int32, right-padded with pad_id
    mask: np.ndarray  # (B, T) int8, 1 for real tokens
    lengths: tuple[int, ...]


class TextTokenizer:
    """Thin wrapper that fixes the options that matter for exactness."""

    def __init__(self, tokenizer_json: str, max_tokens: int, pad_id: int = 0) -> None:
        self._tok = Tokenizer.from_str(tokenizer_json)
        self._tok.no_truncation()
        self._tok.no_padding()
        self.max_tokens = max_tokens
        self.pad_id = pad_id

    @staticmethod
    def canonical_json(tokenizer_json: str) -> str:
        """Normalise a tokenizer.json text so cosmetic whitespace does not change a model id."""
        return json.dumps(json.loads(tokenizer_json), sort_keys=True, separators=(",", ":"))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = self._tok.encode(text, add_special_tokens=add_special_tokens).ids
        if len(ids) > self.max_tokens:
            raise InputTooLongError(
                f"input is {len(ids)} tokens, the model's context is {self.max_tokens}: "
                "shorten the text or split it"
            )
        return ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)

    def encode_batch(self, texts: list[str]) -> EncodedBatch:
        if not texts:
            raise ValueError("nothing to encode: give at least one text")
        return self.pad([self.encode(t) for t in texts])

    def pad(self, seqs: list[list[int]]) -> EncodedBatch:
        """Right-pad token id lists to one [B, T] batch with its attention mask."""
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int32)
        mask = np.zeros((len(seqs), width), dtype=np.int8)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return EncodedBatch(ids=ids, mask=mask, lengths=tuple(len(s) for s in seqs))
