"""trainer.train: a tiny real run lowers the loss, resume is exact, DDP with 2 gloo processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.config import load_config
from trainer.train import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "trainer_signs_tiny.npz"  # 52 real clips of signs.npz (MIT)


def tiny_overrides(tmp_path: Path, **extra) -> list[str]:
    values = {
        "data": str(TINY), "hidden": 32, "batch_size": 8, "epochs": 6, "lr": 0.005, "warmup_steps": 2,
        "patience": 100, "progress": False, "num_threads": 1, "out_dir": str(tmp_path / "run"),
        "log_dir": str(tmp_path / "runs"),
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def test_tiny_run_lowers_the_loss(tmp_path):
    cfg = load_config(ROOT / "configs" / "encoder_signs.yaml", tiny_overrides(tmp_path, epochs=8))
    out = train(cfg)
    history = torch.load(out / "last.pt", weights_only=False)["progress"]["history"]
    assert len(history) == 8
    assert history[-1]["loss"] < history[0]["loss"]
    assert (out / "best.pt").exists() and (tmp_path / "runs").exists()  # tensorboard log written


def test_resume_continues_at_the_same_step(tmp_path):
    base = ROOT / "configs" / "encoder_signs.yaml"
    stopped = train(load_config(base, tiny_overrides(tmp_path / "a", epochs=3, max_steps=3)))
    ckpt = torch.load(stopped / "last.pt", weights_only=False)
    assert ckpt["progress"]["step"] == 3
    resumed = train(load_config(base, tiny_overrides(tmp_path / "b", epochs=3, resume=str(stopped / "last.pt"))))
    straight = train(load_config(base, tiny_overrides(tmp_path / "c", epochs=3)))
    a = torch.load(resumed / "last.pt", weights_only=False)
    b = torch.load(straight / "last.pt", weights_only=False)
    assert a["progress"]["step"] == b["progress"]["step"] == 6
    for name, tensor in b["model"].items():
        assert torch.allclose(a["model"][name], tensor, atol=1e-6), name


def test_classifier_run(tmp_path):
    cfg = load_config(None, tiny_overrides(tmp_path, task="classifier", classifier="bilstm", epochs=3))
    out = train(cfg)
    ckpt = torch.load(out / "best.pt", weights_only=False)
    assert ckpt["labels"] == sorted(set(ckpt["labels"])) and len(ckpt["labels"]) == 5
    assert 0.0 <= ckpt["progress"]["best"] <= 1.0


def test_ddp_two_gloo_processes_agree(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip(f"torchrun not found next to {sys.executable}: cannot launch the DDP test")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "trainer", "train",
           "--config", str(ROOT / "configs" / "encoder_signs.yaml"),
           *tiny_overrides(tmp_path, epochs=1, batch_size=4)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "run"
    rank0 = torch.load(out / "final_rank0.pt", weights_only=True)
    rank1 = torch.load(out / "final_rank1.pt", weights_only=True)
    for name, tensor in rank0.items():
        assert torch.equal(tensor, rank1[name]), name
    assert torch.load(out / "last.pt", weights_only=False)["progress"]["epoch"] == 1
