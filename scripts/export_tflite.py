"""ONNX -> TFLite (fp32 and int8) for a SignSeek bundle's models, verified with LiteRT vs ONNX Runtime.

Runs in the converter's own venv (`make tflite-venv`: `.venv-litert`, litert-torch + torch +
ai-edge-quantizer + ai-edge-litert, pinned in requirements-tflite.txt), never in the main one, and
imports nothing from signseek: the main venv prepares the verification inputs and ships the result
(`python -m trainer.tflite`, which calls this script). Usage (what trainer.tflite runs):

    .venv-litert/bin/python scripts/export_tflite.py --inputs inputs.npz --out OUT --report report.json

``inputs.npz`` holds, for each model NAME listed in its ``models`` array: ``NAME__onnx`` (path),
``NAME__features`` [N, T, F] and ``NAME__mask`` [N, T] (real clips, prepared and normalised as
the engine does), and for retrieval models ``NAME__references`` [R, D] + ``NAME__reference_labels``
[R].

The route: the bundle ships ONNX, so each ONNX graph is rebuilt as a torch module (`OnnxModule`:
every node translated to the torch op of the same meaning, at the fixed input shape [1, T, F] the
engine feeds, T = the bundle's seq_len; nodes that depend only on constants and shapes are computed
once here, the rest is traced; the GRU is unrolled over the T steps), checked against ONNX Runtime
on every clip, then converted by litert-torch (`litert_torch.convert`) to an fp32 .tflite, and
quantised by ai-edge-quantizer to the int8 .tflite: dynamic range (`dynamic_wi8_afp32`: int8
weights per channel, activations quantised on the fly), except the first MatMul, which reads the
input features and keeps float activations (see `int8_recipe`). Every clip is then run through
ONNX Runtime and through the LiteRT interpreter (ai-edge-litert): fp32 must agree within 1e-4
(max abs difference), int8 must keep cosine >= 0.999 to ONNX's output and the same top-1 (nearest
reference label for an encoder, argmax for a classifier). The report has every figure, sizes and
latencies. Why not onnx2tf (the earlier route): 1.29 transposes the [1, T, 420] hand-shape
descriptor as if it were an NCW image and stops at the encoder's first MatMul.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

FP32_TOL = 1e-4
INT8_MIN_COSINE = 0.999
TORCH_TOL = FP32_TOL  # the rebuilt torch module against ONNX Runtime, before any conversion: the same bar

DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}


class Static:
    """A value known before tracing (initialiser, constant, or computed from shapes only)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor
        self.array = tensor.detach().numpy()


def _t(v):
    return v.tensor if isinstance(v, Static) else v


def _ints(v, op):
    if not isinstance(v, Static):
        raise NotImplementedError(f"{op}: a shape/axes input computed from the data is not supported")
    return [int(x) for x in np.asarray(v.array).reshape(-1)]


def _gru(attrs, x, w, r, b=None, seq_lens=None, h0=None):
    """ONNX GRU (gates z, r, h), one step at a time: unrolled over the fixed sequence length."""
    if seq_lens is not None:
        raise NotImplementedError("GRU with sequence_lens")
    if int(attrs.get("layout", 0)) != 0:
        raise NotImplementedError("GRU layout=1")
    hidden = int(attrs["hidden_size"])
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    before_reset = int(attrs.get("linear_before_reset", 0))
    seq, batch = x.shape[0], x.shape[1]
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    ys, hs = [], []
    for d, name in enumerate(dirs):
        wd, rd = w[d], r[d]  # [3H, in], [3H, H], gates z, r, h
        wb, rb = (b[d][: 3 * hidden], b[d][3 * hidden :]) if b is not None else (0.0, 0.0)
        h = h0[d] if h0 is not None else x.new_zeros(batch, hidden)
        xw = torch.matmul(x, wd.t()) + wb  # [seq, batch, 3H], every step at once
        rz, rr, rh = rd[:hidden], rd[hidden : 2 * hidden], rd[2 * hidden :]
        rbz, rbr, rbh = (rb[:hidden], rb[hidden : 2 * hidden], rb[2 * hidden :]) if b is not None else (0.0, 0.0, 0.0)
        steps = range(seq - 1, -1, -1) if name == "reverse" else range(seq)
        out = [None] * seq
        for t in steps:  # unrolled at the fixed sequence length
            xz, xr, xh = xw[t, :, :hidden], xw[t, :, hidden : 2 * hidden], xw[t, :, 2 * hidden :]
            z = torch.sigmoid(xz + torch.matmul(h, rz.t()) + rbz)
            rg = torch.sigmoid(xr + torch.matmul(h, rr.t()) + rbr)
            if before_reset:
                n = torch.tanh(xh + rg * (torch.matmul(h, rh.t()) + rbh))
            else:
                n = torch.tanh(xh + torch.matmul(rg * h, rh.t()) + rbh)
            h = (1 - z) * n + z * h
            out[t] = h
        ys.append(torch.stack(out))  # [seq, batch, H]
        hs.append(h)
    return torch.stack(ys, dim=1), torch.stack(hs)


def _gather(data, idx, axis):
    axis = axis % data.dim()
    dim = data.shape[axis]
    idx = torch.where(idx < 0, idx + dim, idx)
    flat = torch.index_select(data, axis, idx.reshape(-1))
    return flat.reshape((*data.shape[:axis], *idx.shape, *data.shape[axis + 1 :]))


def run_node(node, attrs, args):
    """args: Static, torch.Tensor or None (an empty optional input). Returns a tuple of tensors."""
    op = node.op_type
    x = [_t(a) if a is not None else None for a in args]
    if op == "Constant":
        a = node.attribute[0]
        if a.name == "value":
            return (torch.from_numpy(numpy_helper.to_array(a.t).copy()),)
        return (torch.tensor(helper.get_attribute_value(a)),)
    if op in ("Add", "Sub", "Mul", "Pow", "Max", "Min", "Equal", "Less", "Greater", "Where", "And", "Or"):
        fn = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Pow": torch.pow, "Max": torch.maximum,
              "Min": torch.minimum, "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt,
              "Where": torch.where, "And": torch.logical_and, "Or": torch.logical_or}[op]
        out = x[0]
        if op == "Where":
            return (torch.where(x[0], x[1], x[2]),)
        for other in x[1:]:
            out = fn(out, other)
        return (out,)
    if op == "Div":
        a, b = x
        if not a.is_floating_point() and not b.is_floating_point():
            return (torch.div(a, b, rounding_mode="trunc"),)
        return (a / b,)
    unary = {"Sqrt": torch.sqrt, "Log": torch.log, "Erf": torch.erf, "Tanh": torch.tanh, "Exp": torch.exp,
             "Sigmoid": torch.sigmoid, "Relu": torch.relu, "Neg": torch.neg, "Abs": torch.abs,
             "Identity": lambda v: v, "Not": torch.logical_not, "Reciprocal": torch.reciprocal}
    if op in unary:
        return (unary[op](x[0]),)
    if op == "Shape":
        return (torch.tensor(list(x[0].shape), dtype=torch.int64),)
    if op == "Cast":
        return (x[0].to(DTYPES[int(attrs["to"])]),)
    if op == "Gather":
        return (_gather(x[0], x[1], int(attrs.get("axis", 0))),)
    if op == "GatherElements":
        axis = int(attrs.get("axis", 0)) % x[0].dim()
        idx = torch.where(x[1] < 0, x[1] + x[0].shape[axis], x[1])
        return (torch.gather(x[0], axis, idx),)
    if op == "Unsqueeze":
        out = x[0]
        rank = out.dim() + len(_ints(args[1], op))
        for axis in sorted(a % rank for a in _ints(args[1], op)):
            out = out.unsqueeze(axis)
        return (out,)
    if op == "Squeeze":
        if len(args) < 2 or args[1] is None:
            return (x[0].squeeze(),)
        return (x[0].squeeze(tuple(a % x[0].dim() for a in _ints(args[1], op))),)
    if op == "Concat":
        return (torch.cat([v for v in x if v is not None], dim=int(attrs["axis"])),)
    if op == "Reshape":
        shape = _ints(args[1], op)
        if not int(attrs.get("allowzero", 0)):
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return (x[0].reshape(shape),)
    if op == "Expand":
        return (x[0].expand(torch.broadcast_shapes(tuple(x[0].shape), tuple(_ints(args[1], op)))),)
    if op == "Transpose":
        perm = attrs.get("perm", list(range(x[0].dim() - 1, -1, -1)))
        return (x[0].permute(*perm),)
    if op == "Slice":
        data = x[0]
        starts, ends = _ints(args[1], op), _ints(args[2], op)
        axes = _ints(args[3], op) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
        steps = _ints(args[4], op) if len(args) > 4 and args[4] is not None else [1] * len(starts)
        index = [slice(None)] * data.dim()
        for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
            if st <= 0:
                raise NotImplementedError("Slice with a step <= 0")
            size = data.shape[a]
            s, e = max(-size, min(s, size)), max(-size, min(e, size))
            index[a % data.dim()] = slice(s, e, st)
        return (data[tuple(index)],)
    if op in ("ReduceSum", "ReduceMax", "ReduceMean", "ReduceL2"):
        keep = bool(int(attrs.get("keepdims", 1)))
        axes = _ints(args[1], op) if len(args) > 1 and args[1] is not None else []
        if not axes:
            if int(attrs.get("noop_with_empty_axes", 0)):
                return (x[0],)
            axes = list(range(x[0].dim()))
        if op == "ReduceSum":
            return (torch.sum(x[0], dim=axes, keepdim=keep),)
        if op == "ReduceMean":
            return (torch.mean(x[0], dim=axes, keepdim=keep),)
        if op == "ReduceMax":
            return (torch.amax(x[0], dim=axes, keepdim=keep),)
        return (torch.sqrt(torch.sum(x[0] * x[0], dim=axes, keepdim=keep)),)
    if op == "Clip":
        lo = float(args[1].array) if len(args) > 1 and args[1] is not None else None
        hi = float(args[2].array) if len(args) > 2 and args[2] is not None else None
        return (torch.clamp(x[0], lo, hi),)
    if op == "Softmax":
        return (torch.softmax(x[0], dim=int(attrs.get("axis", -1))),)
    if op == "Einsum":
        eq = attrs["equation"]
        return (torch.einsum(eq.decode() if isinstance(eq, bytes) else eq, *x),)
    if op == "MatMul":
        return (torch.matmul(x[0], x[1]),)
    if op == "Gemm":
        a, b = x[0], x[1]
        a = a.t() if int(attrs.get("transA", 0)) else a
        b = b.t() if int(attrs.get("transB", 0)) else b
        out = float(attrs.get("alpha", 1.0)) * torch.matmul(a, b)
        if len(x) > 2 and x[2] is not None:
            out = out + float(attrs.get("beta", 1.0)) * x[2]
        return (out,)
    if op == "LayerNormalization":
        axis = int(attrs.get("axis", -1)) % x[0].dim()
        bias = x[2] if len(x) > 2 else None
        return (F.layer_norm(x[0], tuple(x[0].shape[axis:]), x[1], bias, float(attrs.get("epsilon", 1e-5))),)
    if op == "ConstantOfShape":
        value = attrs.get("value")
        fill = torch.from_numpy(numpy_helper.to_array(value).copy()) if value is not None else torch.zeros(1)
        return (fill.reshape(()).expand(_ints(args[0], op)).clone(),)
    if op == "Range":
        return (torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype),)
    if op == "GRU":
        return _gru(attrs, *x)
    raise NotImplementedError(f"ONNX op {op} has no torch translation here")


class _Node(torch.nn.Module):
    """One ONNX node as a submodule named after it, so the .tflite's tensor names (and the
    quantiser's scope regexes) carry the ONNX node names."""

    def forward(self, node, attrs, args):
        return run_node(node, attrs, args)


class OnnxModule(torch.nn.Module):
    """An ONNX graph as a torch module for one input shape, the one of ``inputs`` (a sample).

    The graph runs once here on the sample: nodes whose inputs are all constants, or that read only
    a shape (fixed from now on), become constants; the others are replayed in ``forward``, each by
    its ``_Node`` submodule, reading those constants as buffers (data) or arrays (shapes, axes).
    """

    def __init__(self, model, inputs: dict[str, np.ndarray]) -> None:
        super().__init__()
        graph = model.graph
        env = {i.name: Static(torch.from_numpy(numpy_helper.to_array(i).copy())) for i in graph.initializer}
        self.input_names = [v.name for v in graph.input if v.name not in env]
        self.output_names = [v.name for v in graph.output]
        for name in self.input_names:
            env[name] = torch.from_numpy(np.ascontiguousarray(inputs[name]))
        self.steps = []  # (node, attrs) of the nodes that depend on the inputs' values
        statics: dict[str, Static] = {}
        for node in graph.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            args = [env[i] if i else None for i in node.input]
            real = [a if not isinstance(a, torch.Tensor) else Static(a) for a in args]
            with torch.no_grad():
                outs = run_node(node, attrs, real)
            static = node.op_type == "Shape" or all(not isinstance(a, torch.Tensor) for a in args)
            for name, value in zip(node.output, outs, strict=False):
                if name:
                    env[name] = Static(value) if static else value
            if not static:
                self.steps.append((node, attrs))
        keys = [re.sub(r"\W+", "_", node.name).strip("_") or f"node{i}" for i, (node, _) in enumerate(self.steps)]
        self.keys = [k if keys.count(k) == 1 else f"{k}_{i}" for i, k in enumerate(keys)]
        self.nodes = torch.nn.ModuleDict({k: _Node() for k in self.keys})
        # What the traced nodes read from the constants: buffers (data) and arrays (shapes, axes).
        self._buffer_of: dict[str, str] = {}
        for node, _ in self.steps:
            for name in node.input:
                if name and isinstance(env.get(name), Static) and name not in self._buffer_of:
                    key = f"c{len(self._buffer_of)}"
                    self.register_buffer(key, env[name].tensor.clone(), persistent=False)
                    self._buffer_of[name] = key
                    statics[name] = env[name]
        self._statics = statics
        self._static_outputs = {n: env[n] for n in self.output_names if isinstance(env[n], Static)}

    def forward(self, *inputs: torch.Tensor):
        env: dict = dict(zip(self.input_names, inputs, strict=True))
        for key, (node, attrs) in zip(self.keys, self.steps, strict=True):
            args = []
            for name in node.input:
                if not name:
                    args.append(None)
                elif name in env:
                    args.append(env[name])
                else:
                    static = self._statics[name]
                    args.append(_Bound(getattr(self, self._buffer_of[name]), static.array))
            outs = self.nodes[key](node, attrs, args)
            for name, value in zip(node.output, outs, strict=False):
                if name:
                    env[name] = value
        outs = [env[n] if n in env else self._static_outputs[n].tensor for n in self.output_names]
        return outs[0] if len(outs) == 1 else tuple(outs)


class _Bound(Static):
    def __init__(self, tensor, array) -> None:  # noqa: D107 - buffer (traced) + its known value
        self.tensor, self.array = tensor, array


def to_torch(onnx_path: Path, features: np.ndarray, mask: np.ndarray) -> tuple[OnnxModule, float]:
    """The ONNX graph as a torch module at [1, T, F], and its max abs difference to ONNX Runtime
    over every clip (must be <= TORCH_TOL before anything is converted)."""
    import onnx
    import onnxruntime as ort

    module = OnnxModule(onnx.load(str(onnx_path)), {"features": features[:1], "mask": mask[:1]}).eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for i in range(len(features)):
            f, m = features[i : i + 1], mask[i : i + 1]
            ours = module(torch.from_numpy(f), torch.from_numpy(m)).numpy()
            ref = session.run(None, {"features": f, "mask": m})[0]
            worst = max(worst, float(np.abs(ours - ref).max()))
    return module, worst


def int8_recipe(module: OnnxModule) -> tuple[list, str]:
    """ai-edge-quantizer's dynamic-range recipe (int8 weights per channel, activations quantised
    on the fly), except the first MatMul/Gemm, the one that reads the input features: it keeps
    int8 weights with float activations (weight-only). Why: the normalised features have a wide
    range with a few large values, and quantising them on the fly cost the shipped encoder a
    cosine of 0.99706 on one clip (0.99996 with this exception); trainer.export's ONNX int8 keeps
    the features view's projection float for the same reason."""
    from ai_edge_quantizer import recipe

    first = next((key for key, (node, _) in zip(module.keys, module.steps, strict=True)
                  if node.op_type in ("MatMul", "Gemm")), None)
    plan = recipe.dynamic_wi8_afp32()
    described = "dynamic-range int8 (ai-edge-quantizer dynamic_wi8_afp32)"
    if first is not None:
        weight_only = recipe.weight_only_wi8_afp32()[0]
        weight_only["regex"] = re.escape(f"_Node_{first}") + "(;|$)"
        plan.append(weight_only)
        described += f"; {first} (reads the input features) weight-only int8"
    return plan, described


def convert(onnx_path: Path, out_dir: Path, features: np.ndarray, mask: np.ndarray) -> tuple[dict[str, Path], dict]:
    import litert_torch
    from ai_edge_quantizer import quantizer

    module, torch_diff = to_torch(onnx_path, features, mask)
    if torch_diff > TORCH_TOL:
        raise SystemExit(f"{onnx_path.name}: the torch rebuild differs from ONNX Runtime by {torch_diff:.2e} "
                         f"(> {TORCH_TOL:g}): an op is translated wrongly, nothing converted")
    sample = (torch.from_numpy(features[:1]), torch.from_numpy(mask[:1]))
    fp32 = out_dir / f"{onnx_path.stem}.tflite"
    litert_torch.convert(module, sample).export(str(fp32))
    int8 = out_dir / f"{onnx_path.stem}.int8.tflite"
    plan, described = int8_recipe(module)
    quantizer.Quantizer(str(fp32), plan).quantize().export_model(str(int8), overwrite=True)
    return {"fp32": fp32, "int8": int8}, {"torch_max_abs_diff": torch_diff, "int8_recipe": described}


class LiteModel:
    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()
        # litert-torch names the inputs args_0, args_1: features [1, T, F] is the rank-3 one.
        self.inputs = {("features" if len(d["shape"]) == 3 else "mask"): d["index"] for d in details}
        if set(self.inputs) != {"features", "mask"}:
            raise SystemExit(f"{path.name}: unexpected inputs {[(d['name'], list(d['shape'])) for d in details]}")
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shape = tuple(int(n) for d in details if d["index"] == self.inputs["features"] for n in d["shape"])

    def __call__(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.shape != features.shape:
            raise SystemExit(f"the .tflite takes {self.shape}, the clips are {features.shape}")
        self.interpreter.set_tensor(self.inputs["features"], features.astype(np.float32))
        self.interpreter.set_tensor(self.inputs["mask"], mask.astype(np.float32))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output))


def run_all(model, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    outputs, times = [], []
    for i in range(len(features)):
        start = time.perf_counter()
        outputs.append(model(features[i : i + 1], mask[i : i + 1])[0])
        times.append(time.perf_counter() - start)
    return np.stack(outputs), 1000 * float(np.median(times))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def top1(outputs: np.ndarray, references: np.ndarray | None, labels: np.ndarray | None) -> np.ndarray:
    if references is None:
        return outputs.argmax(-1)
    unit = outputs / (np.linalg.norm(outputs, axis=-1, keepdims=True) + 1e-12)
    return labels[(unit @ references.T).argmax(-1)]


def side_by_side(models: dict, features: np.ndarray, mask: np.ndarray, rounds: int = 3) -> dict[str, float]:
    """Median ms for one clip through each model, timed in turn clip by clip (the order rotating),
    so a load that changes during the run weighs on every model alike."""
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        for i in range(len(features)):
            f, m = features[i : i + 1], mask[i : i + 1]
            shift = (r * len(features) + i) % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                models[name](f, m)
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def verify(name: str, onnx_path: Path, files: dict[str, Path], features, mask, references, labels) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def onnx_model(f, m):
        return session.run(None, {"features": f.astype(np.float32), "mask": m.astype(np.float32)})[0]

    lite = {kind: LiteModel(path) for kind, path in files.items()}
    reference, _ = run_all(onnx_model, features, mask)
    load = os.getloadavg()[0]
    ms = side_by_side({"onnx": onnx_model, **lite}, features, mask)
    ref_top1 = top1(reference, references, labels)
    report = {"model": name, "onnx": onnx_path.name, "clips": int(len(features)),
              "input_shape": [1, int(features.shape[1]), int(features.shape[2])],
              "onnx_bytes": onnx_path.stat().st_size, "onnx_ms": ms["onnx"], "load_average": load}
    for kind, path in files.items():
        out, _ = run_all(lite[kind], features, mask)
        cos = cosine(out, reference)
        entry = {"file": path.name, "bytes": path.stat().st_size, "litert_ms": ms[kind],
                 "max_abs_diff": float(np.abs(out - reference).max()),
                 "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                 "top1_agreement": float(np.mean(top1(out, references, labels) == ref_top1))}
        if kind == "fp32":
            entry["passed"] = entry["max_abs_diff"] <= FP32_TOL
            entry["rule"] = f"max |LiteRT - ONNX Runtime| <= {FP32_TOL:g}"
        else:
            entry["passed"] = entry["min_cosine"] >= INT8_MIN_COSINE and entry["top1_agreement"] == 1.0
            entry["rule"] = f"cosine to ONNX Runtime >= {INT8_MIN_COSINE} on every clip and the same top-1"
        report[kind] = entry
    report["passed"] = all(report[k]["passed"] for k in files)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.out.mkdir(parents=True, exist_ok=True)
    data = np.load(args.inputs, allow_pickle=False)
    reports = []
    for name in [str(n) for n in data["models"]]:
        onnx_path = Path(str(data[f"{name}__onnx"]))
        features, mask = data[f"{name}__features"], data[f"{name}__mask"]
        references = data[f"{name}__references"] if f"{name}__references" in data.files else None
        labels = data[f"{name}__reference_labels"] if references is not None else None
        start = time.perf_counter()
        files, details = convert(onnx_path, args.out, features, mask)
        convert_s = time.perf_counter() - start
        report = verify(name, onnx_path, files, features, mask, references, labels)
        report.update(details, convert_s=convert_s)
        reports.append(report)
        print(json.dumps(report), flush=True)
    from importlib.metadata import version

    summary = {"passed": all(r["passed"] for r in reports), "models": reports,
               "converter": {name: version(name) for name in
                             ("litert-torch", "torch", "ai-edge-quantizer", "ai-edge-litert", "onnxruntime")}}
    args.report.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
