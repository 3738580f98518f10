"""`stylesteer story.md` and `stylesteer-gui story.md` (what a file manager's "Open with" runs) open the document."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import app.gui.startup as startup
import app.main as entry
from app.cli import COMMANDS, build_parser


def test_the_command_list_is_the_parsers():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS) == set(sub.choices)


@pytest.fixture
def opened(monkeypatch) -> list[tuple[str | None, Path | None]]:
    calls: list[tuple[str | None, Path | None]] = []
    monkeypatch.setattr(startup, "run_gui", lambda model=None, document=None: calls.append((model, document)) or 0)
    monkeypatch.setattr("app.xlibs.missing_message", lambda: None)
    return calls


@pytest.mark.parametrize("argv", [["{doc}"], ["gui", "{doc}"], ["gui", "--model", "demo", "{doc}"]])
def test_a_document_on_the_command_line_is_opened_in_the_app(tmp_path, opened, argv):
    doc = tmp_path / "story.md"
    doc.write_text("It was a dark night.", encoding="utf-8")
    assert entry.main([a.format(doc=doc) for a in argv]) == 0
    assert opened == [("demo" if "--model" in argv else None, doc)]


def test_the_desktop_entry_passes_its_file(tmp_path, opened, monkeypatch):
    doc = tmp_path / "notes.txt"
    doc.write_text("Notes", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["stylesteer-gui", str(doc)])
    assert entry.gui_main() == 0
    assert opened == [(None, doc)]
    desktop = (Path(__file__).resolve().parents[2] / "resources" / "stylesteer.desktop").read_text(encoding="utf-8")
    assert "Exec=stylesteer-gui %f" in desktop


def test_a_missing_document_is_one_line(tmp_path, opened, capsys):
    assert entry.main(["gui", str(tmp_path / "gone.md")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and err.count("\n") == 1 and opened == []


def test_a_command_is_never_taken_for_a_document(tmp_path, opened, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "generate").write_text("a file named like a command", encoding="utf-8")
    with pytest.raises(SystemExit):
        entry.main(["generate", "--help"])
    assert opened == [] and "usage: stylesteer generate" in capsys.readouterr().out
