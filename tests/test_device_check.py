"""installer/device-check.sh and its summary module, on the CPU: the GPU stages are skipped (or, with
DEVICE_CHECK_DEVICE=cpu, run on the CPU, where the quantized ones must fail and be recorded)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "installer" / "device-check.sh"
SHARED = REPO.parent / "shared"
STAGES = ["env", "install", "model", "styles", "bench-bf16", "bench-8bit", "bench-4bit", "gpu-tests"]

_spec = importlib.util.spec_from_file_location("device_check", REPO / "installer" / "device_check.py")
assert _spec is not None and _spec.loader is not None
dc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dc)

BENCH = {"model": "tinyllama-like", "device": "cuda:0", "threads": 16,
         "tps": {"unsteered": 41.5, "steered": 39.0}, "ttft": {"fresh_ms": 35.2, "reused_ms": 4.1}}


def _main(*argv: str) -> int:
    return dc.main([str(a) for a in argv])


def test_records_stages_and_writes_a_valid_summary(tmp_path, capsys):
    state, out = tmp_path / "state.json", tmp_path / "out" / "device-check.json"
    log = tmp_path / "bench.log"
    log.write_text("stylesteer: a notice on stderr {not json}\n" + json.dumps(BENCH, indent=2) + "\n")
    assert _main("record", state, "env", "ok", "1.234") == 0
    assert _main("record", state, "install", "skipped", "0", "", "no wheels") == 0
    assert _main("record", state, "bench-bf16", "ok", "61.5", log) == 0
    assert _main("summary", state, out) == 0
    summary = json.loads(out.read_text())
    assert [s["name"] for s in summary["stages"]] == ["env", "install", "bench-bf16"]
    assert summary["ok"] is True and summary["counts"] == {"ok": 2, "failed": 0, "skipped": 1}
    assert summary["stages"][0]["seconds"] == 1.23
    assert summary["stages"][1]["note"] == "no wheels"
    assert summary["bench"] == {"bench-bf16": BENCH}
    assert summary["total_seconds"] == pytest.approx(62.73)
    table = capsys.readouterr().out
    assert "2 ok, 0 failed, 1 skipped" in table
    assert "on cuda:0, unsteered 41.5 tok/s" in table and "first token 35 ms" in table


def test_a_failed_stage_is_recorded_and_later_stages_still_count(tmp_path, capsys):
    state, out = tmp_path / "state.json", tmp_path / "device-check.json"
    err = tmp_path / "bench-8bit.log"
    err.write_text("stylesteer: error: quantization needs the bitsandbytes package\n")
    assert _main("record", state, "bench-8bit", "failed", "2.0", err, "exit status 2") == 0
    assert _main("record", state, "gpu-tests", "ok", "30") == 0
    assert _main("summary", state, out) == 1  # a failed stage: exit 1, the summary is still written
    summary = json.loads(out.read_text())
    failed = summary["stages"][0]
    assert failed["status"] == "failed" and failed["note"] == "exit status 2"
    assert failed["output_tail"] == ["stylesteer: error: quantization needs the bitsandbytes package"]
    assert summary["ok"] is False and summary["counts"]["ok"] == 1 and summary["bench"] == {}
    assert "1 failed" in capsys.readouterr().out


def test_a_bench_without_json_is_failed_and_a_rerun_stage_replaces_its_entry(tmp_path):
    state = tmp_path / "state.json"
    log = tmp_path / "b.log"
    log.write_text("Traceback (most recent call last):\n  boom\n")
    dc.record(state, "bench-4bit", "ok", "3", str(log))
    entry = dc.load_state(state)["stages"][0]
    assert entry["status"] == "failed" and "no JSON result" in entry["note"]
    assert entry["output_tail"][-1] == "  boom"
    log.write_text(json.dumps(BENCH))
    dc.record(state, "bench-4bit", "ok", "4", str(log))
    stages = dc.load_state(state)["stages"]
    assert len(stages) == 1 and stages[0]["status"] == "ok" and stages[0]["result"] == BENCH


@pytest.mark.parametrize("argv", [["record", "S", "env", "fine", "1"], ["record", "S", "env", "ok", "soon"],
                                  ["record", "S", " ", "ok", "1"], ["summary"], ["frobnicate"]])
def test_bad_calls_are_one_line_and_exit_2_leaving_the_state_alone(tmp_path, capsys, argv):
    state = tmp_path / "state.json"
    dc.record(state, "env", "ok", "1")
    before = state.read_text()
    assert _main(*[str(state) if a == "S" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("device_check: ") and err.count("\n") == 1
    assert state.read_text() == before


def test_an_unreadable_state_or_output_file_does_not_stop_it(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{half")
    entry = dc.record(state, "model", "failed", "1", str(tmp_path / "missing.log"))
    assert "cannot read" in entry["output_error"]
    assert [s["name"] for s in dc.load_state(state)["stages"]] == ["model"]


def test_last_json_object():
    assert dc.last_json_object('warn {"a": 1}\n{"b": {"c": 2}} trailing') == {"b": {"c": 2}}
    assert dc.last_json_object("no json { here") is None
    assert dc.last_json_object("[1, 2]") is None


def test_environment_reports_without_raising():
    r = subprocess.run([sys.executable, str(REPO / "installer" / "device_check.py"), "env"], capture_output=True,
                       text=True, timeout=120, check=True)
    info = json.loads(r.stdout)
    assert info["python"] and isinstance(info["cuda_available"], bool) and "nvidia_smi" in info


def test_script_syntax_and_shellcheck():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert os.access(SCRIPT, os.X_OK)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", "-S", "warning", str(SCRIPT)], check=True)


def _fake_python(tmp_path: Path) -> Path:
    """An interpreter that logs `-m pip` calls instead of installing anything (this venv is shared)."""
    fake = tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\nif [ "$1" = -m ] && [ "$2" = pip ]; then\n'
                    f'  echo "$@" >>"{tmp_path}/pip-calls"\n'
                    f'  case "$*" in *"[test]"*) [ -z "${{FAKE_PIP_NO_TEST_EXTRAS:-}}" ] || exit 1 ;; esac\n'
                    f'  exit 0\nfi\nexec "{sys.executable}" "$@"\n')
    fake.chmod(0o755)
    return fake


def _run_script(tmp_path: Path, out: Path, timeout: int, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVICE_CHECK_", "STYLESTEER_WHEELS"))}
    full_env.update(OMP_NUM_THREADS="1", TMPDIR=str(tmp_path), **env)
    r = subprocess.run(["bash", str(SCRIPT), str(out)], env=full_env, capture_output=True, text=True,
                       timeout=timeout, cwd=tmp_path)
    return r, json.loads((out / "device-check.json").read_text())


@pytest.mark.parametrize("with_wheels, test_extras", [(False, True), (True, True), (True, False)])
def test_install_stage_stays_offline_and_a_missing_shared_folder_skips(tmp_path, with_wheels, test_extras):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    if with_wheels:
        (wheels / "zstandard-0.23-py3-none-any.whl").write_bytes(b"")
    extra = {} if test_extras else {"FAKE_PIP_NO_TEST_EXTRAS": "1"}
    r, summary = _run_script(tmp_path, tmp_path / "out", 120, PYTHON=str(_fake_python(tmp_path)),
                             STYLESTEER_WHEELS=str(wheels), STYLESTEER_SHARED=str(tmp_path / "nowhere"),
                             DEVICE_CHECK_DRY_RUN="1", **extra)
    status = {s["name"]: s["status"] for s in summary["stages"]}
    if not test_extras:  # .[test] failed: the app alone is installed, and the failure stays in the summary
        assert r.returncode == 1 and status.pop("install") == "failed" and status.pop("install-core") == "ok"
        status = {"install": "ok", **status}
        assert (tmp_path / "pip-calls").read_text().splitlines()[-1].endswith(" -e .")
    else:
        assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(status) == sorted(STAGES)
    assert status["env"] == "ok" and status["install"] == "ok"
    assert all(status[s] == "skipped" for s in STAGES[2:])
    pip = (tmp_path / "pip-calls").read_text()
    assert "--no-index" in pip and " -e " in pip
    if with_wheels:
        assert f"--find-links {wheels}" in pip and "--no-deps" not in pip
    else:
        assert "--no-deps" in pip and f"no wheels at {wheels}" in r.stderr
    # no temporary folder is left behind
    assert not list(tmp_path.glob("stylesteer-device-check.*"))


@pytest.mark.corpora
def test_script_end_to_end_on_the_cpu_with_a_two_layer_model(tmp_path):
    """The whole script on a 2-layer TinyLlama-shaped model, the bench stages on the CPU: bf16's bench is
    parsed into the summary, the quantized ones fail (bitsandbytes needs CUDA) and the script goes on."""
    if not (SHARED / "tinyllama-like" / "make.py").is_file() or not (SHARED / "corpora").is_dir():
        pytest.skip("../shared/tinyllama-like or ../shared/corpora is not beside the checkout")
    out = tmp_path / "out"
    r, summary = _run_script(tmp_path, out, 300, PYTHON=sys.executable, STYLESTEER_SHARED=str(SHARED),
                             DEVICE_CHECK_SKIP_INSTALL="1", DEVICE_CHECK_LAYERS="2", DEVICE_CHECK_DEVICE="cpu",
                             DEVICE_CHECK_TOKENS="2", DEVICE_CHECK_REPEATS="1", DEVICE_CHECK_CONTEXT="8")
    assert r.returncode == 1, r.stdout + r.stderr  # the two quantized benches failed
    status = {s["name"]: s["status"] for s in summary["stages"]}
    assert status == {"env": "ok", "install": "skipped", "model": "ok", "styles": "ok", "bench-bf16": "ok",
                      "bench-8bit": "failed", "bench-4bit": "failed", "gpu-tests": "skipped"}
    bench = summary["bench"]["bench-bf16"]
    assert bench["device"] == "cpu" and bench["tps"]["unsteered"] > 0
    assert summary["environment"]["cuda_available"] is False
    styles = next(s for s in summary["stages"] if s["name"] == "styles")
    assert styles["result"]["style"] == "sherlock" and styles["result"]["n_tokens"] > 100_000
    failed = next(s for s in summary["stages"] if s["name"] == "bench-8bit")
    assert any("needs a CUDA GPU" in line for line in failed["output_tail"])
    assert {p.name for p in out.iterdir()} == {"device-check.json"} | {f"{s}.log" for s in STAGES
                                                                       if status[s] != "skipped"}
    assert "4 ok, 2 failed, 2 skipped" in r.stdout
