"""Blended styles: the mixture's math on a tiny vocabulary, parsing, and saved blends in the store."""

from __future__ import annotations

import math

import pytest
import torch

from styles import blend_store, migrations
from styles.blend import BlendError, parse_blend
from styles.blend_prior import BlendPrior
from styles.errors import StyleExists, StyleNotFound, TokenizerMismatch
from styles.importer import import_paths
from styles.ngrams import count_ngrams
from styles.prior import StylePrior
from styles.store import StyleStore

V = 16


def prior(docs, name, fingerprint="fp"):
    return StylePrior.from_counts(count_ngrams(docs, V), vocab_size=V, tokenizer_fingerprint=fingerprint, name=name)


@pytest.fixture
def two():
    return prior([[3, 5, 7, 3, 5, 7, 3, 5]], "a"), prior([[1, 2, 1, 2, 9, 9, 1, 3, 5, 2]], "b")


CONTEXTS = torch.tensor([[3, 5], [1, 2], [9, 9], [14, 15]])  # seen by a, by b, by b, by neither


# --------------------------------------------------------------------------- math


def test_log_mix_is_the_weighted_mixture_of_the_styles_distributions(two):
    a, b = two
    blend = BlendPrior([(a, 0.7), (b, 0.3)])
    expected = torch.log(0.7 * a.log_mix(CONTEXTS).double().exp() + 0.3 * b.log_mix(CONTEXTS).double().exp())
    got = blend.log_mix(CONTEXTS)
    assert got.shape == (4, V) and torch.isfinite(got).all()
    assert torch.allclose(got.double(), expected, atol=1e-6)
    assert torch.allclose(got.exp().sum(-1), torch.ones(4), atol=1e-5)  # still a distribution


def test_weights_are_normalised_and_the_other_members_mix(two):
    a, b = two
    blend = BlendPrior([(a, 7.0), (b, 3.0)])  # same as 0.7 / 0.3
    assert [w for _, w in blend.parts] == pytest.approx([0.7, 0.3])
    ctx = [3, 5]
    manual = math.log(0.7 * math.exp(a.log_prob(ctx, 7)) + 0.3 * math.exp(b.log_prob(ctx, 7)))
    assert blend.log_prob(ctx, 7) == pytest.approx(manual, rel=1e-9)
    assert torch.allclose(blend.paper_delta(CONTEXTS), 0.7 * a.paper_delta(CONTEXTS) + 0.3 * b.paper_delta(CONTEXTS))
    assert blend.has_bigram(3, 5) and blend.has_bigram(9, 9) and not blend.has_bigram(14, 15)
    # The top unigrams follow the weighted mixture of unigram distributions: 3, 5 lead (a's, weight 0.7).
    assert blend.top_unigram_ids(2) == {3, 5}
    assert blend.top_unigram_ids(100) == a.top_unigram_ids(100) | b.top_unigram_ids(100)


def test_weights_one_and_zero_are_exactly_the_single_style(two):
    a, b = two
    spec = parse_blend("a:1,b:0")
    assert spec.parts == (("a", 1.0),)  # the zero-weight part is dropped
    blend = BlendPrior([({"a": a, "b": b}[name], w) for name, w in spec.parts])
    assert torch.equal(blend.log_mix(CONTEXTS), a.log_mix(CONTEXTS))
    assert torch.equal(blend.paper_delta(CONTEXTS), a.paper_delta(CONTEXTS))
    assert blend.log_prob([3, 5], 7) == a.log_prob([3, 5], 7)


def test_a_blend_is_a_prior_to_the_engine(two):
    from engine.prior import Prior
    from engine.steering import StyleSteeringProcessor

    blend = BlendPrior([(two[0], 0.5), (two[1], 0.5)])
    assert isinstance(blend, Prior)
    scores = torch.zeros(4, V)
    steered = StyleSteeringProcessor(blend, lam=1.0, mode="dense")(CONTEXTS, scores)
    assert torch.allclose(steered, blend.log_mix(CONTEXTS))  # z' = z + λ log P_mix of the mixture


def test_parts_from_different_tokenizers_are_refused(two):
    a, _ = two
    other = prior([[1, 2, 3]], "c", fingerprint="other")
    with pytest.raises(TokenizerMismatch, match="rebuild c"):
        BlendPrior([(a, 0.5), (other, 0.5)])


# --------------------------------------------------------------------------- parsing


def test_parse_normalises_and_keeps_order():
    spec = parse_blend(" holmes:0.7 , austen:0.3")
    assert spec.parts == (("holmes", pytest.approx(0.7)), ("austen", pytest.approx(0.3)))
    assert parse_blend("x:2,y:6").parts == (("x", 0.25), ("y", 0.75))
    assert parse_blend("a:b:1").parts == (("a:b", 1.0),)  # split at the last ':'
    assert parse_blend("holmes:0.7,austen:0.3").text() == "holmes:0.7,austen:0.3"


@pytest.mark.parametrize("text, message", [
    ("a:-0.2,b:1", "cannot be negative: 'a' has -0.2"),
    ("a:0,b:0", "add up to zero"),
    ("a:x", "weight of 'a' in the blend is not a number: 'x'"),
    ("a:inf", "finite"),
    ("a:nan,b:1", "finite"),
    ("a:1,,b:1", "empty part"),
    ("a:1,b", "'b' in the blend is not NAME:WEIGHT"),
    (":1", "is not NAME:WEIGHT"),
    ("a:1,A:2", "appears twice"),
])
def test_bad_specs_are_one_line(text, message):
    with pytest.raises(BlendError) as info:
        parse_blend(text)
    assert message in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- store


@pytest.fixture
def library(store, tiny, tmp_path):
    for name, text in (("holmes", "abcabcabd\n"), ("austen", "xyzzyxyz\n")):
        f = tmp_path / f"{name}.txt"
        f.write_text(text, encoding="utf-8")
        import_paths(store, name, [f], tiny)
    return store


def test_saved_blend_round_trip(library, tmp_path):
    saved = blend_store.save_blend(library, "mix", "holmes:7,austen:3")
    assert saved.spec.parts == (("holmes", pytest.approx(0.7)), ("austen", pytest.approx(0.3)))
    library.close()
    store = StyleStore(tmp_path / "styles.db")  # read back from disk
    (again,) = blend_store.list_blends(store)
    assert again.name == "mix" and again.spec == saved.spec and not again.missing
    blend = store.load_prior("MIX")  # names are case-insensitive, like styles'
    assert isinstance(blend, BlendPrior) and blend.name == "mix"
    ids = torch.tensor([[0, 1]])
    manual = torch.logsumexp(torch.stack([store.load_prior("holmes").log_mix(ids) + math.log(0.7),
                                          store.load_prior("austen").log_mix(ids) + math.log(0.3)]), 0)
    assert torch.allclose(blend.log_mix(ids), manual)
    inline = store.load_prior("holmes:0.7,austen:0.3")
    assert torch.equal(inline.log_mix(ids), blend.log_mix(ids))
    # Saving the name again replaces the blend.
    assert blend_store.save_blend(store, "mix", "austen:1").spec.parts == (("austen", 1.0),)
    store.close()


def test_blend_names_and_parts_are_checked(library):
    with pytest.raises(StyleNotFound, match="no style named 'poe'"):
        blend_store.save_blend(library, "mix", "holmes:1,poe:1")
    with pytest.raises(StyleExists):
        blend_store.save_blend(library, "holmes", "austen:1")
    blend_store.save_blend(library, "mix", "holmes:1,austen:1")
    with pytest.raises(BlendError, match="'mix' is a blend"):
        blend_store.save_blend(library, "mix2", "mix:1,austen:1")
    with pytest.raises(BlendError, match="cannot contain ':'"):
        blend_store.save_blend(library, "a:b", "austen:1")
    with pytest.raises(StyleExists, match="blend named 'mix'"):
        library.create_style("mix", "tok", "abcdef12", 300)
    with pytest.raises(StyleNotFound, match="no style named 'poe'"):
        library.load_prior("holmes:0.5,poe:0.5")
    assert blend_store.list_blends(library)[0].name == "mix"  # nothing half-saved


def test_rename_and_delete_of_a_part_and_of_the_blend(library):
    blend_store.save_blend(library, "mix", "holmes:0.6,austen:0.4")
    library.rename("holmes", "sherlock")
    assert blend_store.find_blend(library, "mix").spec.names == ["sherlock", "austen"]
    library.delete("austen")
    saved = blend_store.find_blend(library, "mix")
    assert saved.missing == ("austen",)
    with pytest.raises(BlendError, match="the blend 'mix' uses 'austen', which is no longer in the library"):
        library.load_prior("mix")
    library.rename("mix", "blend2")
    assert blend_store.find_blend(library, "mix") is None
    library.delete("blend2")
    assert blend_store.list_blends(library) == []
    assert library.exists("sherlock")  # deleting a blend leaves its styles


def test_an_existing_library_is_migrated(library, tmp_path):
    """A library from before blends (only m001) gains the blends tables and keeps its styles."""
    library.conn.execute("DROP TABLE blend_parts")
    library.conn.execute("DROP TABLE blends")
    library.conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm002_blends'")
    library.conn.commit()
    library.close()
    store = StyleStore(tmp_path / "styles.db")
    try:
        assert migrations.is_current(store.db)
        assert {s.name for s in store.list_styles()} == {"holmes", "austen"}
        blend_store.save_blend(store, "mix", "holmes:1,austen:1")
        assert isinstance(store.load_prior("mix"), BlendPrior)
    finally:
        store.close()
