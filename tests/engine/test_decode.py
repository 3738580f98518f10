"""The streaming decode loop on the bundled demo model (end to end, real weights)."""

from __future__ import annotations

import dataclasses
import itertools
import threading

import numpy as np
import pytest
import torch

from engine.decode import PromptError, TextTracker, compare_stream, generate_batch, stream
from engine.divergence import js_bits
from engine.steering import StyleSteeringProcessor
from engine.types import SamplingConfig
from styles.ngrams import count_ngrams
from styles.prior import StylePrior

pytestmark = pytest.mark.model

PROMPT = "The evening air carried a quiet sense of anticipation"


@pytest.fixture(scope="module")
def sherlock_prior(demo_lm, corpora_dir):
    text = (corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")[:200_000]
    ids = np.array(demo_lm.tokenizer(text)["input_ids"], dtype=np.int64)
    counts = count_ngrams([ids], demo_lm.vocab_size)
    return StylePrior.from_counts(counts, vocab_size=demo_lm.vocab_size, tokenizer_fingerprint=demo_lm.fingerprint)


def greedy(n: int) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=n, greedy=True, repetition_penalty=1.0)


def hf_greedy(lm, prompt: str, n: int) -> list[int]:
    ids = lm.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                                pad_token_id=lm.tokenizer.eos_token_id)
    gen = out[0, ids.shape[1]:].tolist()
    eos = lm.eos_token_ids
    return gen[:next((i for i, t in enumerate(gen) if t in eos), len(gen))]


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
def test_lambda_zero_greedy_matches_hf_generate(demo_lm, sherlock_prior, mode):
    n = 24
    reference = hf_greedy(demo_lm, PROMPT, n)
    gen = stream(demo_lm, PROMPT, greedy(n), StyleSteeringProcessor(sherlock_prior, lam=0.0, mode=mode))
    list(gen)
    assert gen.token_ids == reference


def test_unsteered_greedy_matches_hf_generate(demo_lm):
    gen = stream(demo_lm, PROMPT, greedy(24))
    list(gen)
    assert gen.token_ids == hf_greedy(demo_lm, PROMPT, 24)


def test_pieces_join_to_the_decoded_continuation(demo_lm):
    prompt = "Café au lait — naïve déjà vu, 東京 and 🍵:"
    gen = stream(demo_lm, prompt, SamplingConfig(max_new_tokens=40, seed=3, temperature=1.2))
    pieces = [r.text for r in gen]
    prompt_ids = gen.prompt_ids
    full = demo_lm.tokenizer.decode(prompt_ids + gen.token_ids)
    assert "".join(pieces) == full[len(demo_lm.tokenizer.decode(prompt_ids)):]


def test_text_tracker_splits_multibyte_characters(demo_tokenizer):
    text = " 東京🍵"
    ids = demo_tokenizer(text)["input_ids"]
    assert len(ids) > 3  # byte-level tokens split these characters
    tracker = TextTracker(demo_tokenizer, demo_tokenizer("Tea:")["input_ids"])
    pieces = [tracker.push(i) for i in ids]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_records_carry_diagnostics(demo_lm, sherlock_prior):
    proc = StyleSteeringProcessor(sherlock_prior, lam=0.4, mode="dense")
    recs = list(stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=8, n_alternatives=3), proc))
    assert len(recs) == 8
    for i, r in enumerate(recs):
        assert r.step == i and r.side == "steered" and r.lam == pytest.approx(0.4)
        assert 0 < r.p_base <= 1 and 0 < r.p_steered <= 1
        assert 0 <= r.js_bits <= 1
        assert len(r.top_base) == 3 and len(r.top_steered) == 3
        assert r.top_steered[0][2] >= r.top_steered[1][2]
    assert any(r.js_bits > 1e-4 for r in recs)


def test_same_seed_same_text(demo_lm):
    a = stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=12, seed=11))
    b = stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=12, seed=11))
    list(a), list(b)
    assert a.token_ids == b.token_ids


def test_lambda_change_applies_from_next_token(demo_lm, sherlock_prior):
    proc = StyleSteeringProcessor(sherlock_prior, lam=0.0, mode="dense")
    lams = []
    for rec in stream(demo_lm, PROMPT, greedy(6), proc):
        lams.append(rec.lam)
        if rec.step == 2:
            threading.Thread(target=lambda: setattr(proc, "lam", 0.7)).start()
            threading.Event().wait(0.05)
    assert lams[:3] == [0.0, 0.0, 0.0]
    assert lams[3:] == [pytest.approx(0.7)] * 3


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
def test_every_slider_position_acts(demo_lm, sherlock_prior, mode):
    # At the default budget the old design spent the same 0.05 bits at lambda 0.3 and 1.0: identical text. Now
    # the JS spent rises with lambda in every mode (same forced text, so only lambda differs), and moving the
    # slider mid-stream changes what comes next.
    forced = demo_lm.tokenizer(" It was a dark night, and the rain fell on the old house by the sea.",
                               add_special_tokens=False)["input_ids"]
    prompt = demo_lm.tokenizer(PROMPT)["input_ids"]
    ids = torch.tensor([prompt + forced])
    with torch.inference_mode():
        logits = demo_lm.model(ids).logits[0].float()
    means = []
    for lam in (0.1, 0.3, 0.6, 1.0):
        proc = StyleSteeringProcessor(sherlock_prior, lam=lam, mode=mode)
        js = []
        for i in range(len(forced)):
            at = len(prompt) + i
            scores = logits[at - 1:at]
            out = proc(ids[:, :at], scores)
            js.append(float(js_bits(torch.log_softmax(scores, -1), torch.log_softmax(out, -1))[0]))
        means.append(sum(js) / len(js))
    assert all(b > a for a, b in itertools.pairwise(means)), means
    proc = StyleSteeringProcessor(sherlock_prior, lam=0.1, mode=mode)
    still = [r.token_id for r in stream(demo_lm, PROMPT, greedy(12), proc)]
    moved = []
    for rec in stream(demo_lm, PROMPT, greedy(12), proc.for_decode()):
        moved.append(rec.token_id)
        if rec.step == 3:
            proc.set_lam(1.0)
    assert moved[:4] == still[:4] and moved != still


def test_cancel_stops_within_a_token(demo_lm):
    cancel = threading.Event()
    gen = stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=50), cancel=cancel)
    for rec in gen:
        if rec.step == 3:
            cancel.set()
    assert len(gen.token_ids) == 4
    assert gen.stop_reason == "cancelled"


def test_compare_mode_pairs_and_baseline_equals_unsteered(demo_lm, sherlock_prior):
    proc = StyleSteeringProcessor(sherlock_prior, lam=0.5, mode="dense")
    comp = compare_stream(demo_lm, PROMPT, greedy(16), proc)
    pairs = list(comp)
    base, steered = comp.summaries()
    alone = stream(demo_lm, PROMPT, greedy(16))
    list(alone)
    assert base.token_ids == alone.token_ids
    assert all(b is None or b.js_bits == 0.0 for b, _ in pairs)
    assert base.token_ids != steered.token_ids
    for s in (base, steered):
        assert set(s.metrics) >= {"style_ppl", "base_ppl", "js_mean_bits", "unigram_overlap", "bigram_seen",
                                  "distinct_2"}
        assert s.metrics["style_ppl"] > 0
    assert steered.metrics["js_mean_bits"] > 0


def test_compare_sampling_uses_same_seed_per_side(demo_lm, sherlock_prior):
    proc = StyleSteeringProcessor(sherlock_prior, lam=0.0, mode="dense")
    comp = compare_stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=10, seed=5), proc)
    list(comp)
    base, steered = comp.summaries()
    assert base.token_ids == steered.token_ids  # lambda 0: same seed, same draws


def test_generate_batch_matches_single_streams(demo_lm, sherlock_prior):
    prompts = [PROMPT, "Listen carefully, because I won't repeat this again,"]
    lams = [0.0, 0.3]
    rows = generate_batch(demo_lm, prompts, lams, mode="dense", prior=sherlock_prior, sampling=greedy(10))
    for p, lam, row in zip(prompts, lams, rows, strict=True):
        gen = stream(demo_lm, p, greedy(10), StyleSteeringProcessor(sherlock_prior, lam=lam, mode="dense"))
        list(gen)
        assert row.token_ids == gen.token_ids
        assert row.text == gen.text
        assert len(row.js_bits) == len(row.token_ids)


def test_empty_prompt_is_a_clear_error(demo_lm):
    with pytest.raises(PromptError, match="empty"):
        stream(demo_lm, "   ", greedy(4))


def test_no_room_for_the_prompt_is_a_clear_error(demo_lm):
    with pytest.raises(PromptError, match="no room"):
        stream(demo_lm, PROMPT, greedy(demo_lm.context_length))


def test_long_prompt_keeps_its_end(demo_lm):
    lm = dataclasses.replace(demo_lm, context_length=64)  # a short window keeps the test fast
    long_prompt = "word " * 100 + "final"
    gen = stream(lm, long_prompt, greedy(4))
    assert len(gen.prompt_ids) == 60
    assert gen.prompt_ids[-1] == demo_lm.tokenizer(long_prompt)["input_ids"][-1]
    assert any("longer than the context window" in n for n in gen.notices)
    list(gen)


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
def test_processor_works_inside_hf_generate(demo_lm, sherlock_prior, mode):
    from transformers import LogitsProcessorList

    ids = demo_lm.tokenizer(PROMPT, return_tensors="pt").input_ids
    proc = StyleSteeringProcessor(sherlock_prior, lam=0.4, mode=mode, budget_bits=0.2)
    with torch.inference_mode():
        out = demo_lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                                     logits_processor=LogitsProcessorList([proc]),
                                     pad_token_id=demo_lm.tokenizer.eos_token_id)
    ours = stream(demo_lm, PROMPT, greedy(12), StyleSteeringProcessor(sherlock_prior, lam=0.4, mode=mode,
                                                                      budget_bits=0.2))
    list(ours)
    assert out[0, ids.shape[1]:].tolist()[:len(ours.token_ids)] == ours.token_ids
    plain = hf_greedy(demo_lm, PROMPT, 12)
    assert ours.token_ids != plain or mode == "paper"


def test_summary_base_ppl_matches_a_separate_forward(demo_lm, sherlock_prior):
    from engine.metrics import base_ppl

    proc = StyleSteeringProcessor(sherlock_prior, lam=0.5, mode="dense")
    gen = stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=12, seed=2, diagnostics=False), proc)
    list(gen)
    expected = base_ppl(demo_lm, gen.prompt_ids, gen.token_ids)
    assert gen.summary().metrics["base_ppl"] == pytest.approx(expected, rel=1e-4)
    comp = compare_stream(demo_lm, PROMPT, greedy(10), proc)
    list(comp)
    for s in comp.summaries():
        assert s.metrics["base_ppl"] == pytest.approx(base_ppl(demo_lm, comp.prompt_ids, s.token_ids), rel=1e-4)


def test_sampling_without_a_seed_leaves_the_global_rng_alone(demo_lm):
    torch.manual_seed(1234)
    initial, state = torch.initial_seed(), torch.get_rng_state()
    list(stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=3, seed=None)))
    assert torch.initial_seed() == initial
    assert torch.equal(torch.get_rng_state(), state)
