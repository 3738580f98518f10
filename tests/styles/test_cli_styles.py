"""`stylesteer styles ...` through the stylesteer entry point: output, JSON, exit codes."""

from __future__ import annotations

import json

import pytest

from app import main as entry
from app.cli import library
from tests.styles.tiny_tokenizer import TinyTokenizer


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    """The CLI loads only a tokenizer; here a tiny one instead of a model's."""
    monkeypatch.setattr(library, "_load_tokenizer", lambda _spec: TinyTokenizer())


def run(capsys, *argv):
    code = entry.main(["styles", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_list_show(capsys, texts):
    code, out, _err = run(capsys, "import", "mine", str(texts))
    assert code == 0
    assert "3 file(s) imported" in out
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    (style,) = json.loads(out)
    assert style["name"] == "mine" and style["n_documents"] == 3 and style["n_tokens"] == 18
    code, out, _ = run(capsys, "list")
    assert "mine" in out and "tiny-bytes" in out
    code, out, _ = run(capsys, "show", "mine", "--json")
    data = json.loads(out)
    for key in ("name", "tokenizer", "n_documents", "n_tokens", "ngrams", "documents", "skipped"):
        assert key in data
    assert set(data["ngrams"]) == {"1", "2", "3"}
    assert {"path", "sha256", "n_tokens"} <= set(data["documents"][0])
    code, out, _ = run(capsys, "show", "mine")
    assert code == 0 and "distinct 3-grams" in out


def test_exit_code_2_when_nothing_could_be_imported(capsys, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "bin.txt").write_bytes(b"\x00" * 64)
    code, out, _ = run(capsys, "import", "mine", str(tmp_path / "empty.txt"), str(tmp_path / "bin.txt"))
    assert code == 2
    assert "empty.txt: empty file" in out and "bin.txt: binary file" in out
    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == []


def test_exit_code_0_when_some_files_imported(capsys, texts, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    code, out, _ = run(capsys, "import", "mine", str(texts / "a.txt"), str(tmp_path / "empty.txt"))
    assert code == 0 and "1 skipped" in out
    code, out, _ = run(capsys, "import", "mine", str(texts / "a.txt"))  # only a duplicate: nothing to do
    assert code == 0 and "duplicate" in out


def test_import_json_summary(capsys, texts):
    code, out, _ = run(capsys, "import", "mine", str(texts), "--glob", "*.txt", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["imported"]) == 2 and data["created"]


def test_rename_delete_remove_doc(capsys, texts, monkeypatch):
    run(capsys, "import", "mine", str(texts))
    assert run(capsys, "rename", "mine", "yours")[0] == 0
    code, _, err = run(capsys, "rename", "mine", "x")
    assert code == 2 and "no style named 'mine'" in err
    _, out, _ = run(capsys, "show", "yours", "--json")
    doc = json.loads(out)["documents"][0]
    code, out, _ = run(capsys, "remove-doc", "yours", doc["sha256"])
    assert code == 0 and "Removed" in out
    _, out, _ = run(capsys, "show", "yours", "--json")
    assert json.loads(out)["n_documents"] == 2
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    assert run(capsys, "delete", "yours")[0] == 1
    monkeypatch.setattr("builtins.input", lambda _prompt: "y")
    assert run(capsys, "delete", "yours")[0] == 0
    _, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == []
    assert run(capsys, "delete", "yours", "--yes")[0] == 2


def test_export_and_import_file(capsys, texts, tmp_path):
    run(capsys, "import", "mine", str(texts))
    out_file = tmp_path / "mine.style"
    assert run(capsys, "export", "mine", str(out_file))[0] == 0
    code, out, _ = run(capsys, "import-file", str(out_file), "--name", "copy")
    assert code == 0 and "copy" in out
    garbage = tmp_path / "garbage.style"
    garbage.write_bytes(b"not a style")
    code, _, err = run(capsys, "import-file", str(garbage))
    assert code == 2 and "not a StyleSteer style file" in err


def test_rebuild(capsys, texts, monkeypatch):
    run(capsys, "import", "mine", str(texts))
    monkeypatch.setattr(library, "_load_tokenizer", lambda _spec: TinyTokenizer(name="other", offset=3))
    code, _, err = run(capsys, "import", "mine", str(texts / "a.txt"))
    assert code == 2 and "rebuild" in err
    code, out, _ = run(capsys, "rebuild", "mine", "--model", "whatever")
    assert code == 0 and "now uses tokenizer other" in out
