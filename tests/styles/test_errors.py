"""One tokenizer check with one message, wherever a style meets a tokenizer; style names as file names."""

from __future__ import annotations

import pytest

from engine.steering import check_compatible
from styles import importer
from styles.errors import StyleError, TokenizerMismatch, check_tokenizer
from styles.importer import import_paths
from styles.paths import slug
from tests.styles.tiny_tokenizer import TinyTokenizer


def test_the_tokenizer_check_says_how_to_rebuild():
    check_tokenizer("mine", "abc", "abc")  # the same tokenizer: nothing to say
    with pytest.raises(TokenizerMismatch) as caught:
        check_tokenizer("mine", "abc", "def", model="demo")
    message = str(caught.value)
    assert "another tokenizer" in message and "abc" in message and "def" in message
    assert "`stylesteer styles rebuild mine --model demo`" in message
    # the user's to fix wherever it is caught: as a style error or as a bad value
    assert isinstance(caught.value, StyleError) and isinstance(caught.value, ValueError)


def test_steering_a_model_names_the_style_in_the_message(store, texts):
    import_paths(store, "mine", [texts], TinyTokenizer())
    prior = store.load_prior("mine")
    assert prior.name == "mine"

    class OtherModel:
        fingerprint = "0123456789abcdef"
        name = "demo"

    with pytest.raises(TokenizerMismatch, match="`stylesteer styles rebuild mine --model demo`"):
        check_compatible(prior, OtherModel())


def test_importing_with_another_tokenizer_gives_the_same_message(store, texts):
    import_paths(store, "mine", [texts / "a.txt"], TinyTokenizer())
    with pytest.raises(TokenizerMismatch, match="`stylesteer styles rebuild mine --model other`"):
        import_paths(store, "mine", [texts / "b.md"], TinyTokenizer(name="other", offset=7))


def test_a_fingerprint_given_is_not_computed_again(store, texts, monkeypatch):
    tiny = TinyTokenizer()
    from styles.tokenizers import tokenizer_fingerprint

    known = tokenizer_fingerprint(tiny)

    def never(_tokenizer: object) -> str:
        raise AssertionError("the fingerprint was computed again")

    monkeypatch.setattr(importer, "tokenizer_fingerprint", never)
    report = import_paths(store, "mine", [texts], tiny, fingerprint=known)
    assert len(report.imported) == 3 and store.get("mine").tokenizer_fingerprint == known
    assert len(importer.rebuild(store, "mine", tiny, fingerprint=known).imported) == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Holmes", "Holmes"), ("my style/2", "my_style_2"), ("v1.0", "v1.0"), ("  ", "style"), ("..", "style"),
     ("../etc", "etc"), (".hidden", "hidden"), ("é", "style")],
)
def test_slug(name, expected):
    assert slug(name) == expected
