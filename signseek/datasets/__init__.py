"""Datasets: the `SignDataset` container, importers for other layouts, splits, and the
`signseek-data` command line.

    from signseek.datasets import SignDataset, import_npz, split_by_group
    ds = import_npz("../shared/datasets/traduttore-asl/signs.npz")
    split = split_by_group(ds, test_size=0.2, seed=0)
    ds.subset(split.train).save("train.npz")

Importers that need heavy packages (MediaPipe, pose-format, yt-dlp) import them when called.
"""

from .container import FORMAT_VERSION, UNKNOWN_SIGNER, ImportReport, SignDataset, is_dataset_file
from .download import DownloadReport, download_clips
from .errors import DatasetError
from .images import import_images
from .islr import import_islr, read_islr_parquet
from .manifest import ClipEntry, read_manifest
from .mpdata import import_mpdata
from .npz import export_npz, import_npz
from .pose_file import import_pose, read_pose_file
from .splits import (
    Episode,
    Split,
    few_shot_episode,
    make_split,
    split_by_group,
    split_by_label,
    stratified_split,
)
from .videos import VideoJob, extract_jobs, import_videos, import_wlasl

__all__ = [
    "FORMAT_VERSION",
    "UNKNOWN_SIGNER",
    "ClipEntry",
    "DatasetError",
    "DownloadReport",
    "Episode",
    "ImportReport",
    "SignDataset",
    "Split",
    "VideoJob",
    "download_clips",
    "export_npz",
    "extract_jobs",
    "few_shot_episode",
    "import_images",
    "import_islr",
    "import_mpdata",
    "import_npz",
    "import_pose",
    "import_videos",
    "import_wlasl",
    "is_dataset_file",
    "make_split",
    "read_islr_parquet",
    "read_manifest",
    "read_pose_file",
    "split_by_group",
    "split_by_label",
    "stratified_split",
]
