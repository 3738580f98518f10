"""Build a model folder's fast tokenizer in short steps, so the GUI thread keeps running meanwhile.

`AutoTokenizer.from_pretrained` reads tokenizer.json twice: json.load (~25 ms) and then
`tokenizers.Tokenizer.from_file` (50-70 ms for the demo model's 3.5 MB), each one call that
holds the GIL. Models load on the worker thread, but while it holds the GIL the GUI thread
cannot run a single Python slot, so the window froze for that long. Here the same tokenizer
is built from pieces that each hold the GIL for a few milliseconds; the longest step left is
building the BPE model from the vocabulary and merges (20-30 ms for the demo model).

Only the plain, common case takes this path: a local folder whose tokenizer_config.json
names TokenizersBackend, with a BPE tokenizer.json whose added tokens all belong to the
vocabulary (the bundled demo model is one). Anything else, and any error, returns None: the
caller then uses AutoTokenizer.from_pretrained, so correctness never depends on this path.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styles.tokenizers import tokenizer_fingerprint, vocab_fingerprint

# ~1 ms of json parsing per piece; a tokenizer.json is parsed in a few dozen of them.
CHUNK_CHARS = 1 << 17
# A failed piece (its comma was inside a string or a nested value) is retried at the next
# comma this many times; after that the rest of the container is parsed in one call.
_MAX_TRIES = 8
_DECODE_BYTES = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009 - missing from the type stubs
_BPE_OPTIONS = frozenset({"dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                          "fuse_unk", "byte_fallback", "ignore_merges"})


@dataclass
class StepwiseTokenizer:
    """A transformers tokenizer built in short steps, with its fingerprint (computed on the way)."""

    tokenizer: Any
    fingerprint: str


def load_stepwise(source: str | Path) -> StepwiseTokenizer | None:
    """The tokenizer of a local model folder, as AutoTokenizer.from_pretrained(source) would build
    it, or None where the folder is not the plain case (or anything goes wrong)."""
    try:
        return _load(Path(source))
    except Exception:  # noqa: BLE001 - the plain path is always right; this one only spares the GUI
        return None


class _Prebuilt:
    """Hands transformers a freshly built backend tokenizer without the copy it would make.

    TokenizersBackend.__init__ takes `tokenizer_object` through copy.deepcopy, which for a
    Rust tokenizer serializes it to JSON and parses that back: the very GIL hold this module
    avoids. The backend is new and referenced nowhere else, so handing over the original is
    safe. `_load` checks that transformers took it as is, and otherwise gives up.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __deepcopy__(self, memo: dict) -> Any:
        return self.backend


def _load(folder: Path) -> StepwiseTokenizer | None:
    from tokenizers import AddedToken
    from transformers import AutoTokenizer
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    tokenizer_file, config_file = folder / "tokenizer.json", folder / "tokenizer_config.json"
    if not (tokenizer_file.is_file() and config_file.is_file()):
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if (not isinstance(config, dict) or config.get("tokenizer_class") != "TokenizersBackend"
            or "auto_map" in config or "fast_tokenizer_files" in config):
        return None
    spec = parse_json_stepwise(read_text_stepwise(tokenizer_file))
    model = spec.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE":
        return None
    vocab, merges = model.get("vocab"), model.get("merges")
    options = {k: v for k, v in model.items() if k not in ("type", "vocab", "merges")}
    if not isinstance(vocab, dict) or not isinstance(merges, list) or not options.keys() <= _BPE_OPTIONS:
        return None
    options = {k: v for k, v in options.items() if v is not None}  # None: the default, and BPE(...) refuses it
    added = spec.get("added_tokens") or []
    # Added tokens take their ids from the model's vocabulary when they are in it, and the
    # next free ids otherwise, which depend on the full vocabulary: only the first kind here.
    if not all(isinstance(t, dict) and t.get("content") in vocab for t in added):
        return None
    pairs: list[tuple[str, str]] = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)  # type: ignore[misc]
                                    for m in merges]
    if not all(len(p) == 2 for p in pairs):
        return None

    backend = _bpe_backend(spec, model, vocab, pairs, options, added)
    if backend is None:
        return None
    kwargs: dict[str, Any] = {"tokenizer_object": _Prebuilt(backend)}
    legacy = (folder / "special_tokens_map.json").is_file() or (folder / "added_tokens.json").is_file()
    if "added_tokens_decoder" not in config and not legacy:
        # What transformers would otherwise take from tokenizer.json after json.load-ing it
        # whole (its legacy path, for a tokenizer_config.json without added_tokens_decoder).
        kwargs["added_tokens_decoder"] = {
            int(t["id"]): AddedToken(**{k: v for k, v in t.items() if k != "id"}) for t in added}
    tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
    if type(tokenizer) is not TokenizersBackend or tokenizer.backend_tokenizer is not backend:
        return None

    return StepwiseTokenizer(tokenizer, _fingerprint(tokenizer, backend, vocab))


def _bpe_backend(spec: dict[str, Any], model: dict[str, Any], vocab: dict[str, int], pairs: list[tuple[str, str]],
                 options: dict[str, Any], added: list[dict[str, Any]]) -> Any:
    """The Rust tokenizer of tokenizer.json with its BPE model built from `vocab` and `pairs`; None if unsure."""
    from tokenizers import Tokenizer
    from tokenizers.models import BPE

    # Everything but the vocabulary and merges, parsed by the tokenizers library itself: its
    # model holds just the added tokens (so they get their real ids) and the unknown token.
    small_vocab = {t["content"]: vocab[t["content"]] for t in added}
    unk = options.get("unk_token")
    if isinstance(unk, str) and unk in vocab:
        small_vocab[unk] = vocab[unk]
    small = dict(spec, model=dict(model, vocab=small_vocab, merges=[]))
    backend = Tokenizer.from_str(json.dumps(small, ensure_ascii=False))
    # The options must mean the same through BPE(...) as through tokenizer.json: a small
    # model built both ways serializes identically.
    if json.loads(BPE(dict(small_vocab), [], **options).__getstate__()) != json.loads(backend.model.__getstate__()):
        return None
    backend.model = BPE(vocab, pairs, **options)
    return backend


def _fingerprint(tokenizer: Any, backend: Any, vocab: dict[str, int]) -> str:
    """The fingerprint hashes get_vocab(): the model's vocabulary with the added tokens over it."""
    full = dict(vocab)
    full.update({str(t.content): int(i) for i, t in backend.get_added_tokens_decoder().items()})
    if len(full) == backend.get_vocab_size(with_added_tokens=True):
        return vocab_fingerprint(full)
    return tokenizer_fingerprint(tokenizer)  # not expected; the slow way is always right


# -- reading JSON in pieces -----------------------------------------------------------------------

def read_text_stepwise(path: Path) -> str:
    """A UTF-8 file's text, decoded 1 MB at a time (reading itself releases the GIL)."""
    data = memoryview(path.read_bytes())
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts = [decoder.decode(data[k:k + _DECODE_BYTES]) for k in range(0, len(data), _DECODE_BYTES)]
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def parse_json_stepwise(text: str) -> Any:
    """json.loads(text), parsed in pieces of about CHUNK_CHARS characters instead of one call.

    Objects at the top two levels (for tokenizer.json: the document and e.g. its "model") are
    walked member by member; other arrays and objects are parsed in pieces (_parse_container).
    """
    value, end = _parse_value(text, _skip(text, 0), members_depth=2)
    if _skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)  # the pattern matches the empty string: never None
    return match.end() if match is not None else i


def _parse_value(text: str, i: int, members_depth: int) -> tuple[Any, int]:
    if members_depth > 0 and text.startswith("{", i):
        return _parse_members(text, i, members_depth - 1)
    if text.startswith(("[", "{"), i):
        return _parse_container(text, i)
    return _DECODER.raw_decode(text, i)


def _parse_members(text: str, i: int, members_depth: int) -> tuple[dict, int]:
    """An object walked member by member, each value parsed on its own."""
    out: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return out, i + 1
    while True:
        if not text.startswith('"', i):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = _scanstring(text, i + 1)
        i = _skip(text, i)
        if not text.startswith(":", i):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        out[key], i = _parse_value(text, _skip(text, i + 1), members_depth)
        i = _skip(text, i)
        if text.startswith("}", i):
            return out, i + 1
        if not text.startswith(",", i):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        i = _skip(text, i + 1)


def _parse_container(text: str, i: int) -> tuple[Any, int]:
    """One array or object at text[i], parsed in pieces split at its own top-level commas.

    A piece is the text from just after the opening bracket (or after a comma known to be
    top-level) to a later comma, with brackets put around it. It parses in full only if that
    comma is top-level too: a comma inside a string or a nested value leaves the piece
    unterminated or unbalanced, and the next comma is tried. A piece that the parser finishes
    early contains the container's own closing bracket: that was the last piece.
    """
    opener = text[i]
    closer = "}" if opener == "{" else "]"
    out: Any = {} if opener == "{" else []
    start = i + 1
    while True:
        cut = start + CHUNK_CHARS
        for _ in range(_MAX_TRIES):
            cut = text.find(",", cut)
            piece = opener + (text[start:cut] if cut >= 0 else text[start:]) + closer
            try:
                value, end = _DECODER.raw_decode(piece)
                break
            except json.JSONDecodeError:
                if cut < 0:
                    raise
                cut += 1
        else:  # commas deep in nested values: the rest of the container in one call
            value, end = _DECODER.raw_decode(opener + text[start:])
            _merge(out, value)
            return out, start + end - 1
        _merge(out, value)
        if end < len(piece):
            return out, start + end - 1  # piece[k] is text[start + k - 1]
        if cut < 0:  # only our own bracket closed it: the text ended inside the container
            raise json.JSONDecodeError("Unterminated container", text, i)
        start = cut + 1


def _merge(out: Any, value: Any) -> None:
    if isinstance(out, dict):
        out.update(value)
    else:
        out.extend(value)
