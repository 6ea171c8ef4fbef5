"""ONNX -> TFLite (fp32 and int8) for a SignSeek bundle's models, verified with LiteRT vs ONNX Runtime.

Runs in the converter's own venv (`make tflite-venv`: onnx2tf + TensorFlow, pinned in
requirements-tflite.txt), never in the main one, and imports nothing from signseek: the main venv
prepares the verification inputs and ships the result (`python -m trainer.tflite`, which calls
this script). Usage (what trainer.tflite runs):

    .venv-tflite/bin/python scripts/export_tflite.py --inputs inputs.npz --out OUT --report report.json

``inputs.npz`` holds, for each model NAME listed in its ``models`` array: ``NAME__onnx`` (path),
``NAME__features`` [N, T, F] and ``NAME__mask`` [N, T] (real clips, prepared and normalised as
the engine does), and for retrieval models ``NAME__references`` [R, D] + ``NAME__reference_labels``
[R]. Each model is converted at a fixed input shape [1, T, F] (TFLite needs one; the GRU is
unrolled over T), to fp32 and to int8 (dynamic-range quantisation: int8 weights, activations in
float, chosen per op by TFLite). Every clip is then run through ONNX Runtime and through the
LiteRT interpreter (ai-edge-litert): fp32 must agree within 1e-4 (max abs difference), int8 must
keep cosine >= 0.999 to ONNX's output and the same top-1 (nearest reference label for an encoder,
argmax for a classifier). The report has every figure, sizes and latencies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FP32_TOL = 1e-4
INT8_MIN_COSINE = 0.999


def tflite_friendly(onnx_path: Path, work: Path, seq_len: int, feature_dim: int) -> Path:
    """A copy of the graph at the fixed input shape, with ops onnx2tf 1.29 mishandles rewritten.

    Inputs get fixed dims (features [1, seq_len, F], mask [1, seq_len]): TFLite then has static
    shapes throughout and the GRU unrolls over seq_len steps.

    ReduceL2 with its axes as an input (opset 18) fails in onnx2tf (tf.norm gets a bare axis):
    it becomes Sqrt(ReduceSum(x * x, axes)), the same function. The verification below compares
    the TFLite file with the original ONNX graph, so a wrong rewrite could not pass.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    fixed = {"features": [1, seq_len, feature_dim], "mask": [1, seq_len]}
    for value in model.graph.input:
        if value.name in fixed:
            for dim, size in zip(value.type.tensor_type.shape.dim, fixed[value.name], strict=True):
                dim.ClearField("dim_param")
                dim.dim_value = size
    nodes = []
    for node in model.graph.node:
        if node.op_type != "ReduceL2":
            nodes.append(node)
            continue
        x, out = node.input[0], node.output[0]
        squared, summed = f"{out}__squared", f"{out}__sum_squares"
        keep = [helper.make_attribute(a.name, helper.get_attribute_value(a)) for a in node.attribute]
        nodes.append(helper.make_node("Mul", [x, x], [squared], name=f"{node.name}__mul"))
        reduce = helper.make_node("ReduceSum", [squared, *node.input[1:]], [summed], name=f"{node.name}__sum")
        reduce.attribute.extend(keep)
        nodes.append(reduce)
        nodes.append(helper.make_node("Sqrt", [summed], [out], name=f"{node.name}__sqrt"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    target = work / onnx_path.name
    onnx.save(model, str(target))
    return target


def convert(onnx_path: Path, out_dir: Path, seq_len: int, feature_dim: int) -> dict[str, Path]:
    import onnx2tf

    work = Path(tempfile.mkdtemp(prefix="onnx2tf-", dir=out_dir))
    onnx2tf.convert(
        input_onnx_file_path=str(tflite_friendly(onnx_path, work, seq_len, feature_dim)),
        output_folder_path=str(work),
        keep_shape_absolutely_input_names=["features", "mask"],  # [B, T, F] is not an image
        output_dynamic_range_quantized_tflite=True,
        copy_onnx_input_output_names_to_tflite=True,
        non_verbose=True,
    )
    stem = onnx_path.stem
    found = {"fp32": work / f"{stem}_float32.tflite", "int8": work / f"{stem}_dynamic_range_quant.tflite"}
    out = {}
    for kind, path in found.items():
        if not path.is_file():
            raise SystemExit(f"onnx2tf wrote no {path.name} for {onnx_path.name}")
        target = out_dir / f"{stem}.{kind}.tflite" if kind == "int8" else out_dir / f"{stem}.tflite"
        shutil.move(path, target)
        out[kind] = target
    shutil.rmtree(work, ignore_errors=True)
    return out


class LiteModel:
    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()
        self.inputs = {}
        for d in details:
            key = "mask" if "mask" in d["name"] else "features"
            self.inputs[key] = d["index"]
        if set(self.inputs) != {"features", "mask"}:
            raise SystemExit(f"{path.name}: unexpected inputs {[d['name'] for d in details]}")
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shape = tuple(d["shape"] for d in details if d["index"] == self.inputs["features"])[0]
        self.shape = tuple(int(n) for n in self.shape)

    def __call__(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.shape != features.shape:  # a graph with dynamic dims comes out at [1, 1, F]
            self.interpreter.resize_tensor_input(self.inputs["features"], list(features.shape), strict=False)
            self.interpreter.resize_tensor_input(self.inputs["mask"], list(mask.shape), strict=False)
            self.interpreter.allocate_tensors()
            self.shape = features.shape
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


def verify(name: str, onnx_path: Path, files: dict[str, Path], features, mask, references, labels) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def onnx_model(f, m):
        return session.run(None, {"features": f.astype(np.float32), "mask": m.astype(np.float32)})[0]

    reference, onnx_ms = run_all(onnx_model, features, mask)
    ref_top1 = top1(reference, references, labels)
    report = {"model": name, "onnx": onnx_path.name, "clips": int(len(features)),
              "input_shape": [1, int(features.shape[1]), int(features.shape[2])],
              "onnx_bytes": onnx_path.stat().st_size, "onnx_ms": onnx_ms}
    for kind, path in files.items():
        out, ms = run_all(LiteModel(path), features, mask)
        cos = cosine(out, reference)
        entry = {"file": path.name, "bytes": path.stat().st_size, "litert_ms": ms,
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
        files = convert(onnx_path, args.out, features.shape[1], features.shape[2])
        convert_s = time.perf_counter() - start
        report = verify(name, onnx_path, files, features, mask, references, labels)
        report["convert_s"] = convert_s
        reports.append(report)
        print(json.dumps(report), flush=True)
    import onnx2tf
    import tensorflow as tf
    from ai_edge_litert import __version__ as litert_version

    summary = {"passed": all(r["passed"] for r in reports), "models": reports,
               "converter": {"onnx2tf": onnx2tf.__version__, "tensorflow": tf.__version__,
                             "ai_edge_litert": litert_version}}
    args.report.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
