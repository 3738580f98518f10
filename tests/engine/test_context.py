"""Context assembly by tokens: boundaries, Memory and Author's note, budget arithmetic, awkward documents."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from engine.context import ContextError, assemble_context, count_tokens, token_budget

TINYLLAMA_TOKENIZER = Path(__file__).resolve().parents[3] / "shared" / "tinyllama-like" / "tokenizer"
WORDS = ("the quick brown fox jumps over a lazy dog while seven grey herons watch from the reeds "
         "and somewhere a kettle sings").split()


@pytest.fixture(scope="module")
def tinyllama_tokenizer() -> Any:
    if not (TINYLLAMA_TOKENIZER / "tokenizer.json").is_file():
        pytest.skip(f"TinyLlama tokenizer not found at {TINYLLAMA_TOKENIZER}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINYLLAMA_TOKENIZER))


@pytest.fixture(params=["demo", "tinyllama"])
def tokenizer(request) -> Any:
    name = "demo_tokenizer" if request.param == "demo" else "tinyllama_tokenizer"
    return request.getfixturevalue(name)


class RunLengthTokenizer:
    """Toy tokenizer: one token per run of equal characters, plus a BOS. Runs merge across any seam."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [ord(m.group(0)[0]) for m in re.finditer(r"(.)\1*", text, re.S)]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


class CountingTokenizer:
    """Wraps a tokenizer and counts the characters it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.chars, self.calls = inner, 0, 0

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.chars += len(text)
        self.calls += 1
        return self.inner(text, **kwargs)


def prose(paragraphs: int, sentences: int = 4, words: int = 12, sep: str = "\n\n") -> str:
    out = []
    for p in range(paragraphs):
        sents = []
        for s in range(sentences):
            ws = [WORDS[(p * 7 + s * 3 + i) % len(WORDS)] for i in range(words)]
            sents.append(" ".join(ws).capitalize() + ".")
        out.append(f"P{p} " + " ".join(sents))
    return sep.join(out)


def words_only(n: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n))


# -- budget arithmetic -------------------------------------------------------------------------

def test_budget_is_the_smaller_window_less_the_new_tokens():
    assert token_budget(8192, 96) == 8096
    assert token_budget(8192, 96, user_limit=1024) == 928
    assert token_budget(512, 96, user_limit=4096) == 416


def test_the_prompt_fills_the_budget_to_the_last_word_that_fits(tokenizer):
    doc = words_only(3000)  # no paragraph or sentence breaks: the cut is at a word
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=512, max_new_tokens=96, user_limit=4096)
    assert ctx.budget == 416
    assert ctx.cut and ctx.cut_at == "word"
    assert ctx.token_count == count_tokens(tokenizer, ctx.prompt) <= ctx.budget
    assert ctx.prompt == doc[ctx.context_start_char:]
    assert doc[ctx.context_start_char - 1] == " " and doc[ctx.context_start_char] != " "
    earlier = doc.rfind(" ", 0, ctx.context_start_char - 1) + 1
    assert count_tokens(tokenizer, doc[earlier:]) > ctx.budget  # one more word would not fit
    assert ctx.token_count >= ctx.budget - 8


def test_user_limit_lowers_the_budget(tokenizer):
    doc = words_only(3000)
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=8192, max_new_tokens=100, user_limit=300)
    assert ctx.budget == 200 and ctx.token_count <= 200


def test_a_short_document_is_included_whole(tokenizer):
    doc = prose(3)
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=2048, max_new_tokens=96)
    assert ctx.prompt == doc and not ctx.cut and ctx.cut_at is None and ctx.notice is None
    assert ctx.context_start_char == 0


# -- boundaries ------------------------------------------------------------------------------

def test_the_text_starts_at_a_paragraph_and_the_notice_names_it(tokenizer):
    doc = prose(200)
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=600, max_new_tokens=96)
    start = ctx.context_start_char
    assert ctx.cut_at == "paragraph" and doc[start - 2:start] == "\n\n"
    n = doc[:start].count("\n\n") + 1
    assert doc[start:].startswith(f"P{n - 1} ")
    assert ctx.notice == f"context starts at paragraph {n:,}: {start:,} earlier characters not seen"


def test_one_long_paragraph_starts_at_a_sentence(tokenizer):
    doc = prose(1, sentences=300)
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=512, max_new_tokens=64)
    start = ctx.context_start_char
    assert ctx.cut_at == "sentence" and doc[start - 2:start] == ". " and doc[start].isupper()
    assert ctx.notice == f"context starts inside paragraph 1, at a sentence: {start:,} earlier characters not seen"


def test_a_paragraph_far_back_is_not_worth_most_of_the_room(tokenizer):
    doc = prose(3) + "\n\n" + prose(1, sentences=200)  # the last paragraph alone is far longer than the budget
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=512, max_new_tokens=64)
    assert ctx.cut_at == "sentence" and ctx.token_count > 0.7 * ctx.budget


def test_nothing_after_the_cursor_is_seen(tokenizer):
    doc = prose(40)
    cursor = doc.index("P20 ") + 30
    ctx = assemble_context(doc, cursor, tokenizer, context_window=400, max_new_tokens=96)
    assert ctx.prompt == doc[ctx.context_start_char:cursor]
    assert "P21" not in ctx.prompt


def test_text_without_any_space_is_cut_at_a_character_as_a_last_resort(tokenizer):
    doc = "abcdefghij" * 5000
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=256, max_new_tokens=56)
    assert ctx.cut_at == "character" and ctx.token_count <= 200
    assert ctx.prompt == doc[ctx.context_start_char:]


def test_cursor_at_zero_gives_only_memory_and_note(tokenizer):
    doc = prose(5)
    ctx = assemble_context(doc, 0, tokenizer, context_window=512, max_new_tokens=96)
    assert ctx.prompt == "" and not ctx.cut and ctx.notice is None
    assert ctx.token_count == count_tokens(tokenizer, "")
    ctx = assemble_context(doc, 0, tokenizer, context_window=512, max_new_tokens=96, memory="Rain all day.",
                           authors_note="[Tone: bleak]")
    assert ctx.prompt == "Rain all day.\n\n[Tone: bleak]\n\n"


def test_crlf_text_is_cut_after_the_whole_blank_line_and_keeps_its_line_endings(tokenizer):
    doc = prose(120, sep="\r\n\r\n")
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=500, max_new_tokens=96, memory="Memory.")
    start = ctx.context_start_char
    assert ctx.cut_at == "paragraph" and doc[start - 4:start] == "\r\n\r\n"
    assert ctx.prompt.startswith("Memory.\r\n\r\nP")
    n = doc[:start].count("\r\n\r\n") + 1
    assert f"paragraph {n:,}:" in (ctx.notice or "")


def test_multibyte_text_is_counted_exactly(tinyllama_tokenizer):
    tok = tinyllama_tokenizer
    para = "Zoë’s café — naïve 🦊🦊 façade, 東京の夜は長い。 Ελληνικά κείμενα! 🌧️ rain on the roof."
    doc = "\n\n".join(f"{i}. {para}" for i in range(300))
    ctx = assemble_context(doc, len(doc), tok, context_window=700, max_new_tokens=96, memory="Ünïcode mémoire 🐉")
    assert ctx.token_count == count_tokens(tok, ctx.prompt) <= ctx.budget
    assert ctx.cut_at == "paragraph"
    assert ctx.prompt.endswith(doc[ctx.context_start_char:])


# -- Memory and Author's note -----------------------------------------------------------------

def test_memory_comes_first_and_the_note_sits_depth_paragraphs_back(tokenizer):
    doc = "First para.\n\nSecond para.\n\nThird para.\n\nFourth, where the cur"
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=2048, max_new_tokens=96,
                           memory="  Anna is a smuggler.\n", authors_note="[Style: terse]", note_depth=2)
    assert ctx.prompt == ("Anna is a smuggler.\n\nFirst para.\n\nSecond para.\n\n[Style: terse]\n\n"
                          "Third para.\n\nFourth, where the cur")
    ms, me = ctx.memory_span or (0, 0)
    ns, ne = ctx.note_span or (0, 0)
    assert ctx.prompt[ms:me] == "Anna is a smuggler." and ctx.prompt[ns:ne] == "[Style: terse]"


def test_note_depth_zero_one_and_deeper_than_the_text(tokenizer):
    doc = "One.\n\nTwo.\n\nThree"

    def prompt(depth: int, text: str = doc) -> str:
        return assemble_context(text, len(text), tokenizer, context_window=2048, max_new_tokens=96,
                                authors_note="NOTE", note_depth=depth).prompt

    assert prompt(0) == "One.\n\nTwo.\n\nThree\n\nNOTE\n\n"
    assert prompt(1) == "One.\n\nTwo.\n\nNOTE\n\nThree"
    assert prompt(3) == prompt(9) == "NOTE\n\nOne.\n\nTwo.\n\nThree"
    # A cursor at the start of an empty paragraph: that paragraph counts as the first.
    assert prompt(1, "One.\n\nTwo.\n\n") == "One.\n\nTwo.\n\nNOTE\n\n"
    assert prompt(2, "One.\n\nTwo.\n\n") == "One.\n\nNOTE\n\nTwo.\n\n"


def test_memory_and_note_count_against_the_budget(tokenizer):
    doc = prose(200)
    memory = words_only(120)
    plain = assemble_context(doc, len(doc), tokenizer, context_window=800, max_new_tokens=96)
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=800, max_new_tokens=96, memory=memory,
                           authors_note="[Keep it dark and quiet]")
    assert ctx.token_count == count_tokens(tokenizer, ctx.prompt) <= ctx.budget == 704
    assert ctx.context_start_char > plain.context_start_char
    assert ctx.prompt.startswith(memory + "\n\n") and "[Keep it dark and quiet]\n\n" in ctx.prompt


def test_a_note_deeper_than_the_included_text_goes_to_its_top(tokenizer):
    doc = prose(200)
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=600, max_new_tokens=96, memory="M.",
                           authors_note="NOTE", note_depth=100)
    assert ctx.prompt.startswith("M.\n\nNOTE\n\nP")
    assert ctx.prompt.endswith(doc[ctx.context_start_char:])


def test_memory_longer_than_the_window_is_refused_by_how_much(tokenizer):
    memory = words_only(2000)
    with pytest.raises(ContextError, match=r"Memory is too long: [\d,]+ tokens, [\d,]+ over the 416-token") as info:
        assemble_context("Some text.", 10, tokenizer, context_window=512, max_new_tokens=96, memory=memory)
    assert info.value.over_by == count_tokens(tokenizer, memory) - 416


def test_memory_and_note_together_too_long_say_so(tokenizer):
    half = words_only(150)
    with pytest.raises(ContextError, match="Memory and the Author's note together"):
        assemble_context("Text.", 5, tokenizer, context_window=300, max_new_tokens=96, memory=half,
                         authors_note=half)


def test_memory_that_leaves_no_room_for_text_says_nothing_was_seen(tokenizer):
    doc = prose(10)
    memory = words_only(60)
    budget = count_tokens(tokenizer, memory + "\n\n")
    ctx = assemble_context(doc, len(doc), tokenizer, context_window=budget + 10, max_new_tokens=10, memory=memory)
    assert ctx.context_start_char == len(doc) and ctx.prompt == memory + "\n\n"
    assert ctx.notice == f"no document text fits beside Memory and the Author's note: {len(doc):,} characters not seen"


def test_bad_arguments_are_refused_by_name(tokenizer):
    with pytest.raises(ValueError, match="cursor"):
        assemble_context("abc", 4, tokenizer, context_window=512, max_new_tokens=96)
    with pytest.raises(ValueError, match="note_depth"):
        assemble_context("abc", 3, tokenizer, context_window=512, max_new_tokens=96, note_depth=-1)
    with pytest.raises(ContextError, match="leaves no room"):
        assemble_context("abc", 3, tokenizer, context_window=512, max_new_tokens=512)


# -- tokenizers that merge across seams, and speed ---------------------------------------------

def test_a_tokenizer_that_merges_across_seams_is_counted_on_the_whole_prompt():
    tok = RunLengthTokenizer()
    doc = " ".join(["aaaa"] * 400)
    ctx = assemble_context(doc, len(doc), tok, context_window=120, max_new_tokens=20, memory="aaaa",
                           authors_note="aaaa", note_depth=0)
    assert ctx.token_count == count_tokens(tok, ctx.prompt) <= 100
    assert ctx.prompt.startswith("aaaa\n\n") and ctx.prompt.endswith("aaaa\n\naaaa\n\n")


def test_ten_megabytes_with_the_cursor_at_the_end_tokenize_only_near_the_cursor(demo_tokenizer, capsys):
    doc = prose(20000, sentences=6)
    while len(doc) < 10_000_000:
        doc += "\n\n" + doc
    doc = doc[:10_000_000]
    tok = CountingTokenizer(demo_tokenizer)
    t0 = time.perf_counter()
    ctx = assemble_context(doc, len(doc), tok, context_window=8192, max_new_tokens=96, memory="Memory.",
                           authors_note="[Note]")
    elapsed = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n10 MB document, cursor at the end: {elapsed * 1000:.0f} ms, {tok.calls} tokenizer calls over "
              f"{tok.chars:,} characters ({tok.chars / len(doc):.1%} of the document), {ctx.token_count} tokens")
    assert ctx.token_count <= 8096 and ctx.cut_at == "paragraph"
    assert tok.chars < len(doc) // 20


def test_random_documents_and_cursors_keep_every_promise(tokenizer):
    import random

    rng = random.Random(7)
    pieces = ["Zoë", "café", "🦊", "rain", "東京", "the", "said.", "Why?", "\n\n", "\r\n\r\n", "\n", "  ", "—",
              "x" * 30]
    for _ in range(25):
        doc = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 900)))
        cursor = rng.randint(0, len(doc))
        window = rng.randint(60, 400)
        ctx = assemble_context(doc, cursor, tokenizer, context_window=window, max_new_tokens=20,
                               memory=rng.choice(["", "Memory 🐉."]), authors_note=rng.choice(["", "[Note]"]),
                               note_depth=rng.randint(0, 4))
        start = ctx.context_start_char
        assert ctx.token_count == count_tokens(tokenizer, ctx.prompt) <= window - 20
        assert 0 <= start <= cursor and ctx.cut == (start > 0)
        if 0 < start < cursor and ctx.cut_at != "character":
            assert doc[start - 1].isspace() and not doc[start].isspace()
        body = ctx.prompt
        for span in sorted(filter(None, (ctx.memory_span, ctx.note_span)), reverse=True):
            body = body[:span[0]] + body[span[1]:]
        # Apart from Memory, the note and the blank lines around them, the prompt is the text before the cursor.
        assert body.split() == doc[start:cursor].split()
