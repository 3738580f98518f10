"""The JSON summary of installer/device-check.sh, built one stage at a time (standard library
only; `env` imports torch and the rest where present).

    python installer/device_check.py env
    python installer/device_check.py record STATE STAGE STATUS SECONDS [FILE] [NOTE]
    python installer/device_check.py summary STATE OUT_JSON

`env` prints the environment (versions, CUDA, the GPU) as one JSON object. STATE is a JSON file of the
stages recorded so far (created on the first `record`). STATUS is ok, failed or skipped. FILE, when given
and not empty, is what the stage printed: its last JSON object (a bench's result; notices before it do no
harm) goes into the summary, and a bench stage without one is failed; a stage that failed or printed no
JSON keeps the last lines of it. NOTE is a short reason (why a stage was skipped or failed). `summary`
writes OUT_JSON and prints a short table; its exit status is 0 when no stage failed, 1 otherwise.

A bad call (unknown status, seconds that are not a number) is one line on stderr and exit 2, and the state
file is left as it was: the shell script goes on with its next stage whatever happens here.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STATUSES = ("ok", "failed", "skipped")
TAIL_LINES = 20
SCHEMA = 1


class UsageError(Exception):
    """A bad command line: one line on stderr, exit 2."""


def load_state(path: Path) -> dict[str, Any]:
    """The stages recorded so far; a missing, empty or unreadable file starts a fresh summary."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("stages"), list):
        state = {"schema": SCHEMA, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": []}
    return state


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in `text` (bench prints one; warnings may come before it)."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found = obj
        i = text.find("{", end)
    return found


def _tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-lines:]


def record(state_path: Path, stage: str, status: str, seconds: str, file: str = "", note: str = "") -> dict[str, Any]:
    """Add (or replace) one stage's entry in the state file and return it."""
    if not stage.strip():
        raise UsageError("the stage needs a name")
    if status not in STATUSES:
        raise UsageError(f"status must be {', '.join(STATUSES)}, got {status!r}")
    try:
        secs = round(float(seconds), 2)
    except ValueError:
        raise UsageError(f"seconds must be a number, got {seconds!r}") from None
    entry: dict[str, Any] = {"name": stage, "status": status, "seconds": secs}
    if note:
        entry["note"] = note
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            entry["output_error"] = f"cannot read {file}: {exc.strerror or exc}"
        else:
            result = last_json_object(text)
            if result is not None:
                entry["result"] = result
            elif stage.startswith("bench") and status == "ok":
                entry["status"] = "failed"
                entry["note"] = (note + "; " if note else "") + "no JSON result in the bench output"
            if result is None or entry["status"] != "ok":
                entry["output_tail"] = _tail(text)
    state = load_state(state_path)
    state["stages"] = [s for s in state["stages"] if s.get("name") != stage] + [entry]
    _write_atomic(state_path, state)
    return entry


def _bench_line(result: dict[str, Any]) -> str:
    tps = result.get("tps")
    parts = [f"on {result['device']}"] if isinstance(result.get("device"), str) else []
    if isinstance(tps, dict):
        for key in ("unsteered", "steered"):
            if isinstance(tps.get(key), (int, float)):
                parts.append(f"{key} {tps[key]:.1f} tok/s")
    ttft = result.get("ttft")
    if isinstance(ttft, dict):
        fresh = ttft.get("fresh_ms")
        if isinstance(fresh, (int, float)):
            parts.append(f"first token {fresh:.0f} ms")
    return ", ".join(parts)


def summarize(state_path: Path, out_path: Path) -> tuple[dict[str, Any], str]:
    """Write the final summary to `out_path`; return it and its human-readable table."""
    state = load_state(state_path)
    stages = state["stages"]
    counts = {s: sum(1 for st in stages if st.get("status") == s) for s in STATUSES}
    summary = {
        "schema": SCHEMA,
        "started": state.get("started"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ok": counts["failed"] == 0,
        "counts": counts,
        "total_seconds": round(sum(float(st.get("seconds", 0)) for st in stages), 2),
        "stages": stages,
        "environment": next((st["result"] for st in stages if st["name"] == "env" and "result" in st), None),
        "bench": {st["name"]: st["result"] for st in stages
                  if st["name"].startswith("bench") and isinstance(st.get("result"), dict)},
    }
    _write_atomic(out_path, summary)
    lines = [f"device check: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
             f"in {summary['total_seconds']:.0f} s -> {out_path}"]
    for st in stages:
        extra = st.get("note", "")
        if st["name"].startswith("bench") and isinstance(st.get("result"), dict):
            extra = _bench_line(st["result"])
        lines.append(f"  {st['status']:<8}{st['name']:<16}{st['seconds']:7.1f} s  {extra}".rstrip())
    return summary, "\n".join(lines)


def environment() -> dict[str, Any]:
    """Python, torch, transformers, bitsandbytes and accelerate versions, CUDA and the GPU, nvidia-smi's line.
    Whatever is missing or broken is reported in the result, never raised."""
    import platform
    import shutil
    import subprocess

    info: dict[str, Any] = {"python": platform.python_version(), "executable": sys.executable,
                            "platform": platform.platform()}
    for mod in ("torch", "transformers", "bitsandbytes", "accelerate"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - a missing or broken package is part of the report
            info[mod] = None
            info[f"{mod}_error"] = f"{type(exc).__name__}: {exc}"[:200]
    info["cuda_available"] = False
    try:
        import torch

        info["cuda_available"] = bool(torch.cuda.is_available())
        info["cuda_version"] = torch.version.cuda
        if info["cuda_available"]:
            props = torch.cuda.get_device_properties(0)
            info.update(gpu_name=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                        gpu_count=torch.cuda.device_count(), bf16_supported=torch.cuda.is_bf16_supported())
    except Exception as exc:  # noqa: BLE001
        info["cuda_error"] = f"{type(exc).__name__}: {exc}"[:200]
    smi = shutil.which("nvidia-smi")
    info["nvidia_smi"] = None
    if smi:
        try:
            r = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,memory.used",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=False)
            info["nvidia_smi"] = (r.stdout.strip() or r.stderr.strip()).splitlines()[:4]
        except (OSError, subprocess.SubprocessError) as exc:
            info["nvidia_smi"] = [f"{type(exc).__name__}: {exc}"[:200]]
    return info


def main(argv: list[str]) -> int:
    try:
        if argv == ["env"]:
            print(json.dumps(environment()))
            return 0
        if len(argv) >= 5 and argv[0] == "record" and len(argv) <= 7:
            record(Path(argv[1]), *argv[2:])
            return 0
        if len(argv) == 3 and argv[0] == "summary":
            summary, table = summarize(Path(argv[1]), Path(argv[2]))
            print(table)
            return 0 if summary["ok"] else 1
        raise UsageError("usage: device_check.py env | record STATE STAGE STATUS SECONDS [FILE] [NOTE] | "
                         "summary STATE OUT_JSON")
    except UsageError as exc:
        print(f"device_check: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"device_check: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
