"""Prefix reuse: the cache is cut back to what a new context shares, and greedy output never changes."""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import DynamicCache

from engine.bench import bench_prior
from engine.decode import compare_stream, stream
from engine.kvcache import PrefixCache, common_prefix, repeat_rows
from engine.steering import StyleSteeringProcessor
from engine.types import SamplingConfig

PROMPT = "The evening air carried a quiet sense of anticipation as the lamps were lit along the quay"


def _cache(n: int, layers: int = 2) -> DynamicCache:
    """A batch-of-one cache whose keys at position i hold the value i."""
    cache = DynamicCache()
    for layer in range(layers):
        kv = torch.arange(n, dtype=torch.float32).view(1, 1, n, 1).expand(1, 2, n, 3).contiguous()
        cache.update(kv, kv.clone(), layer)
    return cache


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([5], [1]) == 0


def test_take_crops_to_the_shared_prefix_and_empties_the_store() -> None:
    model, prefix = torch.nn.Linear(1, 1), PrefixCache()
    prefix.put(model, _cache(6), [1, 2, 3, 4, 5, 6])
    cache, n = prefix.take(model, [1, 2, 3, 9, 9])
    assert n == 3 and prefix.last_reused == 3
    assert cache.get_seq_length() == 3
    assert cache.layers[1].keys[0, 0, :, 0].tolist() == [0.0, 1.0, 2.0]
    assert len(prefix) == 0 and prefix.take(model, [1, 2, 3]) == (None, 0)  # lent out: the store is empty


def test_take_leaves_one_token_to_feed() -> None:
    model, prefix = torch.nn.Linear(1, 1), PrefixCache()
    prefix.put(model, _cache(4), [1, 2, 3, 4])
    cache, n = prefix.take(model, [1, 2, 3, 4])  # the same context again (re-generate)
    assert n == 3 and cache.get_seq_length() == 3
    prefix.put(model, _cache(4), [1, 2, 3, 4])
    cache, n = prefix.take(model, [1, 2])  # a shorter context inside the cached one
    assert n == 1 and cache.get_seq_length() == 1


@pytest.mark.parametrize("ids", [[7, 8], [1]])
def test_no_reuse_without_a_shared_prefix(ids: list[int]) -> None:
    model, prefix = torch.nn.Linear(1, 1), PrefixCache()
    prefix.put(model, _cache(3), [1, 2, 3])
    assert prefix.take(model, ids) == (None, 0)


def test_another_model_or_a_mismatched_cache_is_not_reused() -> None:
    model, other, prefix = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), PrefixCache()
    prefix.put(model, _cache(3), [1, 2, 3])
    assert prefix.take(other, [1, 2, 3, 4]) == (None, 0)
    prefix.put(model, _cache(2), [1, 2, 3])  # holds 2 tokens, says 3
    assert prefix.take(model, [1, 2, 3, 4]) == (None, 0)


def test_repeat_rows_copies_without_touching_the_source() -> None:
    source = _cache(3)
    out = repeat_rows(source, 2, None)
    assert out.layers[0].keys.shape[0] == 2 and source.layers[0].keys.shape[0] == 1
    assert torch.equal(out.layers[1].values[1], source.layers[1].values[0])


# -- on the demo model ----------------------------------------------------------------------------

def _greedy(n: int) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=n, greedy=True, repetition_penalty=1.0, stop_at_eos=False)


def _run(lm, prompt, steering=None, prefix=None, n: int = 6) -> list[int]:
    gen = stream(lm, prompt, _greedy(n), steering, prefix=prefix)
    list(gen)
    return gen.token_ids


@pytest.fixture(scope="module")
def prior(demo_lm):
    return bench_prior(demo_lm, None)


def _steering(prior, mode: str | None):
    return StyleSteeringProcessor(prior, lam=0.6, mode=mode) if mode else None


@pytest.mark.model
@pytest.mark.parametrize("mode", [None, "paper", "dense", "budget"])
def test_regenerating_reuses_the_context_and_gives_the_same_tokens(demo_lm, prior, mode) -> None:
    ids = demo_lm.tokenizer(PROMPT)["input_ids"]
    fresh = _run(demo_lm, ids, _steering(prior, mode))
    prefix = PrefixCache()
    first = _run(demo_lm, ids, _steering(prior, mode), prefix)
    assert len(prefix) == len(ids) + len(first) - 1  # the context and the tokens fed after it
    again = _run(demo_lm, ids, _steering(prior, mode), prefix)
    assert prefix.last_reused == len(ids) - 1
    assert fresh == first == again


@pytest.mark.model
@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
def test_compare_reuses_the_context_and_gives_the_same_tokens(demo_lm, prior, mode) -> None:
    def run(prefix):
        gen = compare_stream(demo_lm, PROMPT, _greedy(6), _steering(prior, mode), prefix=prefix)
        list(gen)
        return gen.baseline.token_ids, gen.steered.token_ids

    fresh, prefix = run(None), PrefixCache()
    assert run(prefix) == fresh
    assert len(prefix) == len(demo_lm.tokenizer(PROMPT)["input_ids"])  # the context only: the rows differ after
    assert run(prefix) == fresh and prefix.last_reused == len(prefix.ids) - 1


@pytest.mark.model
def test_a_diverging_context_is_cut_back_to_the_shared_prefix(demo_lm) -> None:
    ids = demo_lm.tokenizer(PROMPT)["input_ids"]
    other = ids[:8] + demo_lm.tokenizer(" in the cold grey morning of the town")["input_ids"]
    assert common_prefix(ids, other) == 8
    prefix = PrefixCache()
    _run(demo_lm, ids, prefix=prefix)
    assert _run(demo_lm, other, prefix=prefix) == _run(demo_lm, other)
    assert prefix.last_reused == 8
    held = prefix.ids
    assert held[:len(other)] == other and prefix._cache.get_seq_length() == len(held)


@pytest.mark.model
def test_continuing_after_an_accepted_suggestion_reuses_its_tokens(demo_lm) -> None:
    ids = demo_lm.tokenizer(PROMPT)["input_ids"]
    prefix = PrefixCache()
    accepted = _run(demo_lm, ids, prefix=prefix)
    longer = ids + accepted
    assert _run(demo_lm, longer, prefix=prefix) == _run(demo_lm, longer)
    assert prefix.last_reused == len(longer) - 1  # everything but the last token came from the cache


@pytest.mark.model
def test_a_stopped_generation_leaves_a_usable_cache(demo_lm) -> None:
    ids = demo_lm.tokenizer(PROMPT)["input_ids"]
    prefix, cancel = PrefixCache(), threading.Event()
    for i, _ in enumerate(stream(demo_lm, ids, _greedy(6), cancel=cancel, prefix=prefix)):
        if i == 1:
            cancel.set()
    assert len(prefix) == len(ids) + 1  # the context and the one token fed before the stop
    assert _run(demo_lm, ids, prefix=prefix) == _run(demo_lm, ids)
