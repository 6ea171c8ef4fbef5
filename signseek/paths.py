"""Where the project's files live, relative to the checkout (never absolute paths)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
SAMPLE_DATASET = PROJECT_ROOT / "sample_dataset"
MODELS_DIR = PROJECT_ROOT / "models"
