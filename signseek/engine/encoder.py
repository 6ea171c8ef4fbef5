"""Encoders and classifier heads: ONNX Runtime first, the TorchScript artifact as a fallback.

An encoder maps normalised features [B, T, F] + mask [B, T] to unit embeddings [B, D].
`load_encoder` tries ONNX Runtime (CUDA when asked for and available, else CPU) and falls back
to TorchScript only when ONNX Runtime cannot load the model and torch is importable; the
chosen ``backend`` string ("onnxruntime-cpu", "onnxruntime-cuda", "torchscript") goes to /healthz.
ONNX Runtime sessions are thread-safe: one session serves every request thread.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import SignSeekError

log = logging.getLogger(__name__)


class EncoderError(SignSeekError, RuntimeError):
    """No backend could load the model, or the model's inputs are not the bundle contract's."""
    code = "model_failed"
    kind = "unavailable"


def pad_batch(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length [L_i, F] arrays -> (features [B, T, F] zero-padded, mask [B, T])."""
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    longest = max(len(s) for s in sequences)
    dim = sequences[0].shape[1]
    features = np.zeros((len(sequences), longest, dim), dtype=np.float32)
    mask = np.zeros((len(sequences), longest), dtype=np.float32)
    for i, seq in enumerate(sequences):
        features[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1.0
    return features, mask


class OnnxModel:
    """One ONNX Runtime session with inputs features + mask and a single output."""

    def __init__(self, path: str | Path, enable_cuda: bool = False, intra_op_threads: int = 1) -> None:
        self.path = Path(path)
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if enable_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        names = {i.name for i in self.session.get_inputs()}
        if not {"features", "mask"} <= names:
            raise EncoderError(f"{self.path.name} has inputs {sorted(names)}; expected 'features' and 'mask'")
        self.output_name = self.session.get_outputs()[0].name
        used = self.session.get_providers()[0]
        self.backend = "onnxruntime-cuda" if used == "CUDAExecutionProvider" else "onnxruntime-cpu"
        self.calls = 0  # number of run() calls (tests count these to check micro-batching)
        self._count_lock = threading.Lock()

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self._count_lock:
            self.calls += 1
        return self.session.run(
            [self.output_name],
            {"features": features.astype(np.float32, copy=False), "mask": mask.astype(np.float32, copy=False)},
        )[0]


class TorchScriptModel:
    """The TorchScript artifact, used only when ONNX Runtime cannot load the model."""

    backend = "torchscript"

    def __init__(self, path: str | Path) -> None:
        import torch  # optional: serving installs have no torch

        self._torch = torch
        self.path = Path(path)
        self.module = torch.jit.load(str(self.path), map_location="cpu").eval()
        self.calls = 0
        self._lock = threading.Lock()

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            self.calls += 1
            out = self.module(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
                              torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)))
        return out.numpy()


def load_model(
    onnx_path: str | Path,
    torchscript_path: str | Path | None = None,
    enable_cuda: bool = False,
    intra_op_threads: int = 1,
) -> OnnxModel | TorchScriptModel:
    """ONNX Runtime session, or the TorchScript fallback when ONNX Runtime fails and torch exists."""
    try:
        return OnnxModel(onnx_path, enable_cuda, intra_op_threads)
    except Exception as exc:  # ORT raises several private exception types
        ts = Path(torchscript_path) if torchscript_path else None
        if ts and ts.is_file() and importlib.util.find_spec("torch") is not None:
            log.warning("ONNX Runtime could not load %s (%s); using TorchScript %s", onnx_path, exc, ts.name)
            return TorchScriptModel(ts)
        raise EncoderError(
            f"ONNX Runtime could not load {Path(onnx_path).name}: {exc}"
            + ("" if ts else " (and the bundle has no TorchScript fallback)")
        ) from exc


class Encoder:
    """Normalised sequences -> unit embeddings. ``embed`` takes one padded batch."""

    def __init__(self, model: OnnxModel | TorchScriptModel) -> None:
        self.model = model

    @property
    def backend(self) -> str:
        return self.model.backend

    @property
    def calls(self) -> int:
        return self.model.calls

    def embed(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.asarray(self.model.run(features, mask), dtype=np.float32)
        # The contract says unit vectors; renormalise anyway so search never depends on it.
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed_sequences(self, sequences: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Normalised [L_i, F] arrays -> [N, D], batched by similar length."""
        if not sequences:
            raise ValueError("embed_sequences needs at least one sequence")
        order = np.argsort([len(s) for s in sequences], kind="stable")
        parts = {}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            feats, mask = pad_batch([sequences[i] for i in chunk])
            parts.update(zip(chunk.tolist(), self.embed(feats, mask), strict=True))
        return np.stack([parts[i] for i in range(len(sequences))])

    @classmethod
    def load(cls, onnx_path, torchscript_path=None, enable_cuda=False, intra_op_threads=1) -> Encoder:
        return cls(load_model(onnx_path, torchscript_path, enable_cuda, intra_op_threads))


class ClassifierModel:
    """A classifier head (features + mask -> logits) with its own feature config and stats."""

    def __init__(self, spec, enable_cuda: bool = False) -> None:
        self.spec = spec  # signseek.bundle.Classifier
        self.model = load_model(spec.path, None, enable_cuda)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> list[str]:
        return self.spec.labels

    def probabilities(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        logits = np.asarray(self.model.run(features, mask), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
