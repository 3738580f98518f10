"""Readers: encodings, rich formats, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from styles import readers
from styles.readers import Candidate, ReadError, Rejected, find_files, open_source

TEXT = "Il était une fois, à Paris, un café où l'on parlait de tout.\nDeuxième ligne: «citation» — fin.\n" * 20


def read(path: Path) -> tuple[str, str]:
    src = open_source(Candidate(path, path.stat().st_size))
    return "".join(src.pieces()), src.encoding


@pytest.mark.parametrize(
    "encoding, data_encoding",
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("utf-16", "utf-16"), ("latin-1", None), ("cp1252", None)],
)
def test_encodings_are_detected(tmp_path, encoding, data_encoding):
    text = TEXT.replace("—", "-") if encoding == "latin-1" else TEXT
    path = tmp_path / "f.txt"
    path.write_bytes(text.encode(encoding))
    got, detected = read(path)
    assert got == text
    if data_encoding:
        assert detected.replace("_", "-").startswith(data_encoding)


def test_utf16_with_bom_big_endian(tmp_path):
    path = tmp_path / "be.md"
    path.write_bytes(b"\xfe\xff" + TEXT.encode("utf-16-be"))
    assert read(path) == (TEXT, "utf-16-be")


def test_html_text_without_scripts(tmp_path):
    path = tmp_path / "p.html"
    path.write_text(
        "<html><head><title>T</title><style>p{}</style></head><body><script>var x=1;</script>"
        "<h1>Chapter One</h1><p>It was <b>dark</b>.</p></body></html>",
        encoding="utf-8",
    )
    text, _ = read(path)
    assert "Chapter One" in text and "It was" in text and "dark" in text
    assert "var x" not in text and "p{}" not in text


def test_docx_text(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("The first paragraph of my story.")
    document.add_paragraph("A second one, with more words.")
    path = tmp_path / "story.docx"
    document.save(path)
    text, encoding = read(path)
    assert "first paragraph of my story" in text and "second one" in text
    assert encoding == "docx"


def make_epub(path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("A Book")
    book.set_language("en")
    c1 = epub.EpubHtml(title="One", file_name="c1.xhtml", lang="en")
    c1.content = "<html><body><h1>One</h1><p>Call me Ishmael.</p></body></html>"
    c2 = epub.EpubHtml(title="Two", file_name="c2.xhtml", lang="en")
    c2.content = "<html><body><p>Some years ago, never mind how long.</p></body></html>"
    for c in (c1, c2):
        book.add_item(c)
    book.toc = (c1, c2)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [c1, c2]
    epub.write_epub(str(path), book)


def test_epub_text_in_reading_order(tmp_path):
    path = tmp_path / "b.epub"
    make_epub(path)
    text, _ = read(path)
    assert text.index("Call me Ishmael") < text.index("Some years ago")


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\n  ", "no text"),
        ("bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
        ("noise.txt", bytes((i * 7919 + 13) % 256 for i in range(4096)).replace(b"\x00", b"\x01"), "undecodable"),
        ("bad.docx", b"PK\x03\x04 not really a zip", "not a valid .docx"),
        ("bad.epub", b"garbage", "not a valid .epub"),
        ("bad-bom.txt", b"\xef\xbb\xbf" + b"ok \xff\xfe\xfd", "undecodable"),
    ],
)
def test_bad_files_have_reasons(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ReadError, match=reason):
        read(path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.txt"
    path.write_text("secret\n")

    def deny(self):  # running as root, chmod 000 would not stop us reading
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(ReadError, match="permission denied"):
        read(path)


def test_find_files_reports_unsupported_missing_and_loops(tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.png").write_bytes(b"\x89PNG")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "c.md").write_text("c\n")
    (sub / ".hidden.txt").write_text("h\n")
    (sub / "back").symlink_to(tmp_path)  # a loop back to the top
    (tmp_path / "self").symlink_to(tmp_path / "self")  # a link to itself
    found = list(find_files([tmp_path, tmp_path / "a.txt", tmp_path / "missing.txt", tmp_path / "self"]))
    ok = sorted(f.path.name for f in found if isinstance(f, Candidate))
    bad = {f.path.name: f.reason for f in found if isinstance(f, Rejected)}
    assert ok == ["a.txt", "c.md"]  # a.txt named twice is taken once; hidden files ignored
    assert "unsupported" in bad["b.png"]
    assert "loop" in bad["back"]
    assert bad["self"] == "symbolic link loop"
    assert "no such file" in bad["missing.txt"]


def test_glob_filters_folder_contents(tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.md").write_text("b\n")
    found = [f.path.name for f in find_files([tmp_path], glob="*.md") if isinstance(f, Candidate)]
    assert found == ["b.md"]


def test_split_lines_cuts_only_at_lone_newlines():
    text = "one\ntwo\n\nthree\n  four\nfive"
    pieces = list(readers.split_lines(text, target=1))
    assert "".join(pieces) == text
    for p in pieces[:-1]:
        assert p.endswith("\n") and not p.endswith("\n\n") and not p[-2].isspace()
    for p in pieces[1:]:
        assert not p[0].isspace()


def test_big_file_is_streamed_with_bounded_memory(tmp_path, monkeypatch):
    import tracemalloc

    line = "The quick brown fox jumps over the lazy dog, again and again — ünïcödé.\n"
    path = tmp_path / "big.txt"
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(24 * 2**20 // len(line.encode())):
            fh.write(line)
    size = path.stat().st_size
    monkeypatch.setattr(readers, "STREAM_THRESHOLD", 1 << 20)
    monkeypatch.setattr(readers, "READ_CHUNK", 1 << 20)
    tracemalloc.start()
    try:
        src = open_source(Candidate(path, size))
        total = 0
        for piece in src.pieces():
            total += len(piece.encode("utf-8"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    # Bounded by the read size (a few copies of one 1 MiB block), not the file size.
    assert size > 20 * 2**20 and peak < 10 * 2**20, f"peak {peak} bytes for a {size}-byte file"
    import hashlib

    assert src.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_streamed_file_with_late_bad_bytes_is_undecodable(tmp_path, monkeypatch):
    path = tmp_path / "late.txt"
    path.write_bytes(b"plain ascii line\n" * 200_000 + b"\x00\x00\x81\x8d\x8f\x90\x9d" * 10)
    monkeypatch.setattr(readers, "STREAM_THRESHOLD", 1 << 16)
    monkeypatch.setattr(readers, "READ_CHUNK", 1 << 16)
    with pytest.raises(ReadError, match=r"undecodable|binary"):
        open_source(Candidate(path, path.stat().st_size))


@pytest.mark.parametrize("text", ["  indented line\n" * 20_000, "x" * 300_000, "word " * 60_000])
def test_split_lines_stays_bounded_without_lone_newlines(text):
    pieces = list(readers.split_lines(text, target=1000))
    assert "".join(pieces) == text
    assert len(pieces) > 3 and max(len(p) for p in pieces) <= 1 << 16


def test_streamed_file_without_lone_newlines_is_bounded(tmp_path, monkeypatch):
    path = tmp_path / "indented.txt"
    path.write_text("    every line is indented\n" * 100_000)
    monkeypatch.setattr(readers, "STREAM_THRESHOLD", 1 << 16)
    monkeypatch.setattr(readers, "READ_CHUNK", 1 << 16)
    src = open_source(Candidate(path, path.stat().st_size))
    pieces = list(src.pieces())
    assert "".join(pieces) == path.read_text()
    assert max(len(p) for p in pieces) <= 3 * (1 << 16)
