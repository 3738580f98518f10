"""Blended styles through the `stylesteer` command: save, list, show, delete, generate; bad blends."""

from __future__ import annotations

import json

import pytest

from app.main import main
from styles.store import StyleStore

PROMPT = "It was a dark night and"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tiny_library():
    """Two empty styles 'holmes' and 'bard' (enough for the checks made before a model loads)."""
    with StyleStore() as store, store.transaction():
        for name in ("holmes", "bard"):
            store.create_style(name, "tiny", "abcdef12", 300)


@pytest.mark.parametrize("style, message", [
    ("holmes:-0.5,bard:1", "blend weights cannot be negative: 'holmes' has -0.5"),
    ("holmes:0,bard:0", "blend weights add up to zero"),
    ("holmes:1,poe:1", "no style named 'poe'"),
    ("holmes:x", "is not a number"),
    ("holmes:1,holmes:2", "appears twice"),
])
def test_bad_blends_are_one_line_and_exit_2_before_a_model_loads(capsys, tiny_library, monkeypatch, style, message):
    from app.cli import generate

    monkeypatch.setattr(generate, "load_model_for_cli", lambda _args: pytest.fail("the model was loaded"))
    code, out, err = run(capsys, "generate", "--model", "demo", "--style", style, PROMPT)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    code, _, err = run(capsys, "styles", "blend", "mix", style)
    assert code == 2 and message in err and err.count("\n") == 1


def test_the_sweep_takes_one_style(capsys, tiny_library, monkeypatch):
    from app.cli import sweep

    monkeypatch.setattr(sweep, "load_model_for_cli", lambda _args: pytest.fail("the model was loaded"))
    assert run(capsys, "styles", "blend", "mix", "holmes:1,bard:1")[0] == 0
    for style in ("mix", "holmes:1,bard:2"):
        code, _, err = run(capsys, "sweep", "--style", style, "--model", "demo")
        assert code == 2 and "is a blend: sweep each of its styles" in err and err.count("\n") == 1


def test_saved_blend_list_show_rename_delete(capsys, tiny_library):
    assert run(capsys, "styles", "blend", "mix", "holmes:7,bard:3")[1] == "Saved blend 'mix': holmes 0.7 + bard 0.3.\n"
    code, out, _ = run(capsys, "styles", "list")
    assert code == 0 and "BLEND" in out and "mix  holmes 0.7 + bard 0.3" in out
    code, out, _ = run(capsys, "styles", "list", "--json")
    (blend,) = [e for e in json.loads(out) if e.get("kind") == "blend"]
    assert blend["blend"] == [{"style": "holmes", "weight": pytest.approx(0.7)},
                              {"style": "bard", "weight": pytest.approx(0.3)}]
    code, out, _ = run(capsys, "styles", "show", "mix")
    assert code == 0 and "Blend:      mix" in out and "0.700  holmes" in out
    code, _, err = run(capsys, "styles", "export", "mix", "mix.style")
    assert code == 2 and "'mix' is a blend of styles, which has no documents of its own" in err
    assert run(capsys, "styles", "rename", "bard", "shakespeare")[0] == 0
    assert "holmes 0.7 + shakespeare 0.3" in run(capsys, "styles", "list")[1]
    assert run(capsys, "styles", "delete", "shakespeare", "--yes")[0] == 0
    code, out, err = run(capsys, "generate", "--model", "demo", "--style", "mix", PROMPT)
    assert code == 2 and "the blend 'mix' uses 'shakespeare', which is no longer in the library" in err
    assert "(missing: shakespeare)" in run(capsys, "styles", "list")[1]
    code, out, _ = run(capsys, "styles", "delete", "mix")
    assert code == 0 and "Deleted blend 'mix'" in out
    assert "mix" not in run(capsys, "styles", "list")[1]


@pytest.mark.model
def test_generate_with_blends_on_the_demo_model(capsys, demo_lm, corpora_dir, tmp_path):
    """Two small styles imported with the demo model's tokenizer; a saved blend and the same blend
    written inline sample the same tokens at a fixed seed, and holmes:1,bard:0 those of holmes."""
    for name, source in (("holmes", "sherlock_holmes.txt"), ("bard", "tinyshakespeare.txt")):
        sample = tmp_path / f"{name}.txt"
        sample.write_text((corpora_dir / source).read_text(encoding="utf-8")[:12_000], encoding="utf-8")
        assert run(capsys, "styles", "import", name, str(sample), "--model", "demo")[0] == 0
    assert run(capsys, "styles", "blend", "mix", "holmes:0.7,bard:0.3")[0] == 0

    def tokens(style):
        code, out, _ = run(capsys, "generate", "--model", "demo", "--style", style, "--json", "--max-new-tokens",
                           "8", "--seed", "7", "--lam", "0.6", PROMPT)
        assert code == 0
        rows = [json.loads(line) for line in out.splitlines()]
        assert rows[-1]["summary"]["metrics"]["style_ppl"] > 0  # style metrics under the blend
        return [r["token_id"] for r in rows if "token_id" in r]

    assert tokens("mix") == tokens("holmes:0.7,bard:0.3")
    assert tokens("holmes:1,bard:0") == tokens("holmes")


@pytest.mark.model
def test_a_part_from_another_tokenizer_gets_the_rebuild_message(capsys, demo_lm):
    with StyleStore() as store, store.transaction():
        store.create_style("mine", "demo", demo_lm.fingerprint, demo_lm.vocab_size)
        store.create_style("foreign", "some/other-tokenizer", "0123456789abcdef", demo_lm.vocab_size)
    code, out, err = run(capsys, "generate", "--model", "demo", "--style", "mine:0.5,foreign:0.5", PROMPT)
    assert code == 2 and out == ""
    assert "style 'foreign' was built with another tokenizer" in err and "styles rebuild foreign" in err
