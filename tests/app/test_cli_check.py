"""`stylesteer check`: bad input is one line and exit 2; --json on the demo model; --evaluate's report."""

from __future__ import annotations

import json
import re

import pytest

from app.cli import check
from app.main import main
from styles.store import StyleStore


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def text_file(tmp_path):
    f = tmp_path / "draft.txt"
    f.write_text("It was a dark night. The rain fell on the roofs of London.\n", encoding="utf-8")
    return f


def one_error_line(err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("stylesteer: error:") and message in lines[-1], err
    assert "Traceback" not in err


@pytest.mark.parametrize("content, message, name", [
    (b"", "empty file", "bad.txt"),
    (b"   \n\n  ", "no text", "bad.txt"),
    (b"\x00\x01\x02binary" * 50, "binary file", "bad.txt"),
    (b"\x00\x01\x02binary" * 50, "binary file", "bad.dat"),  # a name the importer would not pick up
])
def test_empty_or_binary_files_are_refused_before_a_model_loads(capsys, tmp_path, monkeypatch, content, message,
                                                                 name):
    monkeypatch.setattr(check, "load_model_for_cli", lambda args: pytest.fail("a model was loaded"))
    f = tmp_path / name
    f.write_bytes(content)
    code, out, err = run(capsys, "check", "--style", "any", str(f))
    assert code == 2 and out == ""
    one_error_line(err, message)


def test_missing_file_style_and_arguments_are_one_line(capsys, tmp_path, text_file, monkeypatch):
    monkeypatch.setattr(check, "load_model_for_cli", lambda args: pytest.fail("a model was loaded"))
    code, _, err = run(capsys, "check", "--style", "any", str(tmp_path / "nope.txt"))
    assert code == 2
    one_error_line(err, "no such file")
    code, _, err = run(capsys, "check", "--style", "missing", str(text_file))
    assert code == 2
    one_error_line(err, "missing")
    code, _, err = run(capsys, "check", str(text_file))
    assert code == 2
    one_error_line(err, "needs --style")
    code, _, err = run(capsys, "check", "--evaluate", str(text_file))
    assert code == 2
    one_error_line(err, "two or more corpus files")


@pytest.mark.model
def test_a_style_from_another_tokenizer_is_refused(capsys, demo_lm, text_file):
    with StyleStore() as store, store.transaction():
        store.create_style("foreign", "some/other-tokenizer", "0123456789abcdef", demo_lm.vocab_size)
    code, out, err = run(capsys, "check", "--model", "demo", "--style", "foreign", str(text_file))
    assert code == 2 and out == ""
    one_error_line(err, "another tokenizer")
    assert "styles rebuild foreign" in err


@pytest.fixture
def sherlock_style(demo_lm, corpora_dir, tmp_path):
    from styles.importer import import_paths

    sample = tmp_path / "sherlock-sample.txt"
    sample.write_text((corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    with StyleStore() as store:
        import_paths(store, "sherlock", [sample], demo_lm.tokenizer)
    return "sherlock"


@pytest.mark.model
def test_json_gives_per_token_and_per_sentence_scores(capsys, sherlock_style, tmp_path):
    f = tmp_path / "mixed.txt"
    text = ("I had called upon my friend, Mr. Sherlock Holmes, one day in the autumn of last year.\n\n"
            "And the LORD spake unto Moses, saying, Speak unto the children of Israel.\n")
    f.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "check", "--model", "demo", "--style", sherlock_style, "--json", str(f))
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"style", "file", "method", "score", "sentences", "tokens"}
    assert doc["style"] == "sherlock" and doc["method"] == "backoff"
    assert len(doc["sentences"]) == 2
    for s in doc["sentences"]:
        assert set(s) == {"index", "start", "end", "text", "score", "n_tokens"}
        assert text[s["start"]:s["end"]] == s["text"] and s["n_tokens"] > 5
    for t in doc["tokens"]:
        assert set(t) == {"start", "end", "text", "token_id", "logp_style", "logp_base", "score"}
        assert text[t["start"]:t["end"]] == t["text"]
    scored = [t for t in doc["tokens"] if t["score"] is not None]
    assert len(scored) == len(doc["tokens"]) - 1  # all but the first, which has no context
    assert all(t["score"] == pytest.approx(t["logp_style"] - t["logp_base"], abs=2e-3) for t in scored)
    # the text listing: least in style first, with each sentence's score
    code, out, _ = run(capsys, "check", "--model", "demo", "--style", sherlock_style, str(f))
    assert code == 0
    rows = [line for line in out.splitlines() if re.match(r"\s*[+-]\d+\.\d+\s+\d+\s", line)]
    assert len(rows) == 2
    listed = [float(r.split()[0]) for r in rows]
    assert listed == sorted(listed)


@pytest.mark.model
def test_evaluate_reports_an_auc_per_corpus(capsys, demo_lm, corpora_dir, tmp_path):
    files = []
    for name in ("sherlock_holmes.txt", "kjv_bible.txt"):
        f = tmp_path / name
        f.write_text((corpora_dir / name).read_text(encoding="utf-8")[:20_000], encoding="utf-8")
        files.append(str(f))
    code, out, err = run(capsys, "check", "--model", "demo", "--evaluate", "--sentences", "4", "--json", *files)
    assert code == 0, err
    report = json.loads(out)
    assert report["method"] == "backoff" and report["sentences_per_corpus"] == 4
    assert set(report["by_method"]) == {"backoff", "prior"}
    assert set(report["corpora"]) == {"sherlock_holmes", "kjv_bible"}
    for r in report["corpora"].values():
        assert 0.0 <= r["auc"] <= 1.0 and r["positives"] == 4 and r["negatives"] == 4
