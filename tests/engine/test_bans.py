"""Banned phrases and phrase biases: parsing, the processor on the demo tokenizer, and seeded generations."""

from __future__ import annotations

import math

import pytest
import torch

from engine.bans import PhraseRulesProcessor, RulesState, compile_rules, token_bytes
from engine.phrase_rules import PhraseRuleError, PhraseRules, normalise, parse_bias
from engine.types import SamplingConfig

# -- parsing (no model) ---------------------------------------------------------------------------


def test_parse_bias_splits_at_the_last_equals_sign():
    assert parse_bias(" suddenly=-5") == (" suddenly", -5.0)
    assert parse_bias("a=b=+2.5") == ("a=b", 2.5)


@pytest.mark.parametrize("spec, message", [
    ("suddenly", "no '='"),
    ("suddenly=", "no value"),
    ("suddenly=lots", "must be a number"),
    ("suddenly=101", "between -100 and 100"),
    ("suddenly=-100.5", "between -100 and 100"),
    ("suddenly=nan", "between -100 and 100"),
    ("=3", "cannot be empty"),
    ("  =3", "only whitespace"),
])
def test_bad_bias_is_refused_with_a_reason(spec, message):
    with pytest.raises(PhraseRuleError, match=message):
        parse_bias(spec)


def test_rules_validate_and_round_trip():
    with pytest.raises(PhraseRuleError, match="cannot be empty"):
        PhraseRules(bans=("",))
    with pytest.raises(PhraseRuleError, match="between"):
        PhraseRules(biases=(("x", 500),))
    rules = PhraseRules(bans=("a b", "a b"), biases=((" c", 3), (" c", -2)), ignore_case=True)
    assert rules.bans == ("a b",) and rules.biases == ((" c", -2.0),)
    assert PhraseRules.from_json(rules.to_json()) == rules
    merged = PhraseRules(bans=("x",)).merged(PhraseRules(bans=("y",), biases=(("z", 1),)))
    assert merged.bans == ("x", "y") and merged.biases == (("z", 1.0),)
    assert PhraseRules(biases=(("z", 0),)).empty
    # SamplingConfig takes the stored (asdict / JSON) form back, as a saved session holds it.
    assert SamplingConfig(rules=rules.to_json()).rules == rules


def test_rules_survive_a_saved_document_session():
    """A per-document list can live in a session's sampling settings, through JSON and back."""
    import json

    from engine.session import DocumentSession

    rules = PhraseRules(bans=("shivers down",), biases=((" suddenly", -5.0),), ignore_case=True)
    session = DocumentSession(document="/tmp/doc.txt")
    session.set_sampling(SamplingConfig(rules=rules))
    back = DocumentSession.from_json(json.loads(json.dumps(session.to_json())))
    assert back.sampling_config().rules == rules


def test_normalise_folds_whitespace_and_case():
    assert normalise("Shivers\n\t down", False) == "Shivers down"
    assert normalise("Shivers\n down", True) == "shivers down"


# -- the processor on the demo tokenizer ------------------------------------------------------------

def _banned_after(tok, rules: PhraseRules, text: str) -> set[int]:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    proc = PhraseRulesProcessor(compile_rules(tok, rules))
    out = proc(torch.tensor([ids]), torch.zeros(1, len(tok)))
    return set(torch.nonzero(torch.isinf(out[0])).flatten().tolist())


def _completing(tok, prefix: str, phrase: str, ignore_case: bool) -> set[int]:
    """Every token id whose text, after `prefix`, makes `phrase` appear: the brute-force answer, by trying
    each token's text (token_bytes is checked against the tokenizer's own decoding above)."""
    target = normalise(phrase, ignore_case)
    return {t for t, data in enumerate(token_bytes(tok))
            if target in normalise(prefix + data.decode("utf-8", "replace"), ignore_case)}


def _ids_of(tok, pieces: list[bytes]) -> list[int]:
    by_bytes = {b: i for i, b in enumerate(token_bytes(tok)) if b}
    missing = [p for p in pieces if p not in by_bytes]
    assert not missing, f"no such tokens in the demo vocabulary: {missing}"
    return [by_bytes[p] for p in pieces]


@pytest.mark.model
@pytest.mark.parametrize("prefix, phrase, ignore_case", [
    ("She felt shivers", "shivers down", False),
    ("She felt\nshivers", "shivers down", False),
    ("She felt  shivers", "shivers down", False),
    ("She felt shivers dow", "shivers down", False),
    ("She felt shiv", "shivers down", False),
    ("He stopped.\n", " suddenly", False),
    ("He stopped.\n", " suddenly", True),
    ("He stopped, and", " suddenly", True),
    ("He stopped", " suddenly", True),
])
def test_exactly_the_tokens_that_would_write_the_phrase_are_banned(demo_tokenizer, prefix, phrase, ignore_case):
    """Checked over the whole vocabulary against the decoded text: whatever token would finish the phrase
    after this text is banned (every tokenisation of it), and no other token is."""
    tok = demo_tokenizer
    banned = _banned_after(tok, PhraseRules(bans=(phrase,), ignore_case=ignore_case), prefix)
    assert banned == _completing(tok, prefix, phrase, ignore_case)


@pytest.mark.model
def test_a_phrase_in_odd_pieces_or_single_bytes_is_banned_at_its_last_piece(demo_tokenizer):
    tok = demo_tokenizer
    rules = PhraseRules(bans=("shivers down",))
    n_id = _ids_of(tok, [b"n"])[0]
    odd = _ids_of(tok, [b"She", b" felt", b" sh", b"iv", b"ers", b" d", b"o", b"w"])
    single = _ids_of(tok, [bytes([c]) for c in b"She felt shivers dow"])
    for ids in (odd, single):
        assert tok.decode(ids).endswith("shivers dow")
        out = PhraseRulesProcessor(compile_rules(tok, rules))(torch.tensor([ids]), torch.zeros(1, len(tok)))
        assert float(out[0, n_id]) == -math.inf
    # The same text fed one token per call, as the decode loop does.
    proc = PhraseRulesProcessor(compile_rules(tok, rules))
    for end in range(3, len(odd) + 1):
        out = proc(torch.tensor([odd[:end]]), torch.zeros(1, len(tok)))
    assert float(out[0, n_id]) == -math.inf


@pytest.mark.model
def test_case_variants_only_when_asked(demo_tokenizer):
    tok = demo_tokenizer
    upper = tok(" Suddenly", add_special_tokens=False)["input_ids"]
    line_start = tok("Suddenly", add_special_tokens=False)["input_ids"]
    lower = tok(" suddenly", add_special_tokens=False)["input_ids"]
    assert len(upper) == len(line_start) == len(lower) == 1
    exact = _banned_after(tok, PhraseRules(bans=(" suddenly",)), "He stopped.\n")
    assert lower[0] in exact and upper[0] not in exact and line_start[0] not in exact
    folded = _banned_after(tok, PhraseRules(bans=(" suddenly",), ignore_case=True), "He stopped.\n")
    assert {lower[0], upper[0], line_start[0]} <= folded  # " Suddenly", and "Suddenly" at a line start
    mid_word = _banned_after(tok, PhraseRules(bans=(" suddenly",), ignore_case=True), "He stopped")
    assert line_start[0] not in mid_word  # "stoppedSuddenly" has no space before it


@pytest.mark.model
def test_a_multi_byte_character_split_over_tokens(demo_tokenizer):
    """"ï" is two bytes; written one byte per token, the character is pending between them."""
    tok = demo_tokenizer
    data = token_bytes(tok)
    prefix = tok("A na", add_special_tokens=False)["input_ids"]
    lead, i_tail, e_tail, v, e = _ids_of(tok, [b"\xc3", b"\xaf", b"\xa9", b"v", b"e"])
    out = PhraseRulesProcessor(compile_rules(tok, PhraseRules(bans=("naï",))))(
        torch.tensor([[*prefix, lead]]), torch.zeros(1, len(tok)))
    finishing = [i for i, b in enumerate(data) if b.startswith(b"\xaf")]
    assert i_tail in finishing and all(float(out[0, i]) == -math.inf for i in finishing)
    assert float(out[0, e_tail]) == 0.0  # "naé" is allowed
    out = PhraseRulesProcessor(compile_rules(tok, PhraseRules(bans=("naïve",))))(
        torch.tensor([[*prefix, lead, i_tail, v]]), torch.zeros(1, len(tok)))
    assert float(out[0, e]) == -math.inf


class _TinyTokenizer:
    """A five-token vocabulary: enough to ban all of it."""

    pieces = ("<eos>", "a", "b", "ab", " ")
    all_special_ids = (0,)

    def __len__(self) -> int:
        return len(self.pieces)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.pieces[i] for i in ids]

    def decode(self, ids: list[int], **_kw) -> str:
        return "".join(self.pieces[i] for i in ids if i)


def test_a_list_that_bans_every_token_is_refused():
    tok = _TinyTokenizer()
    with pytest.raises(PhraseRuleError, match="every token"):
        compile_rules(tok, PhraseRules(bans=("a", "b")))
    with pytest.raises(PhraseRuleError, match="every token"):
        compile_rules(tok, PhraseRules(bans=("A", "B"), ignore_case=True))
    rules = compile_rules(tok, PhraseRules(bans=("a",)))  # "b" is left: allowed
    proc = PhraseRulesProcessor(rules)
    out = proc(torch.tensor([[2]]), torch.zeros(1, 5))
    assert out[0].tolist() == [0.0, -math.inf, 0.0, -math.inf, 0.0]


@pytest.mark.model
def test_bias_moves_the_phrase_and_flags_the_step(demo_tokenizer):
    tok = demo_tokenizer
    word = tok(" suddenly", add_special_tokens=False)["input_ids"][0]
    other = tok(" slowly", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([tok("He stopped, and", add_special_tokens=False)["input_ids"]])
    state = RulesState()
    proc = PhraseRulesProcessor(compile_rules(tok, PhraseRules(biases=((" suddenly", -5.0),))), state)
    scores = torch.zeros(1, len(tok))
    scores[0, word] = scores[0, other] = 12.0
    out = proc(ids, scores)
    assert float(out[0, word]) == pytest.approx(7.0) and float(out[0, other]) == pytest.approx(12.0)
    assert state.adjusted == [True]
    assert torch.equal(scores[0, word], torch.tensor(12.0))  # the input is not changed in place
    # After a line break " suddenly" both holds the phrase and finishes it: the bias is added once.
    after_break = torch.tensor([tok("He stopped.\n", add_special_tokens=False)["input_ids"]])
    out = PhraseRulesProcessor(compile_rules(tok, PhraseRules(biases=((" suddenly", -5.0),))))(after_break, scores)
    assert float(out[0, word]) == pytest.approx(7.0)
    # A bias of +100 is flagged too (its probabilities are computed without overflow).
    PhraseRulesProcessor(compile_rules(tok, PhraseRules(biases=((" suddenly", 100.0),))), state)(ids, scores)
    assert state.adjusted == [True]
    # Where the biased token never had a chance, the step is not flagged.
    quiet = torch.zeros(1, len(tok))
    quiet[0, other] = 30.0
    proc2 = PhraseRulesProcessor(compile_rules(tok, PhraseRules(biases=((" suddenly", -5.0),))), state)
    proc2(ids, quiet)
    assert state.adjusted == [False]


# -- seeded generations -------------------------------------------------------------------------------

PROMPT = "She had shivers down her spine, and suddenly the door slammed. They had shivers"
PHRASES = ("shivers down", " suddenly")


def _generate(lm, rules: PhraseRules, seeds: list[int]) -> list[str]:
    from engine.decode import generate_batch

    sampling = SamplingConfig(max_new_tokens=12, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0,
                              diagnostics=False, rules=rules)
    res = generate_batch(lm, [PROMPT] * len(seeds), [0.0] * len(seeds), mode="dense", prior=None,
                         sampling=sampling, seeds=seeds)
    return ["They had shivers" + r.text for r in res]  # the prompt's end: a phrase may begin there


@pytest.mark.model
def test_fifty_seeded_generations_contain_no_banned_phrase(demo_lm):
    """The prompt invites both phrases, and a bias on " sudden" pushes toward " suddenly": without the
    ban they appear for many seeds; with it, in none of 50."""
    push = ((" sudden", 8.0),)
    free = _generate(demo_lm, PhraseRules(biases=push), list(range(12)))
    assert sum("shivers down" in t for t in free) >= 3
    assert sum(" suddenly" in t for t in free) >= 3
    banned = _generate(demo_lm, PhraseRules(bans=PHRASES, biases=push), list(range(50)))
    hits = [t for t in banned if any(p in t for p in PHRASES)]
    assert not hits
    assert len(set(banned)) > 25  # 50 different samples, not one repeated


@pytest.mark.model
def test_the_stream_flags_the_steps_where_a_ban_acted(demo_lm):
    from engine.decode import stream

    sampling = SamplingConfig(max_new_tokens=3, greedy=True, repetition_penalty=1.0,
                              rules=PhraseRules(bans=("shivers down",)))
    gen = stream(demo_lm, PROMPT, sampling)
    steps = list(gen)
    assert steps[0].adjusted  # " down" was the likely next token, and it is banned
    assert "shivers down" not in "shivers" + gen.text
    plain = list(stream(demo_lm, PROMPT, SamplingConfig(max_new_tokens=3, greedy=True, repetition_penalty=1.0)))
    assert plain[0].text == " down" and not any(s.adjusted for s in plain)
