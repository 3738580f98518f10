"""The KV cache of the last context, kept so the next generation at the same place prefills only what is new."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids `a` and `b` share."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class PrefixCache:
    """The token ids and the transformers DynamicCache (batch of one) of the last generation.

    A generation `take`s the cache cropped to the longest prefix its prompt shares with what the cache
    holds (always at least one token short of the prompt, so there is a token to feed), prefills the
    rest, and `put`s back its cache with its ids, which then grow with every token it feeds. One
    generation at a time uses a PrefixCache, on one thread (the worker thread in the app): a
    generation taking the cache crops the one the previous generation is still holding.
    """

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._cache: Any = None
        self._model: weakref.ref[Any] | None = None
        self.last_reused = 0  # prompt tokens the last `take` found in the cache

    def __len__(self) -> int:
        """Tokens held (0 when empty)."""
        return len(self._ids) if self._cache is not None else 0

    @property
    def ids(self) -> list[int]:
        """The token ids whose keys and values the cache holds."""
        return list(self._ids) if self._cache is not None else []

    def clear(self) -> None:
        self._ids, self._cache, self._model = [], None, None

    def take(self, model: Any, ids: Sequence[int]) -> tuple[Any, int]:
        """(cache cropped to the prefix it shares with `ids`, that prefix's length), or (None, 0).

        The store is empty afterwards until `put`; the caller owns the cache and may grow it.
        """
        cache, held, owner = self._cache, self._ids, self._model
        self.clear()
        self.last_reused = 0
        if cache is None or owner is None or owner() is not model or not _croppable(cache):
            return None, 0
        if cache.get_seq_length() != len(held):  # never trust a cache that does not match its ids
            return None, 0
        n = min(common_prefix(held, ids), len(ids) - 1)
        if n <= 0:
            return None, 0
        if len(held) > n:
            # A negative count removes that many tokens from the end (transformers 4.x and 5.x alike).
            cache.crop(n - len(held))
        self.last_reused = n
        return cache, n

    def put(self, model: Any, cache: Any, ids: list[int]) -> None:
        """Keep `cache`, which holds the keys and values of exactly `ids`, for the next generation.

        Both are kept by reference: a generation that goes on feeding tokens grows them together
        (`take` checks they still agree, so a forward that failed half-way is never reused).
        """
        self._ids, self._cache, self._model = ids, cache, weakref.ref(model)


def _croppable(cache: Any) -> bool:
    """Sliding-window layers forget old tokens, so their cache cannot be cut back to a prefix."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        return False
    return all(not getattr(layer, "is_sliding", False) for layer in layers)


def repeat_rows(cache: Any, rows: int, config: Any) -> Any:
    """A new DynamicCache holding `rows` copies of a batch-of-one cache (which is left unchanged)."""
    from transformers import DynamicCache

    out = DynamicCache(config=config)
    for index, layer in enumerate(cache.layers):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if keys is not None and values is not None and keys.numel():
            out.update(keys.repeat_interleave(rows, dim=0), values.repeat_interleave(rows, dim=0), index)
    return out
