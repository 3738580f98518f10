"""Document sessions: round trip, damaged files set aside, moved and changed documents, size bound, public shape."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine import session as sessions
from engine.session import DocumentSession, SessionWriteError, fingerprint, open_document, save
from engine.types import SamplingConfig, TokenStep

WHEN = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)


def step(i: int, text: str = " word") -> TokenStep:
    return TokenStep(side="steered", step=i, token_id=100 + i, text=text, p_base=0.123456, p_steered=0.654321,
                     js_bits=0.0123456, lam=0.3,
                     top_base=[(1, " a", 0.5), (2, " b", 0.2), (3, " c", 0.1), (4, " d", 0.05)],
                     top_steered=[(2, " b", 0.6), (1, " a", 0.3)])


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "novel.md"
    path.write_text("Chapter one.\n\nIt was raining.", encoding="utf-8")
    return path


def filled(doc: Path) -> DocumentSession:
    s = DocumentSession(document=str(doc), style="holmes", lam=0.4, mode="dense", budget=0.07,
                        sampling={"temperature": 0.7, "top_p": 0.9, "seed": 5}, memory="Anna is a smuggler.",
                        authors_note="[Tone: bleak]", note_depth=2)
    s.add_generation([step(0), step(1, " rain")], seed=5, context_tokens=812, context_start_char=0,
                     accepted_steps=[step(0)], when=WHEN,
                     settings=sessions.generation_settings("holmes", 0.4, "dense", 0.07, SamplingConfig(seed=5)))
    s.add_generation([step(0, " sun")], seed=6, context_tokens=815, context_start_char=0, when=WHEN)
    return s


def test_a_session_round_trips_through_the_data_folder(doc, _user_home):
    s = filled(doc)
    path = save(s, doc.read_text("utf-8"))
    assert path.parent == _user_home / "sessions" and path.parent != doc.parent
    loaded, notice = sessions.load(doc)
    assert notice is None and loaded == s
    assert loaded.generations[0].tints == [[" word", 0.0123, 0.1235, 0.6543, [[" a", 0.5], [" b", 0.2], [" c", 0.1]],
                                            [[" b", 0.6], [" a", 0.3]]]]
    assert loaded.generations[1].tints is None and not loaded.generations[1].accepted
    assert loaded.generations[0].settings["sampling"]["seed"] == 5 and loaded.generations[0].settings["lam"] == 0.4
    assert not list(path.parent.glob("*.tmp"))


def test_the_public_json_has_exactly_the_documented_shape(doc):
    public = filled(doc).to_public_json()
    assert list(public) == ["document", "style", "lam", "mode", "budget", "memory", "authors_note", "generations"]
    assert list(public["generations"][0]) == ["time", "seed", "context_tokens", "context_start_char", "new_tokens",
                                              "text", "accepted"]
    assert public["generations"][0] == {"time": "2026-03-01T12:30:00+00:00", "seed": 5, "context_tokens": 812,
                                        "context_start_char": 0, "new_tokens": 2, "text": " word rain",
                                        "accepted": True}
    json.dumps(public)  # serialisable as it is


def test_opening_tells_new_ok_and_changed_outside(doc):
    text = doc.read_text("utf-8")
    opened = open_document(doc, text)
    assert opened.status == "new" and opened.session.document == os.path.abspath(doc)
    save(opened.session, text)
    assert open_document(doc, text).status == "ok"
    assert open_document(doc, text.replace("\n", "\r\n")).status == "ok"  # line endings alone are no change
    changed = open_document(doc, text + " More.")
    assert changed.status == "changed-outside" and changed.session.memory == ""
    save(changed.session, text + " More.")  # keep: the new text becomes the reference
    assert open_document(doc, text + " More.").status == "ok"


def test_a_moved_document_finds_its_session_and_can_keep_it(doc, tmp_path):
    text = doc.read_text("utf-8")
    save(filled(doc), text)
    moved = tmp_path / "elsewhere" / "novel.md"
    moved.parent.mkdir()
    doc.rename(moved)
    opened = open_document(moved, text)
    assert opened.status == "moved" and opened.moved_from == str(doc) and opened.session.memory == "Anna is a smuggler."
    sessions.keep_moved(opened, moved)
    assert opened.status == "ok" and sessions.load(doc) == (None, None)
    assert open_document(moved, text).status == "ok"
    assert sessions.load(moved)[0].authors_note == "[Tone: bleak]"


def test_a_copy_whose_original_still_exists_is_not_a_move(doc, tmp_path):
    text = doc.read_text("utf-8")
    save(filled(doc), text)
    copy = tmp_path / "copy.md"
    copy.write_text(text, encoding="utf-8")
    assert open_document(copy, text).status == "new"


def test_dropping_clears_the_session(doc):
    save(filled(doc), doc.read_text("utf-8"))
    assert sessions.clear(doc) is True
    assert sessions.load(doc) == (None, None) and sessions.clear(doc) is False


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b'{"format": 1}', b"[]",
                                     b'{"format": 1, "document": "x", "lam": "high"}',
                                     b'{"format": 1, "document": "x", "generations": [{"time": 1}]}',
                                     b"[" * 100_000])
def test_a_damaged_session_is_set_aside_with_a_notice(doc, content):
    path = sessions.session_path(doc)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    opened = open_document(doc, doc.read_text("utf-8"))
    assert opened.status == "new" and opened.notice is not None
    assert "was damaged; it was set aside as" in opened.notice
    aside = list(path.parent.glob(f"{path.stem}.damaged-*.json"))
    assert len(aside) == 1 and aside[0].read_bytes() == content and not path.exists()
    save(opened.session)  # a fresh session can be saved again
    assert sessions.load(doc)[1] is None


def test_a_read_only_data_folder_reads_but_refuses_to_write_with_one_clear_error(doc, monkeypatch):
    s = filled(doc)
    save(s, doc.read_text("utf-8"))

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(sessions.tempfile, "mkstemp", read_only)
    assert sessions.load(doc)[0] == s
    with pytest.raises(SessionWriteError, match=r"cannot save the session of .*novel\.md in .*sessions: Read-only"):
        save(s)
    assert sessions.load(doc)[0] == s  # the old file is untouched


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_folder_by_permissions(doc):
    s = filled(doc)
    save(s, doc.read_text("utf-8"))
    folder = sessions.sessions_dir()
    folder.chmod(0o555)
    try:
        assert sessions.load(doc)[0] == s
        with pytest.raises(SessionWriteError):
            save(s)
    finally:
        folder.chmod(0o755)


def test_tints_beyond_the_last_fifty_accepted_runs_are_compacted_not_dropped(doc):
    s = DocumentSession(document=str(doc))
    for i in range(60):
        s.add_generation([step(0)], seed=i, context_tokens=10, context_start_char=0, accepted_steps=[step(0)])
    sessions.encode(s)
    full = [g.seed for g in s.generations if g.tints and len(g.tints[0]) == 6]
    compact = [g.seed for g in s.generations if g.tints and len(g.tints[0]) == 2]
    assert full == list(range(10, 60)) and compact == list(range(10)) and len(s.generations) == 60
    assert s.generations[0].tints == [[" word", 0.0123]]


def test_a_stored_tint_becomes_a_token_step_again():
    full = sessions.step_from_tint(sessions.tint(step(0)), 3)
    assert (full.text, full.js_bits, full.p_base, full.step) == (" word", 0.0123, 0.1235, 3)
    assert full.top_base == [(-1, " a", 0.5), (-1, " b", 0.2), (-1, " c", 0.1)]
    bare = sessions.step_from_tint([" word", 0.0123])
    assert bare.js_bits == 0.0123 and bare.top_base == [] and bare.p_base != bare.p_base  # NaN: not kept


def test_spans_round_trip_and_must_match_the_tints(doc):
    s = filled(doc)
    s.generations[0].spans = [[5, 10]]
    save(s, doc.read_text("utf-8"))
    assert sessions.load(doc)[0].generations[0].spans == [[5, 10]]
    s.generations[0].spans = [[5, 10], [10, 12]]  # two spans for one tint
    save(s)
    loaded, notice = sessions.load(doc)
    assert loaded is None and "set aside" in (notice or "")


def many_runs(doc: Path) -> DocumentSession:
    s = DocumentSession(document=str(doc), memory="M" * 1000)
    steps = [step(i) for i in range(96)]
    for i in range(40):
        s.add_generation(steps, seed=i, context_tokens=10, context_start_char=0, accepted_steps=steps if i % 2 else [])
    return s


def size_without(s: DocumentSession, rejected: bool) -> int:
    copy = DocumentSession.from_json(s.to_json())
    copy.generations = [g for g in copy.generations if g.accepted or rejected]
    for g in copy.generations:
        g.tints = None
    return len(sessions.encode(copy))


def test_the_file_size_is_bounded_dropping_tints_then_rejected_runs(doc):
    s = many_runs(doc)
    limit = size_without(s, rejected=False) + 100
    assert len(sessions.encode(DocumentSession.from_json(s.to_json()))) > 10 * limit
    data = sessions.encode(s, limit=limit)
    assert len(data) <= limit
    assert not any(g.tints for g in s.generations)  # tints went first (compacted, then dropped)
    assert [g.seed for g in s.generations] == list(range(1, 40, 2))  # then every rejected run, no accepted one
    assert json.loads(data)["generations"][-1]["seed"] == 39


def test_under_a_tight_bound_the_oldest_runs_go_and_settings_stay(doc):
    s = many_runs(doc)
    limit = size_without(s, rejected=False) // 3
    assert len(sessions.encode(s, limit=limit)) <= limit
    seeds = [g.seed for g in s.generations]
    assert seeds and seeds[-1] == 39 and seeds == sorted(seeds) and len(seeds) < 20
    assert s.memory == "M" * 1000


def test_fingerprint_ignores_line_endings_only():
    assert fingerprint("a\r\nb") == fingerprint("a\nb") != fingerprint("a\n\nb")


def test_a_data_folder_that_cannot_be_made_gives_notices_and_one_error_not_tracebacks(doc, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STYLESTEER_HOME", str(blocker / "home"))
    opened = open_document(doc, doc.read_text("utf-8"))
    assert opened.status == "new" and "cannot be read" in (opened.notice or "")
    with pytest.raises(SessionWriteError, match="cannot save the session"):
        save(opened.session)
    with pytest.raises(SessionWriteError, match="cannot remove the session"):
        sessions.clear(doc)


def test_sampling_settings_round_trip_and_ignore_unknown_keys(doc):
    s = DocumentSession(document=str(doc))
    s.set_sampling(SamplingConfig(temperature=0.6, top_k=20, seed=9))
    save(s)
    loaded = sessions.load(doc)[0]
    assert loaded is not None and loaded.sampling_config() == SamplingConfig(temperature=0.6, top_k=20, seed=9)
    loaded.sampling["from_a_later_version"] = 1
    assert loaded.sampling_config().top_k == 20


def test_a_file_far_over_the_bound_is_set_aside_unread(doc, monkeypatch):
    save(filled(doc), doc.read_text("utf-8"))
    monkeypatch.setattr(sessions, "MAX_FILE_BYTES", 64)
    loaded, notice = sessions.load(doc)
    assert loaded is None and "set aside" in (notice or "")
