"""Build an evaluation-only set of landmark clips recorded by people outside the training data.

Source: public GitHub repositories that committed MediaPipe Holistic keypoints in the tutorial
layout ``MP_Data/<label>/<sequence>/<frame>.npy``, listed in ``scripts/external_eval_repos.txt``
(one ``owner/name commit root layout [lang=...] [rename=old:new]`` a line). The repositories are
read from local git mirrors (``<mirror>/<owner>+<name>/repo``, bare git directories brought in
beforehand with the session's fetch tool); nothing is downloaded here, and nothing of theirs is
committed: the clips stay in ``artifacts/external/`` (gitignored) and are used only to measure.

Each repository is taken as one signer (``signer`` = 1000 + its position in the list, so it never
collides with the training data's sessions). Each MP_Data folder goes through the project's
importer (``signseek.datasets.mpdata.import_mpdata``: a block of zeros = not detected = NaN).
Dropped and counted: sequences with unreadable frames (pickled, truncated, absent from the
mirror) or mixed frame sizes, clips with no hand in any frame, clips identical to (or with most
hand frames copied from) a clip already taken (repositories copy each other's data), and clips
whose hand frames equal the training data's (``../shared/datasets/traduttore-asl/signs.npz``):
those would not be other people. A repository whose frames have a size
``signseek.landmarks.layouts`` does not know (63, 1704, 2172, ...) is skipped and counted. The
468 face points are not stored unless ``--keep-face`` (no model uses them; faces are personal).

    .venv/bin/python scripts/build_external_eval.py                    # build the set
    .venv/bin/python scripts/build_external_eval.py --measure models   # + recognise every clip
    .venv/bin/python scripts/build_external_eval.py --no-build --measure models   # measure again

Writes ``artifacts/external/mpdata_external.npz`` (a SignDataset: label normalised, signer,
source = repo, extra columns ``raw_label``, ``sequence_name``, ``language``, ``layout``,
``commit``, ``in_vocab``, ``idle_like``), ``artifacts/external/summary.json`` (per repository:
layout, labels and counts, what was dropped and why, license file, sign language guess), with
``--measure`` ``artifacts/external/measure.json``, and ``artifacts/external/cache/`` (each
repository's import, so that a rebuild after editing the list takes minutes, not an hour).
Exit status 1 when a listed repository has no mirror (they are named on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signseek.datasets.container import SignDataset  # noqa: E402
from signseek.datasets.errors import DatasetError  # noqa: E402
from signseek.datasets.mpdata import import_mpdata  # noqa: E402
from signseek.landmarks.layouts import LAYOUT_BY_SIZE  # noqa: E402
from signseek.landmarks.schema import FACE, LEFT_HAND, RIGHT_HAND, mirror_points  # noqa: E402

SIGNER_BASE = 1000
FACE_INDEX = np.arange(FACE.start, FACE.stop)  # not stored unless --keep-face: size, and faces are personal
THANK_YOU = {"thanks", "thank you", "thankyou", "thank-you", "thank_you", "thanku"}
# Folder names that mean "no sign" (background, idle, nothing detected), not a sign.
IDLE_LIKE = re.compile(
    r"^([-_.\s]*|blank|none|nothing|idle|background|neutral|undefined|rest|no ?sign|"
    r"no ?hands?( detected)?|predicting\.*)$"
)
# Sign language named in a README: (pattern, name); abbreviations match case-sensitively, names
# in any case. First match in this order wins.
LANGUAGES = [
    (r"\bBISINDO\b|(?i:bisindo|indonesian sign|bahasa isyarat)", "BISINDO"),
    (r"\bArSL\b|(?i:arabic sign)", "ArSL"),
    (r"\bLIBRAS\b|(?i:libras|brazilian sign|l[ií]ngua brasileira)", "LIBRAS"),
    (r"\bISL\b|(?i:indian sign)", "ISL"),
    (r"\bPSL\b|(?i:pakistan)", "PSL"),
    (r"(?i:bhutan)", "Bhutanese SL"),
    (r"\bBSL\b|(?i:british sign)", "BSL"),
    (r"(?i:morocc)", "Moroccan SL"),
    (r"\bBIM\b|\bMSL\b|(?i:malaysian sign)", "MSL (Malaysian)"),
    (r"\bFSL\b|(?i:filipino sign)", "FSL"),
    (r"\bLSC\b|(?i:colombian sign|se[ñn]as colombiana)", "LSC"),
    (r"\bLSM\b|(?i:mexican sign|se[ñn]as mexicana)", "LSM"),
    (r"\bVSL\b|(?i:vietnamese sign)", "VSL"),
    (r"\bKSL\b|(?i:korean sign)", "KSL"),
    (r"(?i:thai sign)", "ThSL"),
    (r"\bT[İI]D\b|(?i:turkish sign)", "TID"),
    (r"\bLSF\b|(?i:french sign)", "LSF"),
    (r"(?i:rwanda|kinyarwanda)", "RSL"),
    (r"\bASL\b|(?i:american sign)", "ASL"),
]


# ---------------------------------------------------------------------------------- repo list


def parse_repo_list(path: Path) -> list[dict]:
    """``owner/name commit root layout [lang=X] [rename=old:new,...]`` lines; '#' starts a comment.

    ``root`` is the MP_Data folder inside the repository (``%20`` for a space; several joined by
    commas are read as one signer's); ``layout`` is the one found when the list was made (checked
    again on build).
    """
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 4:
            raise SystemExit(f"{path}:{number}: expected 'owner/name commit root layout [...]', got {line!r}")
        repo, commit, root, layout, *options = fields
        entry = {"repo": repo, "commit": commit, "roots": [r.replace("%20", " ") for r in root.split(",")],
                 "layout": layout,
                 "lang": None, "rename": {}, "line": number}
        for option in options:
            key, _, value = option.partition("=")
            if key == "lang":
                entry["lang"] = value.replace("_", " ")
            elif key == "rename":
                for pair in value.split(","):
                    old, _, new = pair.partition(":")
                    entry["rename"][old.replace("_", " ")] = new.replace("_", " ")
            else:
                raise SystemExit(f"{path}:{number}: unknown option {option!r}")
        entries.append(entry)
    return entries


# ---------------------------------------------------------------------------------- git mirror


def git(repo_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, check=True).stdout


def mirror_dir(mirror: Path, repo: str) -> Path:
    return mirror / repo.replace("/", "+") / "repo"


def has_commit(repo_dir: Path, commit: str) -> bool:
    try:
        git(repo_dir, "cat-file", "-e", f"{commit}^{{commit}}")
        return True
    except subprocess.CalledProcessError:
        return False


def extract(repo_dir: Path, commit: str, root: str, into: Path) -> Path:
    """The ``.npy`` files under ``root`` at ``commit`` as real files under ``into`` (no checkout;
    blobs the mirror lacks, e.g. files of 4 MiB and more, are left out)."""
    listing = git(repo_dir, "ls-tree", "-r", "-z", commit, "--", root).decode().split("\0")
    wanted = []
    for line in filter(None, listing):
        meta, path = line.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind == "blob" and path.endswith(".npy"):
            wanted.append((blob, path))
    with subprocess.Popen(["git", "-C", str(repo_dir), "cat-file", "--batch"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as proc:
        for blob, path in wanted:
            proc.stdin.write(blob.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":  # "<sha> missing"
                continue
            data = proc.stdout.read(int(header[2]))
            proc.stdout.read(1)  # the newline after the content
            target = into / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        proc.stdin.close()
    return into / root


def read_readme(repo_dir: Path, commit: str, names: list[str]) -> str:
    text = []
    for name in names:
        if "/" not in name and re.match(r"readme", name, re.I):
            text.append(git(repo_dir, "show", f"{commit}:{name}").decode("utf-8", "replace"))
    return "\n".join(text)


def guess_language(text: str) -> tuple[str, str]:
    """(language, the phrase that named it) from README text; ("unknown", "") when none."""
    for pattern, name in LANGUAGES:
        m = re.search(pattern, text)
        if m:
            start = max(m.start() - 40, 0)
            return name, " ".join(text[start : m.end() + 40].split())
    return "unknown", ""


# ---------------------------------------------------------------------------------- labels


def normalise_label(raw: str) -> str:
    label = " ".join(raw.strip().lower().split())
    return "thank-you" if label in THANK_YOU else label


def load_vocabulary(models: Path) -> tuple[set[str], set[str]]:
    config = json.loads((models / "model_config.json").read_text())
    idle = set(config.get("idle_labels", []))
    return set(config["categories"]) - idle, idle


# ---------------------------------------------------------------------------------- checks


def npy_values(path: Path) -> int | None:
    """Values in a .npy file, from its header alone; None when it is not a plain numeric array
    (pickled objects, a truncated or corrupt file)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = read_header(f)
            data_start = f.tell()
    except (OSError, ValueError, EOFError):
        return None
    if dtype.hasobject or not np.issubdtype(dtype, np.number):
        return None
    n = int(np.prod(shape))
    if path.stat().st_size - data_start != n * dtype.itemsize:
        return None
    return n


def clean_tree(tree: Path) -> tuple[Counter, Counter]:
    """Remove from the extracted tree every sequence the importer could not take; return
    (frame sizes of the sequences kept, reasons of those removed)."""
    sizes, dropped = Counter(), Counter()
    if not tree.is_dir():
        return sizes, dropped
    for label_dir in sorted(p for p in tree.iterdir() if p.is_dir()):
        for seq in sorted(label_dir.iterdir()):
            if seq.is_file():  # a sequence stored as one [T, V] file: the importer reads it too
                values = npy_values(seq)
                if values is None:
                    dropped["unreadable .npy (pickled, corrupt or missing)"] += 1
                    seq.unlink()
                else:
                    arr = np.load(seq, mmap_mode="r", allow_pickle=False)
                    sizes[arr.shape[-1]] += 1
                continue
            files = list(seq.glob("*.npy"))
            reason, frame_sizes = None, set()
            if not files:
                reason = "sequence folder without frames"
            for f in files:
                values = npy_values(f)
                if values is None:
                    reason = "unreadable .npy (pickled, corrupt or missing)"
                    break
                frame_sizes.add(values)
            if reason is None and len(frame_sizes) > 1:
                reason = "frames of differing sizes in one sequence"
            if reason:
                dropped[reason] += 1
                shutil.rmtree(seq)
            else:
                sizes[frame_sizes.pop()] += 1
        if not any(label_dir.iterdir()):
            label_dir.rmdir()
    return sizes, dropped


def drop_other_sizes(tree: Path, keep: int, dropped: Counter) -> None:
    """Remove sequences whose frame size is not ``keep`` (a few stray ones in a repository)."""
    for label_dir in [p for p in tree.iterdir() if p.is_dir()]:
        for seq in list(label_dir.iterdir()):
            if seq.is_file():
                values = np.load(seq, mmap_mode="r", allow_pickle=False).shape[-1]
            else:
                values = npy_values(next(seq.glob("*.npy")))
            if values != keep:
                dropped[f"frame size differs from the repository's ({keep})"] += 1
                shutil.rmtree(seq) if seq.is_dir() else seq.unlink()
        if not any(label_dir.iterdir()):
            label_dir.rmdir()


def hands(points: np.ndarray) -> np.ndarray:
    """[T, 42, 3] left then right hand."""
    return np.concatenate([points[:, LEFT_HAND], points[:, RIGHT_HAND]], axis=1)


def clip_key(points: np.ndarray) -> str:
    """Content hash of a clip's hands (float32), for exact duplicates across repositories."""
    return hashlib.sha1(np.nan_to_num(hands(points).astype(np.float32), nan=0.0).tobytes()).hexdigest()


def hand_frame_keys(points: np.ndarray) -> list[bytes]:
    """One hash per frame holding a hand (the 42 hand points at float32), for copies of frames."""
    h = hands(points).astype(np.float32)
    present = np.isfinite(h).any(axis=(1, 2))
    h = np.nan_to_num(h, nan=0.0)
    return [hashlib.sha1(h[t].tobytes()).digest() for t in np.flatnonzero(present)]


def training_frame_keys(path: Path) -> set[bytes]:
    """Hand-frame hashes of the training data (shared 258-value layout: hands are the last 126)."""
    if not path.is_file():
        return set()
    with np.load(path, allow_pickle=False) as data:
        flat = data["landmarks"].astype(np.float32)
    flat = flat.reshape(-1, flat.shape[-1])[:, -126:].reshape(-1, 2, 21, 3)
    keys = set()
    for frame in flat:
        if np.any(frame != 0):
            # the canonical form of a frame: a hand block of zeros is "not detected" (NaN -> 0)
            keys.add(hashlib.sha1(frame.reshape(42, 3).tobytes()).digest())
    return keys


def outside_image_share(ds: SignDataset) -> float:
    """Share of detected hand x, y values outside [-0.05, 1.05]: ~0 for MediaPipe's image-normalised
    coordinates (a hand is seen inside the image); large when a repository stored other ones."""
    cols = np.flatnonzero(ds.landmark_index >= LEFT_HAND.start)
    xy = ds.frames[:, cols, :2]
    xy = xy[np.isfinite(xy)]
    return float(((xy < -0.05) | (xy > 1.05)).mean()) if xy.size else 0.0


def motion_stats(points: np.ndarray) -> dict:
    """Hand presence ratio and wrist travel (in shoulder widths when the shoulders are there)."""
    h = hands(points)
    present = np.isfinite(h).any(axis=(1, 2))
    wrists = np.stack([points[:, LEFT_HAND][:, 0, :2], points[:, RIGHT_HAND][:, 0, :2]], axis=1)  # [T, 2, 2]
    shoulders = points[:, [11, 12], :2]
    width = np.nanmedian(np.linalg.norm(shoulders[:, 0] - shoulders[:, 1], axis=1)) if np.isfinite(shoulders).any() else np.nan
    scale = width if np.isfinite(width) and width > 1e-3 else 0.25
    travel = 0.0
    for side in range(2):
        w = wrists[:, side]
        ok = np.isfinite(w).all(axis=1)
        if ok.sum() >= 2:
            travel = max(travel, float(np.linalg.norm(np.diff(w[ok], axis=0), axis=1).sum() / scale))
    spread = 0.0
    for side in range(2):
        w = wrists[:, side]
        ok = np.isfinite(w).all(axis=1)
        if ok.sum() >= 2:
            spread = max(spread, float(np.linalg.norm(w[ok].std(axis=0)) / scale))
    return {"hand_ratio": float(present.mean()), "wrist_travel": travel, "wrist_spread": spread}


# ---------------------------------------------------------------------------------- build


def sampled_frame_sizes(repo_dir: Path, commit: str, roots: list[str], per_root: int = 8) -> Counter:
    """Frame sizes of a few .npy files spread over ``roots`` (from their headers), to skip a
    repository of an unknown layout without extracting it."""
    sizes: Counter = Counter()
    for root in roots:
        depth = root.count("/") + 4  # root/label/sequence/frame.npy: one flat frame a file
        listing = [p for p in git(repo_dir, "ls-tree", "-r", "-z", "--name-only", commit, "--", root).decode().split("\0")
                   if p.endswith(".npy") and p.count("/") + 1 == depth]
        for path in listing[:: max(len(listing) // per_root, 1)][:per_root]:
            try:
                data = git(repo_dir, "show", f"{commit}:{path}")
            except subprocess.CalledProcessError:
                continue
            with tempfile.NamedTemporaryFile(suffix=".npy") as f:
                f.write(data)
                f.flush()
                values = npy_values(Path(f.name))
            if values is not None:
                sizes[values] += 1
    return sizes


def import_repo(repo_dir: Path, commit: str, roots: list[str], info: dict) -> tuple[SignDataset | None, Counter]:
    """The MP_Data folders ``roots`` of one commit through the project's importer, as one dataset
    (ids ``root/label/sequence``); None with ``info["skipped"]`` set when nothing can be read."""
    dropped: Counter = Counter()
    parts = []
    sample = sampled_frame_sizes(repo_dir, commit, roots)
    if sample and not any(size in LAYOUT_BY_SIZE for size in sample):
        size = sample.most_common(1)[0][0]
        info["frame_values"] = int(size)
        info["skipped"] = f"frame size {size} is not a layout signseek knows ({sorted(LAYOUT_BY_SIZE)})"
        return None, dropped
    with tempfile.TemporaryDirectory(prefix="mpdata-") as tmp:
        trees = {}
        sizes: Counter = Counter()
        for k, root in enumerate(roots):
            tree = extract(repo_dir, commit, root, Path(tmp) / str(k))
            root_sizes, root_dropped = clean_tree(tree)
            sizes.update(root_sizes)
            dropped.update(root_dropped)
            trees[root] = tree
        if not sizes:
            info["skipped"] = "no readable sequences"
            return None, dropped
        size = sizes.most_common(1)[0][0]
        info["frame_values"] = int(size)
        if size not in LAYOUT_BY_SIZE:
            info["skipped"] = f"frame size {size} is not a layout signseek knows ({sorted(LAYOUT_BY_SIZE)})"
            info["sequences_skipped"] = int(sum(sizes.values()))
            return None, dropped
        info["layout"] = LAYOUT_BY_SIZE[size]
        for root, tree in trees.items():
            if len(sizes) > 1:
                drop_other_sizes(tree, size, dropped)
            if tree.is_dir() and any(tree.iterdir()):
                ds = import_mpdata(tree, source=info["repo"])
                ds.ids = np.asarray([f"{root}/{i}" for i in ds.ids])
                parts.append(ds)
    if not parts:
        info["skipped"] = "no readable sequences"
        return None, dropped
    return (parts[0] if len(parts) == 1 else SignDataset.concatenate(parts)), dropped


def without_face(ds: SignDataset) -> SignDataset:
    """The same clips without the 468 face points."""
    stored = ~np.isin(ds.landmark_index, FACE_INDEX)
    return SignDataset(ds.frames[:, stored], ds.offsets, ds.landmark_index[stored], ds.labels, ds.signers.tolist(),
                       ds.sources, ds.fps, ds.ids, ds.visibility, ds.extra)


CACHED_INFO = ("frame_values", "layout", "skipped", "sequences_skipped")


def cached_import(repo_dir: Path, commit: str, roots: list[str], info: dict, cache: Path | None,
                  keep_face: bool) -> tuple[SignDataset | None, Counter]:
    """`import_repo` (face points removed unless ``keep_face``), remembered under ``cache``: the
    import is most of the build's time, and a repository at a commit does not change."""
    key = hashlib.sha1(f"v1|{commit}|{'|'.join(roots)}|{keep_face}".encode()).hexdigest()[:16]
    stem = f"{info['repo'].replace('/', '+')}-{key}"
    if cache is not None and (cache / f"{stem}.json").is_file():
        saved = json.loads((cache / f"{stem}.json").read_text())
        info.update(saved["info"])
        ds = None if "skipped" in saved["info"] else SignDataset.load(cache / f"{stem}.npz")
        return ds, Counter(saved["dropped"])
    ds, dropped = import_repo(repo_dir, commit, roots, info)
    if ds is not None and not keep_face:
        ds = without_face(ds)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        if ds is not None:
            ds.save(cache / f"{stem}.npz")
        saved = {"info": {k: info[k] for k in CACHED_INFO if k in info}, "dropped": dict(dropped)}
        (cache / f"{stem}.json").write_text(json.dumps(saved))
    return ds, dropped


def build(entries: list[dict], mirror: Path, training: Path, models: Path,
          keep_face: bool = False, cache: Path | None = None) -> tuple[SignDataset, dict]:
    vocabulary, idle_labels = load_vocabulary(models)
    train_keys = training_frame_keys(training)
    if train_keys:
        print(f"training hand frames to check against: {len(train_keys)} ({training})")
    else:
        print(f"warning: no training data at {training}: clips copied from it cannot be found", file=sys.stderr)
    seen_clips: dict[str, str] = {}  # clip hash -> repo that kept it
    seen_frames: dict[bytes, str] = {}  # hand-frame hash -> repo that kept it
    parts, repos, missing = [], [], []
    for number, entry in enumerate(entries):
        repo, commit = entry["repo"], entry["commit"]
        info = {"repo": repo, "commit": commit, "roots": entry["roots"], "listed_layout": entry["layout"],
                "signer": SIGNER_BASE + number}
        repo_dir = mirror_dir(mirror, repo)
        if not repo_dir.is_dir() or not has_commit(repo_dir, commit):
            why = "no mirror" if not repo_dir.is_dir() else f"mirror lacks commit {commit[:12]}"
            missing.append(f"{repo} ({why} at {repo_dir})")
            continue
        names = git(repo_dir, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
        info["license_file"] = next((n for n in names if "/" not in n and re.match(r"(licen[cs]e|copying)", n, re.I)), None)
        readme_language, phrase = guess_language(read_readme(repo_dir, commit, names))
        info["language_readme"] = readme_language
        info["language_readme_phrase"] = phrase
        info["language"] = entry["lang"] or readme_language
        ds, dropped = cached_import(repo_dir, commit, entry["roots"], info, cache, keep_face)
        if ds is None:
            info["dropped"] = dict(dropped)
            repos.append(info)
            print(f"  {repo}: skipped: {info['skipped']}")
            continue
        outside = outside_image_share(ds)
        if outside > 0.1:
            info["skipped"] = (f"coordinates are not MediaPipe's image-normalised ones: {outside:.0%} of hand x, y "
                               "outside [-0.05, 1.05] (made relative to a point?)")
            info["sequences_skipped"] = len(ds)
            repos.append(info)
            print(f"  {repo}: skipped: {info['skipped']}")
            continue
        layout = info["layout"]
        if layout != entry["layout"]:
            print(f"  note: {repo} listed as {entry['layout']}, found {layout}")
        raw_labels = ds.labels.tolist()
        labels = []
        for raw in raw_labels:
            label = normalise_label(raw)
            labels.append(entry["rename"].get(label, label))
        keep, kept_stats = [], []
        for i in range(len(ds)):
            points = ds.points(i)
            if not np.isfinite(points).any():
                dropped["all frames empty (zeros)"] += 1
                continue
            if not np.isfinite(hands(points)).any():
                dropped["no hand in any frame"] += 1
                continue
            if np.isinf(points).any():
                dropped["non-finite values"] += 1
                continue
            key = clip_key(points)
            if key in seen_clips:
                same = seen_clips[key] == repo
                dropped["identical to another clip of this repository" if same else f"identical to a clip of {seen_clips[key]}"] += 1
                continue
            frame_keys = hand_frame_keys(points)
            if train_keys and sum(k in train_keys for k in frame_keys) * 2 >= len(frame_keys):
                dropped["hand frames equal the training data's"] += 1
                continue
            copied = Counter(seen_frames[k] for k in frame_keys if k in seen_frames and seen_frames[k] != repo)
            if copied and sum(copied.values()) * 2 >= len(frame_keys):
                dropped[f"most hand frames copied from {copied.most_common(1)[0][0]}"] += 1
                continue
            seen_clips[key] = repo
            for k in frame_keys:
                seen_frames.setdefault(k, repo)
            keep.append(i)
            kept_stats.append((labels[i], motion_stats(points)))
        info["dropped"] = dict(dropped)
        info["clips"] = len(keep)
        if not keep:
            info["skipped"] = "no clips left after the checks"
            repos.append(info)
            print(f"  {repo}: skipped: {info['skipped']}: {dict(dropped)}")
            continue
        sub = ds.subset(keep)
        n = len(sub)
        kept_labels = [labels[i] for i in keep]
        info["labels"] = dict(sorted(Counter(kept_labels).items()))
        info["raw_labels"] = {normalise_label(r): r for r in sorted(set(raw_labels))}
        sanity = {}
        for label in ("hello", "thank-you"):
            stats = [s for lab, s in kept_stats if lab == label]
            if stats:
                sanity[label] = {k: round(float(np.median([s[k] for s in stats])), 3) for k in stats[0]}
        info["sanity_median"] = sanity
        extra = {
            "raw_label": [raw_labels[i] for i in keep],
            "sequence_name": [sub.ids[j] for j in range(n)],
            "language": [info["language"]] * n,
            "layout": [layout] * n,
            "commit": [commit] * n,
            "in_vocab": np.asarray([lab in vocabulary for lab in kept_labels]),
            "idle_like": np.asarray([lab in idle_labels or bool(IDLE_LIKE.match(lab)) for lab in kept_labels]),
        }
        parts.append(SignDataset(
            sub.frames, sub.offsets, sub.landmark_index, kept_labels, [info["signer"]] * n, repo,
            None, [f"{repo}:{sub.ids[j]}" for j in range(n)], sub.visibility, extra,
        ))
        info["clip_motion"] = [s for _, s in kept_stats]  # per clip, dropped from summary below
        repos.append(info)
        print(f"  {repo}: {layout}, {n} clips, {len(info['labels'])} labels, lang {info['language']}"
              + (f", dropped {dict(dropped)}" if dropped else ""))
    if missing:
        print(f"\nMISSING {len(missing)} repositories (fetch them into {mirror} first):", file=sys.stderr)
        for m in missing:
            print(f"  {m}", file=sys.stderr)
    if not parts:
        raise SystemExit("no clips: nothing to write")
    dataset = SignDataset.concatenate(parts)
    summary = summarise(dataset, repos, missing, vocabulary)
    return dataset, summary


def summarise(dataset: SignDataset, repos: list[dict], missing: list[str], vocabulary: set[str]) -> dict:
    per_label: dict[str, dict] = defaultdict(lambda: {"clips": 0, "signers": set(), "languages": Counter()})
    for label, signer, language in zip(dataset.labels, dataset.signers, dataset.extra["language"], strict=True):
        row = per_label[label]
        row["clips"] += 1
        row["signers"].add(int(signer))
        row["languages"][str(language)] += 1
    dropped = Counter()
    for info in repos:
        for reason, count in info.get("dropped", {}).items():
            dropped[re.sub(r" (of|from) \S+/\S+$", " (another repository)", reason)] += count
    sanity = {}
    # per-clip stats, in the dataset's order (repositories in list order, kept clips in order)
    motion = [s for info in repos for s in info.pop("clip_motion", [])]
    for label in ("hello", "thank-you"):
        idx = np.flatnonzero(dataset.labels == label)
        if len(idx):
            ratio = np.array([motion[i]["hand_ratio"] for i in idx])
            travel = np.array([motion[i]["wrist_travel"] for i in idx])
            spread = np.array([motion[i]["wrist_spread"] for i in idx])
            sanity[label] = {
                "clips": int(len(idx)),
                "hand_ratio_p5_p50_p95": np.round(np.percentile(ratio, [5, 50, 95]), 3).tolist(),
                "wrist_travel_shoulder_widths_p5_p50_p95": np.round(np.percentile(travel, [5, 50, 95]), 3).tolist(),
                "wrist_spread_shoulder_widths_p5_p50_p95": np.round(np.percentile(spread, [5, 50, 95]), 3).tolist(),
                "clips_hand_in_under_half_the_frames": int((ratio < 0.5).sum()),
                "clips_wrist_spread_under_0.05": int((spread < 0.05).sum()),
            }
    used = [r for r in repos if "skipped" not in r]
    return {
        "clips": len(dataset),
        "repositories_used": len(used),
        "repositories_skipped": {r["repo"]: r["skipped"] for r in repos if "skipped" in r},
        "repositories_missing": missing,
        "signers": len(set(dataset.signers.tolist())),
        "layouts": dict(Counter(r["layout"] for r in used)),
        "languages": dict(Counter(r["language"] for r in used)),
        "dropped": dict(dropped),
        "in_vocabulary_labels": sorted(set(dataset.labels.tolist()) & vocabulary),
        "per_label": {
            label: {"clips": row["clips"], "signers": len(row["signers"]), "languages": dict(row["languages"])}
            for label, row in sorted(per_label.items(), key=lambda kv: (-kv[1]["clips"], kv[0]))
        },
        "sanity_hello_thank_you": sanity,
        "repositories": repos,
    }


# ---------------------------------------------------------------------------------- measure


def percentiles(values) -> list[float] | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return np.round(np.percentile(values, [5, 25, 50, 75, 95]), 3).tolist() if values else None


def measure(dataset: SignDataset, models: Path) -> dict:
    """Recognise every clip with the bundle; accept rate, top-1, similarity and margin by group."""
    from signseek import SignPredictor

    engine = SignPredictor(str(models)).engine
    results = engine.recognize_many([dataset.points(i) for i in range(len(dataset))], top_k=5)
    # The same clips as a mirror shows them (x flipped, left and right swapped): whether a
    # handedness or camera-flip convention differs between these recordings and the training data.
    vocab_idx = [i for i in range(len(dataset)) if dataset.extra["in_vocab"][i] and not dataset.extra["idle_like"][i]]
    mirrored = dict(zip(vocab_idx, engine.recognize_many([mirror_points(dataset.points(i)) for i in vocab_idx], top_k=5),
                        strict=True))
    rows = []
    for i, r in enumerate(results):
        c = r.candidates
        top = c[0] if c else None
        sim = top.raw_similarity if top is not None else None
        margin = (c[0].raw_similarity - c[1].raw_similarity) if len(c) > 1 and c[1].raw_similarity is not None and sim is not None else None
        rows.append({
            "i": i, "signer": int(dataset.signers[i]), "label": str(dataset.labels[i]), "language": str(dataset.extra["language"][i]),
            "in_vocab": bool(dataset.extra["in_vocab"][i]), "idle_like": bool(dataset.extra["idle_like"][i]),
            "accepted": bool(r.accepted), "reason": r.rejection_reason, "top1": top.label if top else None,
            "answer": r.label, "raw_similarity": sim, "margin": margin, "engine_margin": r.margin,
            "confidence": r.confidence, "p_known": getattr(r, "p_known", None),
            "unknown_score": getattr(r, "unknown_score", None), "model": r.model,
            "mirrored_top1": (mirrored[i].top.label if mirrored[i].top else None) if i in mirrored else None,
            "mirrored_accepted": bool(mirrored[i].accepted) if i in mirrored else None,
        })

    def group(name, members):
        if not members:
            return None
        n = len(members)
        out = {
            "clips": n,
            "signers": None,
            "accepted": round(sum(m["accepted"] for m in members) / n, 3),
            "top1_correct": round(sum(m["top1"] == m["label"] for m in members) / n, 3),
            "accepted_correct": round(sum(m["accepted"] and m["answer"] == m["label"] for m in members) / n, 3),
            "accepted_wrong": round(sum(m["accepted"] and m["answer"] != m["label"] for m in members) / n, 3),
            "top1_labels": dict(Counter(m["top1"] for m in members).most_common(8)),
            "reasons": dict(Counter(m["reason"] for m in members).most_common()),
            "answered_by": dict(Counter(m["model"] for m in members)),
            "raw_similarity_p5_25_50_75_95": percentiles(m["raw_similarity"] for m in members),
            "margin_p5_25_50_75_95": percentiles(m["margin"] for m in members),
            "confidence_p5_25_50_75_95": percentiles(m["confidence"] for m in members),
            "p_known_p5_25_50_75_95": percentiles(m["p_known"] for m in members),
        }
        if all(m["mirrored_top1"] is not None for m in members):
            out["mirrored_top1_correct"] = round(sum(m["mirrored_top1"] == m["label"] for m in members) / n, 3)
            out["mirrored_accepted_correct"] = round(
                sum(m["mirrored_accepted"] and m["mirrored_top1"] == m["label"] for m in members) / n, 3)
        out["signers"] = len({m["signer"] for m in members})
        return {"name": name, **out}

    other = lambda m: m["language"] not in {"ASL", "unknown"}  # noqa: E731
    groups = {
        "in_vocab_asl_or_unknown": [m for m in rows if m["in_vocab"] and not m["idle_like"] and not other(m)],
        "in_vocab_other_language": [m for m in rows if m["in_vocab"] and not m["idle_like"] and other(m)],
        "not_in_vocab": [m for m in rows if not m["in_vocab"] and not m["idle_like"]],
        "not_in_vocab_asl_or_unknown": [m for m in rows if not m["in_vocab"] and not m["idle_like"] and not other(m)],
        "not_in_vocab_other_language": [m for m in rows if not m["in_vocab"] and not m["idle_like"] and other(m)],
        "label:iloveyou (not in vocab)": [m for m in rows if m["label"].replace(" ", "") == "iloveyou"],
        "idle_like": [m for m in rows if m["idle_like"]],
    }
    for label in ("hello", "thank-you", "no", "please", "water"):
        groups[f"label:{label} (asl/unknown)"] = [m for m in rows if m["label"] == label and not other(m)]
    groups["letters (asl/unknown)"] = [m for m in rows if len(m["label"]) == 1 and m["in_vocab"] and not other(m)]
    out = {}
    for name, members in groups.items():
        g = group(name, members)
        if g:
            out[name] = g
    per_repo = defaultdict(lambda: {"clips": 0, "accepted": 0, "top1_correct": 0, "accepted_correct": 0})
    sources = dataset.sources
    for m in rows:
        if m["in_vocab"] and not m["idle_like"]:
            row = per_repo[f"{sources[m['i']]} {m['label']}"]
            row["clips"] += 1
            row["accepted"] += m["accepted"]
            row["top1_correct"] += m["top1"] == m["label"]
            row["accepted_correct"] += m["accepted"] and m["answer"] == m["label"]
    return {"bundle": str(models), "code": code_state(models), "groups": out,
            "in_vocab_per_repo_label": dict(sorted(per_repo.items())), "clips": rows}


def code_state(models: Path) -> dict:
    """Which code and bundle measured: HEAD, and whether the decision code or bundle had
    uncommitted edits (the figures then describe the working tree, not HEAD)."""
    def run(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()
    paths = ["signseek/engine", "signseek/ranker.py", "signseek/features.py", "signseek/settings.py", str(models)]
    manifest = Path(models) / "export_manifest.json"
    return {
        "head": run("rev-parse", "HEAD"),
        "uncommitted": run("status", "--porcelain", "--", *paths).splitlines(),
        "bundle_manifest_sha1": hashlib.sha1(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
    }


# ---------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repos", type=Path, default=ROOT / "scripts" / "external_eval_repos.txt")
    p.add_argument("--mirror", type=Path, default=Path("/work/.mirror"), help="root of the local git mirrors")
    p.add_argument("--out", type=Path, default=ROOT / "artifacts" / "external")
    p.add_argument("--training", type=Path, default=ROOT.parent / "shared" / "datasets" / "traduttore-asl" / "signs.npz",
                   help="the training data, to drop clips that are copies of it")
    p.add_argument("--models", type=Path, default=ROOT / "models", help="bundle whose vocabulary marks in_vocab")
    p.add_argument("--keep-face", action="store_true",
                   help="store the 468 face points too (by default: pose and hands, all the models use)")
    p.add_argument("--no-cache", action="store_true",
                   help="import every repository again (by default OUT/cache keeps each repository's import)")
    p.add_argument("--measure", type=Path, default=None, metavar="BUNDLE",
                   help="also recognise every clip with this bundle and write measure.json")
    p.add_argument("--no-build", action="store_true",
                   help="with --measure: measure the set already in --out instead of building it again")
    args = p.parse_args(argv)
    missing = []
    if args.no_build:
        if args.measure is None:
            raise SystemExit("--no-build only makes sense with --measure BUNDLE")
        dataset = SignDataset.load(args.out / "mpdata_external.npz")
    else:
        entries = parse_repo_list(args.repos)
        print(f"{len(entries)} repositories listed in {args.repos}")
        try:
            cache = None if args.no_cache else args.out / "cache"
            dataset, summary = build(entries, args.mirror, args.training, args.models, args.keep_face, cache)
        except DatasetError as exc:
            raise SystemExit(f"error: {exc}") from None
        args.out.mkdir(parents=True, exist_ok=True)
        path = dataset.save(args.out / "mpdata_external.npz")
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        missing = summary["repositories_missing"]
        print(f"\nwrote {path}: {dataset}")
        print(f"  {summary['repositories_used']} repositories used, {len(summary['repositories_skipped'])} skipped, "
              f"{len(missing)} missing; dropped: {summary['dropped']}")
    if args.measure is not None:
        result = measure(dataset, args.measure)
        (args.out / "measure.json").write_text(json.dumps(result, indent=1, default=str))
        for name, g in result["groups"].items():
            print(f"  {name}: {json.dumps({k: v for k, v in g.items() if k != 'name'})}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
