"""`SignPredictor`: the ASL backend's Python API, on top of the engine.

    from signseek import SignPredictor
    predictor = SignPredictor("models")                 # or SignPredictor() for MODELS_DIR
    predictor.predict_single(landmarks)                 # ("hello", 0.91), or (None, 0.0) = no sign
    predictor.predict_top_k(landmarks, k=5)             # [("hello", 0.91), ("thank-you", 0.05), ...]
    predictor.predict_distribution(landmarks)           # {"hello": 0.91, ...} over every sign label
    predictor.predict_batch([clip1, clip2])             # [(label | None, confidence), ...]
    predictor.get_label_map()                           # {0: "can", 1: "coffee", ...} (sign labels, sorted)
    predictor.get_model_info()                          # model, backend, labels, settings, ...

``landmarks``: canonical [T, 543, 3], a LandmarkSequence, or flat [T, V] frames in any known
layout (1629, 1662, 258, 170, 126 values a frame; see signseek.landmarks.layouts).
Probabilities are the engine's confidences (softmax over per-label similarities); idle labels
("no sign") never appear, and `predict_single` returns (None, 0.0) when the engine rejects the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .engine.core import Engine, RecognitionResult


class SignPredictor:
    def __init__(self, models_dir: str | Path | None = None, engine: Engine | None = None, **settings_kwargs) -> None:
        self.engine = engine or Engine.from_bundle(models_dir, **settings_kwargs)

    def recognize(self, landmarks, layout: str | None = None, top_k: int | None = None) -> RecognitionResult:
        """The full engine result, with every diagnostic."""
        return self.engine.recognize(landmarks, top_k=top_k, layout=layout)

    def predict_distribution(self, landmarks, layout: str | None = None) -> dict[str, float]:
        """Probability of every sign label (the confidences of the engine's candidates, the rest 0).

        Sums to at most 1: the share the idle label took is "no sign".
        """
        n_labels = len(self.get_label_map())
        result = self.engine.recognize(landmarks, top_k=max(n_labels, 1), layout=layout)
        out = dict.fromkeys(self.get_label_map().values(), 0.0)
        for c in result.candidates:
            out[c.label] = c.confidence
        return out

    def predict_top_k(self, landmarks, k: int = 5, layout: str | None = None) -> list[tuple[str, float]]:
        result = self.engine.recognize(landmarks, top_k=k, layout=layout)
        return [(c.label, c.confidence) for c in result.candidates[:k]]

    def predict_single(self, landmarks, layout: str | None = None) -> tuple[str | None, float]:
        result = self.engine.recognize(landmarks, layout=layout)
        return (result.label, result.confidence) if result.accepted else (None, 0.0)

    def predict_batch(self, batch: Sequence, layout: str | None = None) -> list[tuple[str | None, float]]:
        return [(r.label, r.confidence) if r.accepted else (None, 0.0)
                for r in self.engine.recognize_many(list(batch), layout=layout)]

    def get_label_map(self) -> dict[int, str]:
        labels = [x for x in self.engine.labels if x not in self.engine.idle_labels]
        return dict(enumerate(labels))

    def get_model_info(self) -> dict:
        info = self.engine.info()
        info["settings"] = self.engine.settings.public_dict()
        info["setting_sources"] = dict(self.engine.setting_sources)
        return info
