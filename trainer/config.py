"""One training config: a dataclass, a YAML/JSON file, and `key=value` overrides (nanoGPT style).

    cfg = load_config("configs/encoder_signs.yaml", ["epochs=3", "lr=1e-3", "features.hands_only=true"])

Values on the command line are parsed as YAML scalars (`3` -> int, `1e-3` -> float, `true` -> bool,
`[a, b]` -> list); a key that the config does not have is an error, so typos cannot pass silently.
The whole config is snapshotted into the bundle (model_config.json "training").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from signseek.features import FeatureConfig


class ConfigError(ValueError):
    """A config file or a key=value override that cannot be used; the message says which."""


@dataclass
class TrainConfig:
    # what to train
    task: str = "encoder"  # "encoder" (contrastive embedding) or "classifier" (cross-entropy head)
    classifier: str = "mlp"  # classifier kind: mlp | lstm | bilstm | tcn | gru
    data: str = "traduttore-asl/signs.npz"  # relative to the shared datasets folder, or a path
    extra_ssl_data: list = field(default_factory=list)  # more files used only for the SSL term
    features: dict = field(default_factory=dict)  # FeatureConfig overrides
    # split: sessions held out (signseek.datasets.splits.split_by_mode)
    split: str = "last_session"  # last_session (each label's last sitting) | session:N (one whole session) | none
    holdout_label_fraction: float = 0.0  # class-disjoint few-shot: labels kept out of training
    holdout_seed: int = 0
    # few-shot validation: a fraction of the remaining labels also kept out of training; early
    # stopping and the export's calibration then use enrolment episodes on them (labels the
    # encoder never saw, like the held-out test labels, but not those)
    val_label_fraction: float = 0.0
    # cross-fitting: fold f (of val_folds) of signseek.datasets.splits.validation_label_folds is the
    # validation labels instead (fold 0 = the labels val_label_fraction picks); `export --cross-fit`
    # pools the folds' validation episodes when it fits the decision rule (README, rebuild commands)
    val_fold: int = 0
    val_folds: int = 1
    # model
    hidden: int = 160
    embedding_dim: int = 256
    dropout: float = 0.1
    hand_descriptor: bool = False  # add the rotation-invariant hand-shape descriptor to the input
    fixed_view: str = "features"  # HybridEncoder's fixed view at export: features | handshape
    # optimisation
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 50
    grad_clip: float = 1.0
    temperature: float = 0.1
    supcon_weight: float = 1.0  # weight of the supervised contrastive term (0 = SSL only)
    ssl_weight: float = 1.0  # weight of the two-view InfoNCE term
    label_smoothing: float = 0.05
    patience: int = 6  # early stopping: epochs without validation improvement
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit; for tests)
    # augmentation strengths (0 disables one)
    aug_mirror: float = 0.5
    aug_rotate_deg: float = 12.0
    aug_scale: float = 0.12
    aug_shear: float = 0.1
    aug_speed: float = 0.25
    aug_frame_drop: float = 0.1
    aug_hand_dropout: float = 0.1
    aug_jitter: float = 0.01
    # bookkeeping
    seed: int = 0
    out_dir: str = "artifacts/encoder_signs"
    run_name: str = ""
    log_dir: str = "runs"  # tensorboard logs go to log_dir/run_name (runs/ is gitignored)
    resume: str = ""  # checkpoint to resume from ("" = fresh start)
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision on CUDA
    num_threads: int = 0  # torch CPU threads (0 = torch default)
    progress: bool = True  # tqdm bars

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.features)

    def to_dict(self) -> dict:
        return asdict(self)


def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(values: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not key=value")
    key, text = assignment.split("=", 1)
    key = key.strip().lstrip("-")
    known = {f.name for f in fields(TrainConfig)}
    top, _, sub = key.partition(".")
    if top not in known:
        raise ConfigError(f"unknown config key {top!r}; known: {', '.join(sorted(known))}")
    value = _parse_value(text)
    if sub:
        if top != "features":
            raise ConfigError(f"only features.* takes dotted keys, got {key!r}")
        feature_keys = {f.name for f in fields(FeatureConfig)}
        if sub not in feature_keys:
            raise ConfigError(f"unknown feature key {sub!r}; known: {', '.join(sorted(feature_keys))}")
        values.setdefault("features", {})[sub] = value
    else:
        values[top] = value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    values: dict = {}
    if path:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        text = path.read_text()
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of config keys")
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(loaded) - known
        if unknown:
            raise ConfigError(f"{path}: unknown config keys {sorted(unknown)}")
        values.update(loaded)
    for assignment in overrides or []:
        apply_override(values, assignment)
    cfg = TrainConfig(**values)
    if cfg.task not in ("encoder", "classifier"):
        raise ConfigError(f"task must be 'encoder' or 'classifier', got {cfg.task!r}")
    if cfg.classifier not in ("mlp", "lstm", "bilstm", "tcn", "gru"):
        raise ConfigError(f"unknown classifier {cfg.classifier!r}")
    if cfg.fixed_view not in ("features", "handshape"):
        raise ConfigError(f"fixed_view must be 'features' or 'handshape', got {cfg.fixed_view!r}")
    if not 0 <= cfg.val_fold < max(1, cfg.val_folds):
        raise ConfigError(f"val_fold must be in 0..val_folds-1 ({cfg.val_folds} folds), got {cfg.val_fold}")
    if cfg.fixed_view == "handshape" and not cfg.hand_descriptor:
        raise ConfigError("fixed_view=handshape needs hand_descriptor=true")
    cfg.feature_config()  # validates the feature overrides
    return cfg
