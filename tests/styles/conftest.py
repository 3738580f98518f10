"""Fixtures for the style library tests: a tiny byte tokenizer and a fresh store."""

from __future__ import annotations

import pytest

from styles.store import StyleStore
from tests.styles.tiny_tokenizer import TinyTokenizer


@pytest.fixture
def tiny() -> TinyTokenizer:
    return TinyTokenizer()


@pytest.fixture
def store(tmp_path):
    s = StyleStore(tmp_path / "styles.db")
    yield s
    s.close()


@pytest.fixture
def texts(tmp_path):
    """Three small documents in a folder."""
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("abcab\n", encoding="utf-8")
    (folder / "b.md").write_text("xyz\n", encoding="utf-8")
    (folder / "c.txt").write_text("abc\nabc\n", encoding="utf-8")
    return folder
