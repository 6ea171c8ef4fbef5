"""The model bundle (models/): load it verified, write its manifest, zip it, export new references.

Reading (the engine, the demo, the explorer):

    bundle = load_bundle("models")          # BundleError naming the file if anything is off
    bundle.feature_config, bundle.stats     # FeatureConfig, FeatureStats
    bundle.embeddings                       # [N, D] float32 reference embeddings
    bundle.rows                             # N dicts: index, label, category, source, session, sample_id,
                                            # sentence_id (int), sentence, video_file
    bundle.reference_features               # N arrays [L_i, F] (prepared, not normalised)
    bundle.prototype_labels, bundle.prototypes
    bundle.path("sign_encoder.onnx")        # a verified file's path (None when not in the bundle)

Writing (the trainer, after it has written the files into ``out``):

    write_reference_files(out, embeddings, rows, features)   # embeddings.npy, embeddings_map.csv,
                                                             # reference_features.npz, prototypes.npz
    write_manifest(out, data_info={...}, metrics={...}, command="python -m trainer export ...")
    zip_bundle(out)                                          # sign_encoder_bundle.zip

`export_references(src, out, embeddings, rows, features)` copies a bundle's model files and
writes a new bundle whose references are the given ones (the reference store uses it to ship
enrolled signs). The format itself is described in the team brief and docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SignSeekError
from .features import FeatureConfig, FeatureStats

FORMAT_VERSION = 1
MANIFEST = "export_manifest.json"
ZIP_NAME = "sign_encoder_bundle.zip"
CONFIG = "model_config.json"
ENCODER_ONNX = "sign_encoder.onnx"
ENCODER_INT8 = "sign_encoder.int8.onnx"
ENCODER_TS = "sign_encoder.ts"
EMBEDDINGS = "embeddings.npy"
EMBEDDINGS_MAP = "embeddings_map.csv"
REFERENCE_FEATURES = "reference_features.npz"
PROTOTYPES = "prototypes.npz"
STATS = "global_stats.npz"
REQUIRED = (CONFIG, ENCODER_ONNX, EMBEDDINGS, EMBEDDINGS_MAP, REFERENCE_FEATURES, STATS)
# The GhSL guide's reference metadata rides beside SignSeek's: sentence_id (an int, stable per
# label), sentence (the text a client shows: a sign or a phrase; defaults to the label) and
# video_file (a recorded clip of the reference under VIDEOS_DIR, "" when there is none).
MAP_COLUMNS = ("index", "label", "category", "source", "session", "sample_id", "sentence_id", "sentence", "video_file")
# Files the bundle never lists in its own manifest.
UNLISTED = frozenset({MANIFEST, ZIP_NAME})


class BundleError(SignSeekError, RuntimeError):
    """The bundle is missing a file, a file does not match its manifest, or a file is malformed."""
    code = "bundle_invalid"
    kind = "unavailable"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Classifier:
    """An optional classifier head (e.g. the hands-only fingerspelling model)."""

    name: str
    path: Path
    labels: list[str]
    feature_config: FeatureConfig
    stats: FeatureStats | None
    kind: str = "mlp"


@dataclass
class Bundle:
    directory: Path
    config: dict
    manifest: dict
    feature_config: FeatureConfig
    stats: FeatureStats
    embeddings: np.ndarray
    rows: list[dict]
    reference_features: list[np.ndarray]
    prototype_labels: list[str] = field(default_factory=list)
    prototypes: np.ndarray | None = None
    classifiers: dict[str, Classifier] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return str(self.config.get("model_name", self.directory.name))

    @property
    def labels(self) -> list[str]:
        return [r["label"] for r in self.rows]

    @property
    def categories(self) -> list[str]:
        return [r.get("category", "") for r in self.rows]

    @property
    def idle_labels(self) -> list[str]:
        return list(self.config.get("idle_labels", ["-"]))

    @property
    def model_id(self) -> str:
        """The encoder's sha256 (identifies which model made an embedding)."""
        return self.manifest["files"][ENCODER_ONNX]["sha256"]

    def path(self, name: str) -> Path | None:
        """Path of a file the manifest lists (and load_bundle verified), else None."""
        return self.directory / name if name in self.manifest.get("files", {}) else None


# ---------------------------------------------------------------------------- reading


def verify_manifest(directory: str | Path) -> dict:
    """Check every file the manifest lists (presence, size, sha256); return the manifest."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{MANIFEST} is missing in {directory}: not a SignSeek bundle (or not exported yet)")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BundleError(f"{MANIFEST} in {directory} is malformed: {exc}") from exc
    for name in REQUIRED:
        if name not in files:
            raise BundleError(f"{name} is not listed in {MANIFEST} of {directory}")
    for name, entry in files.items():
        path = directory / name
        if not path.is_file():
            raise BundleError(f"{name} is listed in {MANIFEST} but missing from {directory}")
        if "bytes" in entry and path.stat().st_size != int(entry["bytes"]):
            raise BundleError(
                f"{name} has {path.stat().st_size} bytes, the manifest says {entry['bytes']}: "
                "the file was changed or truncated; re-export the bundle"
            )
        if sha256_file(path) != entry.get("sha256"):
            raise BundleError(f"{name} does not match its sha256 in {MANIFEST}: the file was changed; re-export")
    return manifest


def _read_map(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"index", "label"} - set(reader.fieldnames or ())
        if missing:
            raise BundleError(f"{path.name} lacks the column(s) {sorted(missing)}")
        rows = [dict(row) for row in reader]
    for i, row in enumerate(rows):
        if int(row["index"]) != i:
            raise BundleError(f"{path.name}: row {i} has index {row['index']}; rows must be in index order")
    try:
        return fill_sentence_fields(rows)
    except ValueError as exc:
        raise BundleError(f"{path.name}: {exc}") from exc


def stable_sentence_id(label: str) -> int:
    """The sentence_id of a label that was given none: CRC-32 of its UTF-8 text. The same label
    gets the same id in every bundle, export, enrolment and process."""
    return zlib.crc32(str(label).encode("utf-8"))


def fill_sentence_fields(rows: Sequence[dict]) -> list[dict]:
    """Rows with the guide's columns filled in: ``sentence`` defaults to the label, ``video_file``
    to "", and ``sentence_id`` (an int) is kept where a row has one; a row without takes the id
    another row of its label has, else `stable_sentence_id(label)` (so a bundle written before
    these columns existed gets the same ids on every load). Returns new dicts."""
    out = [dict(row) for row in rows]
    ids: dict[str, int] = {}
    for i, row in enumerate(out):
        value = row.get("sentence_id")
        if value is None or str(value).strip() == "":
            continue
        try:
            row["sentence_id"] = int(str(value).strip())
        except ValueError:
            raise ValueError(f"row {i} has sentence_id {value!r}; it must be an integer") from None
        ids.setdefault(str(row["label"]), row["sentence_id"])
    for row in out:
        label = str(row["label"])
        if not isinstance(row.get("sentence_id"), int):
            row["sentence_id"] = ids.get(label, stable_sentence_id(label))
        row["sentence"] = str(row.get("sentence") or "") or label
        row["video_file"] = str(row.get("video_file") or "")
    return out


def _load_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise BundleError(f"{path.name} lacks the array(s) {missing}")
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path.name} cannot be read: {exc}") from exc


def load_bundle(directory: str | Path) -> Bundle:
    """Load a bundle, verifying every file against export_manifest.json first."""
    directory = Path(directory)
    manifest = verify_manifest(directory)
    try:
        config = json.loads((directory / CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{CONFIG} is not valid JSON: {exc}") from exc
    if int(config.get("format_version", FORMAT_VERSION)) > FORMAT_VERSION:
        raise BundleError(f"{CONFIG} has format_version {config['format_version']}; this SignSeek reads {FORMAT_VERSION}")
    if "feature_config" not in config:
        raise BundleError(f"{CONFIG} lacks feature_config")
    feature_config = FeatureConfig.from_dict(config["feature_config"])
    stats = FeatureStats.load(directory / STATS)
    if stats.mean.shape != (feature_config.feature_dim,):
        raise BundleError(
            f"{STATS} has {stats.mean.shape[0]} columns, feature_config has {feature_config.feature_dim}"
        )
    embeddings = np.load(directory / EMBEDDINGS, allow_pickle=False).astype(np.float32)
    rows = _read_map(directory / EMBEDDINGS_MAP)
    if embeddings.ndim != 2 or len(embeddings) != len(rows):
        raise BundleError(f"{EMBEDDINGS} has shape {embeddings.shape} but {EMBEDDINGS_MAP} has {len(rows)} rows")
    ref = _load_npz(directory / REFERENCE_FEATURES, ("features", "offsets"))
    offsets = ref["offsets"].astype(np.int64)
    if len(offsets) != len(rows) + 1 or offsets[-1] != len(ref["features"]):
        raise BundleError(f"{REFERENCE_FEATURES}: offsets do not match {len(rows)} references")
    features = [ref["features"][a:b].astype(np.float32) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    proto_labels, prototypes = [], None
    if PROTOTYPES in manifest["files"]:
        proto = _load_npz(directory / PROTOTYPES, ("labels", "prototypes"))
        proto_labels = [str(x) for x in proto["labels"]]
        prototypes = proto["prototypes"].astype(np.float32)
    classifiers = {}
    for name, spec in (config.get("classifiers") or {}).items():
        path = directory / spec["file"]
        if spec["file"] not in manifest["files"]:
            raise BundleError(f"classifier {name!r}: {spec['file']} is not listed in {MANIFEST}")
        stats_file = spec.get("stats_file")
        if stats_file and stats_file not in manifest["files"]:
            raise BundleError(f"classifier {name!r}: {stats_file} is not listed in {MANIFEST}")
        classifiers[name] = Classifier(
            name=name,
            path=path,
            labels=[str(x) for x in spec["labels"]],
            feature_config=FeatureConfig.from_dict(spec.get("feature_config", config["feature_config"])),
            stats=FeatureStats.load(directory / stats_file) if stats_file else None,
            kind=spec.get("kind", "mlp"),
        )
    return Bundle(
        directory, config, manifest, feature_config, stats, embeddings, rows, features,
        proto_labels, prototypes, classifiers,
    )


# ---------------------------------------------------------------------------- writing


def compute_prototypes(embeddings: np.ndarray, labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean embedding per label, re-normalised; labels in first-seen order."""
    labels = [str(x) for x in labels]
    order = list(dict.fromkeys(labels))
    index = {label: i for i, label in enumerate(order)}
    sums = np.zeros((len(order), embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, [index[x] for x in labels], embeddings)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return order, (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def write_reference_files(
    out: str | Path, embeddings: np.ndarray, rows: Sequence[dict], features: Sequence[np.ndarray]
) -> None:
    """Write embeddings.npy, embeddings_map.csv, reference_features.npz and prototypes.npz.

    ``rows``: one dict per reference with at least "label"; "category", "source", "session",
    "sample_id" default to "" ("index" is assigned here); "sentence_id", "sentence" and
    "video_file" are filled in by `fill_sentence_fields` where missing.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if not (len(embeddings) == len(rows) == len(features)):
        raise BundleError(f"{len(embeddings)} embeddings, {len(rows)} rows, {len(features)} feature sequences")
    np.save(out / EMBEDDINGS, embeddings)
    try:
        rows = fill_sentence_fields(rows)
    except ValueError as exc:
        raise BundleError(str(exc)) from exc
    with open(out / EMBEDDINGS_MAP, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MAP_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({**{c: "" for c in MAP_COLUMNS}, **row, "index": i})
    lengths = [len(f) for f in features]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    stacked = np.concatenate([np.asarray(f, dtype=np.float32) for f in features]) if features else np.zeros((0, 0))
    # float16, compressed: a quarter of the size; DTW distances move by well under 1e-3.
    np.savez_compressed(out / REFERENCE_FEATURES, features=stacked.astype(np.float16), offsets=offsets)
    labels, protos = compute_prototypes(embeddings, [r["label"] for r in rows])
    np.savez(out / PROTOTYPES, labels=np.asarray(labels, dtype=str), prototypes=protos)


def write_manifest(
    directory: str | Path,
    data_info: dict | None = None,
    metrics: dict | None = None,
    command: str = "",
    files: Sequence[str] | None = None,
) -> dict:
    """Write export_manifest.json listing sha256 and size of ``files`` (default: every file in
    ``directory`` except the manifest and the zip). Returns the manifest."""
    directory = Path(directory)
    names = sorted(files) if files is not None else sorted(
        p.name for p in directory.iterdir() if p.is_file() and p.name not in UNLISTED
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {n: {"sha256": sha256_file(directory / n), "bytes": (directory / n).stat().st_size} for n in names},
        "data": data_info or {},
        "metrics": metrics or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def zip_bundle(directory: str | Path, name: str = ZIP_NAME) -> Path:
    """Zip the manifest and every file it lists into ``directory/name``; returns the zip's path."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    target = directory / name
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file_name in [*sorted(manifest["files"]), MANIFEST]:
            zf.write(directory / file_name, arcname=file_name)
    tmp.replace(target)
    return target


def export_references(
    source: str | Path | Bundle,
    out: str | Path,
    embeddings: np.ndarray,
    rows: Sequence[dict],
    features: Sequence[np.ndarray],
    command: str = "signseek export-references",
    zip_it: bool = True,
) -> Path:
    """Write a new bundle into ``out``: ``source``'s model files, the given references.

    Model files (encoder, stats, classifiers) are copied unchanged; embeddings, map, reference
    features and prototypes are written from the arguments; model_config's "categories" is
    extended with the new labels; the manifest keeps the source's data info and metrics.
    """
    src = source if isinstance(source, Bundle) else load_bundle(source)
    out = Path(out)
    if out.resolve() == src.directory.resolve():
        raise BundleError("export_references: the output directory must differ from the source bundle")
    out.mkdir(parents=True, exist_ok=True)
    reference_files = {EMBEDDINGS, EMBEDDINGS_MAP, REFERENCE_FEATURES, PROTOTYPES, CONFIG}
    for file_name in src.manifest["files"]:
        if file_name not in reference_files:
            shutil.copy2(src.directory / file_name, out / file_name)
    write_reference_files(out, embeddings, rows, features)
    config = json.loads(json.dumps(src.config))
    categories = dict(config.get("categories") or {})
    for row in rows:
        categories.setdefault(row["label"], row.get("category", "") or "word")
    config["categories"] = categories
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    names = sorted(set(src.manifest["files"]) | reference_files)
    data_info = dict(src.manifest.get("data") or {})
    data_info["n_references"] = len(rows)
    write_manifest(out, data_info, src.manifest.get("metrics"), command, files=names)
    if zip_it:
        zip_bundle(out)
    return out
