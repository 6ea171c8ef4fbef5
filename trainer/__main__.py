"""SignSeek trainer CLI.

    python -m trainer train    --config configs/encoder_signs.yaml [key=value ...]
    python -m trainer evaluate --bundle models --data FILE.npz [--protocol closed|fewshot]
                               [--shots K] [--seed S] [--split test] [--labels heldout] [--out DIR] [--json]
    python -m trainer export   --checkpoint artifacts/encoder_signs/best.pt --out models
                               [--classifier fingerspelling=artifacts/fs_mlp/best.pt]
    torchrun --standalone --nproc_per_node 2 -m trainer train --config ... (DDP; gloo on CPU)

`evaluate --json` prints one JSON object as its last stdout line (top1, top5, mrr, ...).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys


def _train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    cfg = load_config(args.config, args.overrides)
    out = train(cfg)
    print(f"checkpoints in {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run_evaluation

    result = run_evaluation(
        bundle_dir=args.bundle, data=args.data, protocol=args.protocol, shots=args.shots, seed=args.seed,
        split=args.split, labels=args.labels, out_dir=args.out, with_dtw=not args.no_dtw,
        quiet=args.json, negatives=args.negatives,
    )
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_bundle

    classifiers = {}
    for spec in args.classifier or []:
        name, _, path = spec.partition("=")
        classifiers[name] = path
    command = "python -m trainer " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    export_bundle(args.checkpoint, args.out, classifiers=classifiers, references=args.references,
                  command=command, evaluate=not args.no_eval, max_refs_per_label=args.max_refs_per_label,
                  calibrate_shots=args.calibrate_shots, fixed_mix=args.fixed_mix,
                  calibration_from=args.calibration_from, cross_fit=args.cross_fit or ())
    print(f"bundle written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train an encoder or a classifier")
    p.add_argument("--config", help="YAML or JSON config file (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. epochs=5 features.hands_only=true")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a bundle on a data file")
    p.add_argument("--bundle", default="models")
    p.add_argument("--data", required=True, help="shared-layout .npz (or relative to ../shared/datasets)")
    p.add_argument("--protocol", choices=("closed", "fewshot", "openset", "enrol"), default="closed")
    p.add_argument("--negatives", help="openset: clips of signs the bundle does not know (e.g. other languages)")
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                   help="keep only these sessions of FILE (the training config's session split)")
    p.add_argument("--labels", default="all",
                   help="'all', 'heldout' (labels the bundle's encoder never trained on) or a,b,c")
    p.add_argument("--out", help="write confusion matrix + per-class report here")
    p.add_argument("--no-dtw", action="store_true", help="skip the DTW-1NN baseline")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("export", help="write the bundle (ONNX, TorchScript, int8, references, manifest, zip)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default="models")
    p.add_argument("--classifier", action="append", help="name=checkpoint of a classifier head to ship")
    p.add_argument("--references", choices=("trainval", "all", "train"), default="trainval",
                   help="which sessions of the training file become references")
    p.add_argument("--max-refs-per-label", type=int, default=0,
                   help="cap references per label (spread over sessions) to keep the bundle small; 0 = all")
    p.add_argument("--calibrate-shots", type=int, default=3,
                   help="tune the fixed-view mix and the DTW blend on k-shot episodes of the few-shot "
                        "validation labels (or seen labels without them); 0 = keep defaults")
    p.add_argument("--calibration-from", metavar="MODEL_CONFIG_JSON",
                   help="reuse another bundle's calibration (mix, DTW blend), e.g. the few-shot study's")
    p.add_argument("--fixed-mix", type=float, default=None,
                   help="weight of the fixed input view in the embedding (default: calibrated; 0 = learned only)")
    p.add_argument("--cross-fit", nargs="+", metavar="CHECKPOINT",
                   help="checkpoints of the same config trained with other val_fold values: their validation "
                        "labels are pooled with this one's when the decision rule is fitted")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out metrics in the manifest")
    p.set_defaults(func=_export)

    args = parser.parse_args(argv)
    from signseek.bundle import BundleError

    from .config import ConfigError
    from .data import DataError

    try:
        return args.func(args)
    except (ConfigError, DataError, BundleError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
