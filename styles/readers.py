"""Files -> text: find the files to import, detect encodings, extract text from html/docx/epub."""

from __future__ import annotations

import codecs
import contextlib
import errno
import fnmatch
import hashlib
import os
import stat
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer

PLAIN_SUFFIXES = frozenset({".txt", ".md", ".rst", ".tex"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUPPORTED_SUFFIXES = PLAIN_SUFFIXES | HTML_SUFFIXES | frozenset({".docx", ".epub"})

# Plain files up to this size are read whole; larger ones are streamed in
# READ_CHUNK pieces so that memory stays bounded whatever the file size.
STREAM_THRESHOLD = 64 * 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
# The detector sees this much of a streamed file (it samples anyway).
DETECT_SAMPLE = 1024 * 1024
# Rich formats are parsed in memory by their libraries; refuse absurd ones.
MAX_RICH_BYTES = 512 * 1024 * 1024

_BOMS = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class ReadError(Exception):
    """A file that cannot be imported; the message is the reason shown in the summary."""


@dataclass(frozen=True)
class Candidate:
    """A file found under the paths given to an import."""

    path: Path
    size: int


@dataclass(frozen=True)
class Rejected:
    """A path that was found but cannot be imported, with the reason."""

    path: Path
    reason: str


@dataclass
class SourceText:
    """A readable file: its identity and a way to iterate its text in pieces."""

    path: Path
    sha256: str
    n_bytes: int
    encoding: str
    _pieces: Iterable[str] = field(repr=False, default=())

    def pieces(self) -> Iterator[str]:
        """The text, in pieces that end at line boundaries (all but maybe the last)."""
        yield from self._pieces


# --------------------------------------------------------------------------- discovery


def find_files(paths: Iterable[Path | str], glob: str | None = None) -> Iterator[Candidate | Rejected]:
    """Every importable file under `paths` (folders are searched recursively).

    Folders are searched in sorted order; `glob` filters the names of files found
    inside folders (files named explicitly are always taken). Hidden entries inside
    folders are not searched, symlinks are followed once (a loop is reported), and
    every path that cannot be used is yielded as a `Rejected` with its reason.
    """
    seen_files: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            st = path.stat()
        except FileNotFoundError:
            yield Rejected(path, "broken symbolic link" if path.is_symlink() else "no such file or folder")
            continue
        except OSError as exc:
            yield Rejected(path, _os_reason(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, glob, seen_files, set())
        else:
            yield from _file(path, st, seen_files)


def _walk(
    folder: Path, glob: str | None, seen_files: set[Path], seen_dirs: set[Path]
) -> Iterator[Candidate | Rejected]:
    try:
        real = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        yield Rejected(folder, "symbolic link loop")
        return
    # Visiting a real folder twice means a symlink leads back into the tree.
    if real in seen_dirs:
        yield Rejected(folder, "symbolic link loop (folder already searched)")
        return
    seen_dirs = seen_dirs | {real}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield Rejected(folder, _os_reason(exc))
        return
    for entry in entries:
        child = Path(entry.path)
        if entry.name.startswith("."):
            continue  # .git, .DS_Store and friends: never a writer's text
        try:
            st = child.stat()
        except FileNotFoundError:
            yield Rejected(child, "broken symbolic link")
            continue
        except OSError as exc:
            yield Rejected(child, _os_reason(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(child, glob, seen_files, seen_dirs)
        elif glob is None or fnmatch.fnmatch(entry.name, glob) or child.match(glob):
            yield from _file(child, st, seen_files)


def _file(path: Path, st: os.stat_result, seen_files: set[Path]) -> Iterator[Candidate | Rejected]:
    if not stat.S_ISREG(st.st_mode):
        yield Rejected(path, "not a regular file")
        return
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        yield Rejected(path, f"unsupported file type '{suffix or '(none)'}' (accepted: {kinds})")
        return
    real = path.resolve()
    if real in seen_files:
        return  # the same file reached twice (named and inside a folder): take it once
    seen_files.add(real)
    yield Candidate(path, st.st_size)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "unreadable: permission denied"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return f"unreadable: {exc.strerror or exc}"


# --------------------------------------------------------------------------- reading


def open_source(candidate: Candidate, stop: threading.Event | None = None) -> SourceText:
    """Open one file for import: hash it, detect its encoding, and prepare its text.

    Raises ReadError with a one-line reason for empty, binary, unreadable or
    undecodable files. Plain text files above STREAM_THRESHOLD are read twice in
    READ_CHUNK pieces (hash and check, then decode), never whole; setting `stop`
    abandons that first pass.
    """
    path = candidate.path
    suffix = path.suffix.lower()
    # Any suffix but the rich formats' is read as text, whose decoding tells binary apart (`stylesteer check`
    # reads files of any name; the importer only finds SUPPORTED_SUFFIXES).
    plain = suffix not in HTML_SUFFIXES and suffix not in (".docx", ".epub")
    try:
        size = path.stat().st_size
        if size == 0:
            raise ReadError("empty file")
        if plain and size > STREAM_THRESHOLD:
            return _open_streamed(path, size, stop)
        if size > MAX_RICH_BYTES:
            raise ReadError(f"too large for a {suffix} file ({size / 2**20:.0f} MiB)")
        data = path.read_bytes()
    except ReadError:
        raise
    except OSError as exc:
        raise ReadError(_os_reason(exc)) from exc
    sha = hashlib.sha256(data).hexdigest()
    if plain:
        text, encoding = decode_bytes(data)
    elif suffix in HTML_SUFFIXES:
        text, encoding = html_to_text(data)
    elif suffix == ".docx":
        text, encoding = docx_to_text(data), "docx"
    else:
        text, encoding = epub_to_text(path), "epub"
    if not text.strip():
        raise ReadError("no text in file")
    return SourceText(path, sha, len(data), encoding, split_lines(text))


@dataclass(frozen=True)
class DecodedText:
    """A document as the editor holds it, and how to write it back the way it came."""

    text: str  # line ends as "\n"
    encoding: str  # a Python codec name
    bom: bool  # the file started with a byte-order mark
    newline: str  # "\n", "\r\n" or "\r": the file's (most common) line ending
    mixed_newlines: bool = False

    def encode(self, text: str) -> bytes:
        """The bytes to save: same encoding, BOM and line ending. Raises UnicodeEncodeError."""
        body = text.replace("\n", self.newline) if self.newline != "\n" else text
        data = body.encode(self.encoding)
        if self.bom:
            data = _BOM_OF.get(self.encoding, b"") + data
        return data


def decode_document(data: bytes) -> DecodedText:
    """Decode a document for editing with the importer's rules; empty is fine. Raises ReadError."""
    if not data:
        return DecodedText("", "utf-8", False, "\n")
    text, encoding = decode_bytes(data)
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    counts = {"\r\n": crlf, "\r": cr, "\n": lf}
    newline = max(counts, key=lambda k: (counts[k], k == "\n"))
    mixed = sum(1 for v in counts.values() if v) > 1
    if crlf or cr:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return DecodedText(text, encoding, _bom_encoding(data) is not None, newline, mixed)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a whole file: BOM first, then the detector's candidates, each tried strictly."""
    bom = _bom_encoding(data)
    if bom is not None:
        encoding, skip = bom
        try:
            return data[skip:].decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise ReadError(f"undecodable: invalid {encoding} after its byte-order mark") from exc
    if b"\x00" in data[:8192]:
        raise ReadError("binary file (NUL bytes)")
    failure: UnicodeDecodeError | None = None
    for encoding in _candidates(data):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            failure = failure or exc
        except LookupError:
            continue
    if failure is not None:
        # The detector samples large inputs; ask again about the region that failed.
        start = max(0, failure.start - 32768)
        for encoding in _candidates(data[start : start + 65536]):
            try:
                return data.decode(encoding), encoding
            except (UnicodeDecodeError, LookupError):
                continue
    raise ReadError("undecodable: no text encoding fits (binary?)")


_BOM_OF = {encoding: bom for bom, encoding in _BOMS}


def _bom_encoding(data: bytes) -> tuple[str, int] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def _candidates(sample: bytes) -> list[str]:
    """The detector's encodings for `sample`, best first; ASCII widened to UTF-8."""
    results = charset_normalizer.from_bytes(sample)
    out: list[str] = []
    for match in results:
        enc = match.encoding
        # ASCII in the sample says little about the rest: UTF-8 is its superset.
        if enc == "ascii":
            enc = "utf_8"
        with contextlib.suppress(LookupError):
            enc = codecs.lookup(enc).name  # canonical names: utf-8, cp1252, iso8859-1
        if enc not in out:
            out.append(enc)
    return out


def _open_streamed(path: Path, size: int, stop: threading.Event | None = None) -> SourceText:
    """A large plain file: pass 1 hashes and validates the decoding, pass 2 yields text."""
    with path.open("rb") as fh:
        head = fh.read(DETECT_SAMPLE)
    bom = _bom_encoding(head)
    if bom is not None:
        encodings, skip = [bom[0]], bom[1]
    else:
        if b"\x00" in head[:8192]:
            raise ReadError("binary file (NUL bytes)")
        cut = head.rfind(b"\n")  # never hand the detector half a character
        encodings, skip = _candidates(head[: cut + 1] if cut > 0 else head), 0
        if not encodings:
            raise ReadError("undecodable: no text encoding fits (binary?)")
    last_error = ""
    for encoding in encodings:
        sha = hashlib.sha256()
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with path.open("rb") as fh:
                offset = 0
                while block := fh.read(READ_CHUNK):
                    if stop is not None and stop.is_set():
                        raise ReadError("cancelled")
                    sha.update(block)
                    decoder.decode(block[skip:] if offset == 0 else block)
                    offset += len(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            last_error = f"undecodable: not valid {encoding} near byte {offset + exc.start}"
            continue
        except OSError as exc:
            raise ReadError(_os_reason(exc)) from exc
        return SourceText(path, sha.hexdigest(), size, encoding, _stream_text(path, encoding, skip))
    raise ReadError(last_error or "undecodable")


def _stream_text(path: Path, encoding: str, skip: int) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    carry = ""
    with path.open("rb") as fh:
        fh.seek(skip)
        while block := fh.read(READ_CHUNK):
            text = carry + decoder.decode(block)
            cut = _safe_cut(text)
            if cut <= 0:
                if len(text) < 2 * READ_CHUNK:
                    carry = text
                    continue
                cut = _fallback_cut(text, 0, len(text))  # no lone newline in megabytes: bound memory
            carry = text[cut:]
            yield from split_lines(text[:cut])
        text = carry + decoder.decode(b"", final=True)
    if text:
        yield from split_lines(text)


def _safe_cut(text: str) -> int:
    """An index just after a lone newline (non-space on both sides), 0 if there is none."""
    i = len(text)
    while True:
        i = text.rfind("\n", 0, i)
        if i <= 0 or i + 1 >= len(text):
            return 0
        if _lone_newline(text, i):
            return i + 1


def _lone_newline(text: str, i: int) -> bool:
    return not text[i - 1].isspace() and not text[i + 1].isspace()


def split_lines(text: str, target: int = 8192) -> Iterator[str]:
    """Pieces of about `target` characters, each cut just after a lone newline
    (non-space on both sides). A byte-level BPE's pre-tokenizer never joins
    across such a cut, so the pieces can be tokenized separately, in parallel,
    with the same result as the whole text (ChunkTokenizer checks this).

    Text with no lone newline for 8 targets or 64K characters (every line
    indented, one endless line) is cut at the last newline or space there instead: one boundary in
    that much text may then tokenize slightly differently, but memory and
    tokenizer time stay bounded.
    """
    n = len(text)
    start = 0
    while start < n:
        if start + target >= n:
            yield text[start:]
            return
        limit = start + max(8 * target, 1 << 16)
        cut = text.find("\n", start + target, limit)
        while cut > 0 and cut + 1 < n and not _lone_newline(text, cut):
            cut = text.find("\n", cut + 1, limit)
        if cut < 0:
            if limit >= n:
                yield text[start:]
                return
            cut = _fallback_cut(text, start, limit) - 1
        elif cut + 1 >= n:
            yield text[start:]
            return
        yield text[start : cut + 1]
        start = cut + 1


def _fallback_cut(text: str, start: int, limit: int) -> int:
    """An end index in (start, limit]: after the last newline, else the last space, else limit."""
    for sep in ("\n", " "):
        i = text.rfind(sep, start + 1, limit)
        if i > start:
            return i + 1
    return limit


# --------------------------------------------------------------------------- rich formats


def html_to_text(data: bytes) -> tuple[str, str]:
    """Visible text of an HTML page (scripts and styles dropped), and the encoding bs4 found."""
    import warnings

    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

    if b"\x00" in data[:8192] and _bom_encoding(data) is None:
        raise ReadError("binary file (NUL bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(data, "html.parser")
    return _soup_text(soup), soup.original_encoding or "utf-8"


def _soup_text(soup) -> str:  # type: ignore[no-untyped-def]
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line) + "\n"


def docx_to_text(data: bytes) -> str:
    """Paragraph and table text of a Word document."""
    import io

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ReadError(f"unreadable: not a valid .docx file ({exc})") from exc
    except Exception as exc:  # python-docx raises its own types for broken packages
        raise ReadError(f"unreadable: not a valid .docx file ({type(exc).__name__})") from exc
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(parts) + "\n"


def epub_to_text(path: Path) -> str:
    """The text of an EPUB's documents, in reading (spine) order."""
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
    from ebooklib import ITEM_DOCUMENT, epub

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except Exception as exc:  # ebooklib raises bare exceptions for broken books
        raise ReadError(f"unreadable: not a valid .epub file ({type(exc).__name__})") from exc
    by_id = {item.get_id(): item for item in book.get_items_of_type(ITEM_DOCUMENT)}
    order = [by_id[idref] for idref, _ in book.spine if idref in by_id]
    order += [item for key, item in by_id.items() if item not in order]
    texts = []
    for item in order:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(item.get_content(), "html.parser")
        texts.append(_soup_text(soup))
    return "\n".join(texts)
