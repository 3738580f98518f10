"""A byte-level tokenizer with no merges (one token per byte, vocab 256): fast, hand-checkable,
and shaped like a HF fast tokenizer (backend_tokenizer, get_vocab, len, name_or_path)."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers


class Wrapped:
    """A `tokenizers.Tokenizer` with the members of a HF fast tokenizer that the importer uses."""

    def __init__(self, tk: Tokenizer, vocab: dict[str, int], name: str) -> None:
        self.backend_tokenizer = tk
        self.name_or_path = name
        self._vocab = vocab

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)


class TinyTokenizer(Wrapped):
    def __init__(self, name: str = "tiny-bytes", offset: int = 0) -> None:
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        # `offset` shuffles ids so that two TinyTokenizers can have different fingerprints.
        vocab = {ch: (i + offset) % len(alphabet) for i, ch in enumerate(sorted(alphabet))}
        tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        super().__init__(tk, vocab, name)

    def ids(self, text: str) -> list[int]:
        return self.backend_tokenizer.encode(text, add_special_tokens=False).ids
