"""The tokenizer built in short steps is exactly the one AutoTokenizer builds, and loading keeps the GIL free."""

from __future__ import annotations

import gc
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE, WordPiece

from engine import models, tokenizer_load
from engine.tokenizer_load import load_stepwise, parse_json_stepwise, read_text_stepwise
from styles.tokenizers import tokenizer_fingerprint, vocab_fingerprint
from tests.conftest import bpe_build_ms

# A thread sleeping 2 ms between ticks must never wait longer than this while a model loads:
# the app's GUI heartbeat allows 50 ms between its 10 ms ticks.
GIL_GAP_MS = 50.0

TEXTS = [
    "",
    " ",
    "   leading and trailing spaces   ",
    "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it?",
    "Ünïcödé — naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어, עִבְרִית, العربية",
    "emoji 😀🎉👩‍👩‍👧 and a zero\u200bwidth space, combining e\u0301, NBSP\u00a0here",
    "tabs\tand\nnewlines\r\nand   runs\n\n\nof blank lines",
    "def f(x):\n    return {'a': [1, 2, 3]}  # code-ish \\ \"quotes\"",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi.<|im_end|><|endoftext|>",
    "<repo_name>stylesteer<file_sep>main.py<filename>x<gh_stars>5<|endoftext|>tail",
    "<|im_start|><|im_start|> <|im_end|>x<|endoftext|>y <pad> <unk> [UNK]",
]


def _reference_fingerprint(vocab: dict[str, int]) -> str:
    """The fingerprint as it was always computed (stored styles carry this value)."""
    payload = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _plain(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _assert_same_tokenizer(a, b, texts, tmp_path: Path) -> None:
    assert type(a) is type(b)
    assert json.loads(a.backend_tokenizer.to_str()) == json.loads(b.backend_tokenizer.to_str())
    assert a.get_vocab() == b.get_vocab() and len(a) == len(b) and a.vocab_size == b.vocab_size
    assert a.special_tokens_map == b.special_tokens_map
    assert a.all_special_tokens == b.all_special_tokens and a.all_special_ids == b.all_special_ids
    assert (a.bos_token_id, a.eos_token_id, a.pad_token_id, a.unk_token_id) == (
        b.bos_token_id, b.eos_token_id, b.pad_token_id, b.unk_token_id)
    assert a.added_tokens_decoder == b.added_tokens_decoder
    assert {k: repr(v) for k, v in a.init_kwargs.items()} == {k: repr(v) for k, v in b.init_kwargs.items()}
    for text in texts:
        ea = a(text, return_offsets_mapping=len(text) < 10_000)
        eb = b(text, return_offsets_mapping=len(text) < 10_000)
        assert ea == eb, text[:80]
        ids = ea["input_ids"]
        assert a.decode(ids) == b.decode(ids)
        assert a.decode(ids, skip_special_tokens=True) == b.decode(ids, skip_special_tokens=True)
        if len(text) < 10_000:
            assert a.convert_ids_to_tokens(ids) == b.convert_ids_to_tokens(ids)
            assert a(text, add_special_tokens=False) == b(text, add_special_tokens=False)
    a.save_pretrained(tmp_path / "a")
    b.save_pretrained(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# -- the demo model -------------------------------------------------------------------------------

@pytest.mark.model
@pytest.mark.corpora
def test_demo_tokenizer_built_stepwise_equals_autotokenizer(demo_lm, corpora_dir, tmp_path):
    folder = Path(demo_lm.source)
    built = load_stepwise(folder)
    assert built is not None, "the demo model's folder should take the stepwise path"
    plain = _plain(folder)
    texts = TEXTS + [p.read_text(encoding="utf-8")[:400_000] for p in sorted(corpora_dir.glob("*.txt"))]
    _assert_same_tokenizer(built.tokenizer, plain, texts, tmp_path)
    assert built.fingerprint == tokenizer_fingerprint(plain) == _reference_fingerprint(plain.get_vocab())
    # load_model takes the same path and keeps the fingerprint it computed on the way
    assert demo_lm.fingerprint == built.fingerprint
    assert type(demo_lm.tokenizer) is type(plain)
    assert models.load_tokenizer("demo").backend_tokenizer.to_str() == plain.backend_tokenizer.to_str()


@pytest.mark.model
def test_demo_tokenizer_json_parses_stepwise_like_json_loads(demo_lm, monkeypatch):
    text = read_text_stepwise(Path(demo_lm.source) / "tokenizer.json")
    assert text == (Path(demo_lm.source) / "tokenizer.json").read_text(encoding="utf-8")
    assert parse_json_stepwise(text) == json.loads(text)
    monkeypatch.setattr(tokenizer_load, "CHUNK_CHARS", 5000)  # many more pieces, same result
    assert parse_json_stepwise(text) == json.loads(text)


@pytest.mark.model
def test_model_load_never_holds_the_gil_long(demo_lm, monkeypatch):
    """While the demo model loads on a thread, another thread sleeping 2 ms gets to run in time.

    A step that holds the GIL (a long C call: parsing tokenizer.json in one go, listing the
    vocabulary, a full garbage collection) shows as a gap as long as the step; the longest step
    left is building the BPE model (~20-30 ms; the plain AutoTokenizer path gave 50-65 ms gaps
    here). Two loads, and the better of them must pass: a real long step shows in both, a
    scheduling hiccup on a busy machine rarely does twice.
    """
    built: list[object] = []

    def spy(source):
        built.append(load_stepwise(source))
        return built[-1]

    monkeypatch.setattr(models, "load_stepwise", spy)
    gc.freeze()  # as the app does after importing torch (preload_engine)
    try:
        worst = [_longest_gap_while(lambda: models.load_model("demo", device="cpu")) for _ in range(2)]
    finally:
        gc.unfreeze()
    # The one step that cannot be split, timed here: nothing else may hold the GIL longer.
    bound = max(GIL_GAP_MS, 1.5 * bpe_build_ms(demo_lm.source) + 10)
    print(f"\nlongest GIL gaps while loading the demo model: {worst[0]:.1f}, {worst[1]:.1f} ms (bound {bound:.0f})")
    assert len(built) == 2 and None not in built, "load_model should build the demo tokenizer stepwise"
    assert min(worst) < bound, f"loading the model held the GIL for {min(worst):.1f} ms"


def _longest_gap_while(job) -> float:
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, on the test's thread
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run)
    worst, last = 0.0, time.perf_counter()
    worker.start()
    while not done.is_set():
        time.sleep(0.002)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    worker.join()
    if errors:
        raise errors[0]
    return worst * 1000


# -- small tokenizers made here: the stepwise path, and every fallback ---------------------------

CORPUS = ["the cat sat on the mat", "a naïve café — déjà vu", "stylesteer steers style", "日本語 テキスト 😀"] * 20


def _byte_level_bpe(folder: Path, *, specials=("<|endoftext|>", "<pad>"), string_merges: bool = False) -> Path:
    """A GPT-2 style byte-level BPE tokenizer folder, as transformers 5 saves one."""
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    if string_merges:  # the older "a b" form of merges
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        spec["model"]["merges"] = [" ".join(m) for m in spec["model"]["merges"]]
        (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False, indent=1), encoding="utf-8")
    _configs(folder, eos_token=specials[0], pad_token=specials[-1])
    return folder


def _configs(folder: Path, **tokens: str) -> None:
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "TokenizersBackend", **tokens}))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 400}))


@pytest.mark.parametrize("string_merges", [False, True])
def test_small_bpe_takes_the_stepwise_path(tmp_path, string_merges):
    folder = _byte_level_bpe(tmp_path / "bpe", string_merges=string_merges)
    built = load_stepwise(folder)
    assert built is not None
    plain = _plain(folder)
    _assert_same_tokenizer(built.tokenizer, plain, TEXTS + CORPUS[:4], tmp_path)
    assert built.fingerprint == tokenizer_fingerprint(plain) == _reference_fingerprint(plain.get_vocab())


def test_legacy_special_tokens_map_is_left_to_transformers(tmp_path):
    folder = _byte_level_bpe(tmp_path / "bpe")
    (folder / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<pad>", "unk_token": "<|endoftext|>"}))
    built = load_stepwise(folder)
    assert built is not None
    _assert_same_tokenizer(built.tokenizer, _plain(folder), TEXTS, tmp_path)


def test_added_token_outside_the_vocabulary_falls_back(tmp_path):
    folder = _byte_level_bpe(tmp_path / "bpe")
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    spec["added_tokens"].append({"id": 400, "content": "<extra>", "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True})
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    assert load_stepwise(folder) is None
    tok = models.load_tokenizer(str(folder))
    assert tok.convert_tokens_to_ids("<extra>") == _plain(folder).convert_tokens_to_ids("<extra>")


def test_wordpiece_and_missing_files_fall_back_to_autotokenizer(tmp_path):
    folder = tmp_path / "wordpiece"
    folder.mkdir()
    vocab = {"[UNK]": 0, "[PAD]": 1, "the": 2, "cat": 3, "sat": 4, "##s": 5, "on": 6, "mat": 7}
    rust = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.Whitespace()
    rust.add_special_tokens([AddedToken("[PAD]", special=True)])
    rust.save(str(folder / "tokenizer.json"))
    _configs(folder, unk_token="[UNK]", pad_token="[PAD]")
    assert load_stepwise(folder) is None
    tok = models.load_tokenizer(str(folder))
    assert tok("the cats sat on the dog", add_special_tokens=False)["input_ids"] == [2, 3, 5, 4, 6, 2, 0]

    bare = tmp_path / "no-tokenizer-json"
    bare.mkdir()
    _configs(bare)
    assert load_stepwise(bare) is None
    assert load_stepwise(tmp_path / "does-not-exist") is None

    other_class = _byte_level_bpe(tmp_path / "gpt2-class")
    (other_class / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    assert load_stepwise(other_class) is None


def test_any_error_on_the_stepwise_path_falls_back(tmp_path, monkeypatch):
    folder = _byte_level_bpe(tmp_path / "bpe")

    def broken(folder: Path):
        raise RuntimeError("boom")

    monkeypatch.setattr(tokenizer_load, "_load", broken)
    assert load_stepwise(folder) is None
    tok = models.load_tokenizer(str(folder))
    assert tok.backend_tokenizer.to_str() == _plain(folder).backend_tokenizer.to_str()


def test_a_copy_made_by_transformers_is_not_accepted(tmp_path, monkeypatch):
    """If transformers ever stops taking the prebuilt backend as is, the plain path takes over."""
    import copy

    folder = _byte_level_bpe(tmp_path / "bpe")
    monkeypatch.setattr(tokenizer_load._Prebuilt, "__deepcopy__", lambda self, _memo: copy.deepcopy(self.backend))
    assert load_stepwise(folder) is None


# -- the pieces ----------------------------------------------------------------------------------

TRICKY = {
    "version": "1.0",
    "s": "comma, \"quote\", [bracket] {brace}, back\\slash\\\", \u00e9\U0001f600",
    "e": [], "o": {}, "n": None, "t": True, "f": False, "x": -1.5e3,
    "nested": [[[], [[]]], {"a": [1, {"b": ", ]}"}]}, "", ","],
    "model": {
        "type": "BPE",
        "vocab": {"a,b": 0, "\\": 1, "\"": 2, ", \"": 3, "}": 4, "]": 5, "Ġthe": 6, "{\"k\": 1}": 7},
        "merges": [["a", "b"], ["c, d", "e"], ["\"", ","], ["]", "["]],
        "more": [{"id": 0, "content": "x, y"}, {"id": 1, "content": "}{"}],
    },
    "last": "end",
}


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("separators", [None, (",", ":")])
def test_parse_json_stepwise_matches_json_loads_at_any_piece_size(monkeypatch, indent, separators):
    text = json.dumps(TRICKY, indent=indent, separators=separators if indent is None else None,
                      ensure_ascii=False)
    for chunk in (1, 2, 3, 5, 8, 13, 40, 1000):
        monkeypatch.setattr(tokenizer_load, "CHUNK_CHARS", chunk)
        assert parse_json_stepwise(text) == TRICKY, chunk
        assert parse_json_stepwise(json.dumps([TRICKY, [1, 2, 3]])) == [TRICKY, [1, 2, 3]]
        assert parse_json_stepwise("  [1, 2, 3] \n") == [1, 2, 3]
        assert parse_json_stepwise('"just a string"') == "just a string"


def test_parse_json_stepwise_rejects_what_json_loads_rejects(monkeypatch):
    monkeypatch.setattr(tokenizer_load, "CHUNK_CHARS", 4)
    text = json.dumps(TRICKY)
    for bad in (text[:-1], text[:len(text) // 2], text + "x", text + "{}", "{'a': 1}", '{"a" 1}',
                '{"a": [1, 2}', '{"a": 1,}', "", "\ufeff{}"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad)
        with pytest.raises(json.JSONDecodeError):
            parse_json_stepwise(bad)


def test_vocab_fingerprint_is_the_stored_value():
    vocab = {"a": 0, "Ġthe": 5, "é\"q": 2, "<|end|>": 7, "b": 2, "\\": 1}
    # Computed once with the original one-call code; stored styles carry such values.
    assert vocab_fingerprint(vocab) == "8265645e32af525a" == _reference_fingerprint(vocab)
    assert vocab_fingerprint({}) == _reference_fingerprint({})
    big = {f"tok{i}·{chr(0x400 + i % 200)}": (i * 7919) % 20_011 for i in range(20_011)}
    big.update({"dup-a": 5, "dup-b": 5})  # equal ids keep their insertion order, as sorted() does
    assert vocab_fingerprint(big) == _reference_fingerprint(big)
