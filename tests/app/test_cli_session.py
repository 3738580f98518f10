"""`stylesteer session show|clear` and `generate --document`: the document's session from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.main import main
from engine import session as sessions
from engine.context import assemble_for_model


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    path = folder / "story.md"
    path.write_text("It was a dark night.\n\nThe rain fell on the roofs of the town.\n\nAnna waited", encoding="utf-8")
    return path


def _session(doc: Path, **fields) -> sessions.DocumentSession:
    s = sessions.DocumentSession(document=str(doc), **fields)
    sessions.save(s, doc.read_text("utf-8"))
    return s


def test_show_prints_the_documented_json_and_clear_forgets_it(doc, capsys):
    s = _session(doc, style="holmes", lam=0.4, memory="Anna is a smuggler.", authors_note="[Tone: bleak]")
    s.generations.append(sessions.Generation("2026-03-01T12:30:00+00:00", 5, 40, 0, 3, " she said", True,
                                             [[" she", 0.01]], [[70, 74]]))
    sessions.save(s)
    assert main(["session", "show", str(doc), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert list(shown) == ["document", "style", "lam", "mode", "budget", "memory", "authors_note", "generations"]
    assert shown["document"] == str(doc.resolve()) and shown["memory"] == "Anna is a smuggler."
    assert shown["generations"] == [{"time": "2026-03-01T12:30:00+00:00", "seed": 5, "context_tokens": 40,
                                     "context_start_char": 0, "new_tokens": 3, "text": " she said",
                                     "accepted": True}]
    assert main(["session", "show", str(doc)]) == 0
    human = capsys.readouterr().out
    assert "Anna is a smuggler." in human and "holmes" in human and "accepted: she said" in human
    assert main(["session", "clear", str(doc)]) == 0
    assert "cleared" in capsys.readouterr().out and sessions.load(doc) == (None, None)
    assert main(["session", "clear", str(doc)]) == 0
    assert "had no session" in capsys.readouterr().out
    assert doc.read_text("utf-8").startswith("It was a dark night.")


def test_show_without_a_session_or_with_a_damaged_one_is_one_line(doc, capsys):
    assert main(["session", "show", str(doc)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no session" in err and "Traceback" not in err
    path = sessions.session_path(doc)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00not json")
    assert main(["session", "show", str(doc), "--json"]) == 2
    err = capsys.readouterr().err
    assert "set aside" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--document", "{doc}", "--cursor", "9999"], "--cursor must be between 0 and"),
    (["--document", "{doc}", "a prompt"], "either PROMPT or --document"),
    (["--document", "{missing}"], "cannot read"),
    (["--cursor", "3", "a prompt"], "--cursor and --context-limit go with --document"),
    (["--context-limit", "512", "a prompt"], "--cursor and --context-limit go with --document"),
    (["--document", "{doc}", "--context-limit", "-1"], "--context-limit must be 0"),
    ([], "give a PROMPT"),
])
def test_bad_document_arguments_are_one_line_before_any_model_loads(doc, capsys, argv, message):
    argv = [a.format(doc=doc, missing=doc.parent / "missing.md") for a in argv]
    assert main(["generate", "--model", "/nonexistent/model", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.model
def test_generate_document_uses_the_sessions_context_and_records_the_generation(doc, capsys, demo_lm, monkeypatch):
    import dataclasses

    import app.cli.generate as generate_cli

    loaded = [demo_lm]  # the session's demo model, as `--model demo` loads it, without loading it again
    monkeypatch.setattr(generate_cli, "load_model_for_cli", lambda args: loaded[0] if args.model == "demo" else None)
    _session(doc, memory="Anna is a smuggler.", authors_note="[Tone: bleak]", note_depth=1, lam=0.25, mode="dense")
    before = doc.read_bytes()
    cursor = len("It was a dark night.\n\nThe rain fell on the roofs of the town.")
    assert main(["generate", "--model", "demo", "--document", str(doc), "--cursor", str(cursor), "--json",
                 "--greedy", "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()
    assert "from the document's session: --lam 0.25 --mode dense" in captured.err
    rows = [json.loads(line) for line in captured.out.splitlines()]
    summary = rows[-1]["summary"]
    text = doc.read_text("utf-8")
    expected = assemble_for_model(demo_lm, text, cursor, 3, memory="Anna is a smuggler.",
                                  authors_note="[Tone: bleak]", note_depth=1)
    assert expected.prompt.startswith("Anna is a smuggler.\n\n") and "[Tone: bleak]" in expected.prompt
    assert summary["context_tokens"] == expected.token_count and summary["context_start_char"] == 0
    assert doc.read_bytes() == before  # the document is never written
    stored = sessions.load(doc)[0]
    assert [(g.accepted, g.text, g.context_tokens, g.seed) for g in stored.generations] == [
        (False, summary["text"], expected.token_count, 0)]
    used = stored.generations[0].settings
    assert used["sampling"]["greedy"] is True and (used["lam"], used["mode"], used["style"]) == (0.25, "dense", None)
    # A window too small for the whole document: the CLI says where the context starts, as the app does.
    loaded[0] = dataclasses.replace(demo_lm, context_length=expected.token_count)
    assert main(["generate", "--model", "demo", "--document", str(doc), "--json", "--greedy", "--lam", "0.5",
                 "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()
    assert "context starts" in captured.err and "earlier characters not seen" in captured.err
    assert json.loads(captured.out.splitlines()[-1])["summary"]["context_start_char"] > 0
    assert "--lam" not in captured.err  # given on the command line, not taken from the session
    assert sessions.load(doc)[0].generations[1].settings["lam"] == 0.5
    # The app's context limit, from the command line: the same cut in the model's full window.
    loaded[0] = demo_lm
    assert main(["generate", "--model", "demo", "--document", str(doc), "--json", "--greedy", "--lam", "0.5",
                 "--max-new-tokens", "3", "--context-limit", str(expected.token_count)]) == 0
    captured = capsys.readouterr()
    assert "earlier characters not seen" in captured.err
    assert json.loads(captured.out.splitlines()[-1])["summary"]["context_tokens"] <= expected.token_count - 3
