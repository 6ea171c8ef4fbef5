"""SignSeek: sign-language recognition from landmarks, as retrieval over reference clips."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import signseek` stays light (no onnxruntime) until SignPredictor is used.
    if name == "SignPredictor":
        from .predictor import SignPredictor

        return SignPredictor
    raise AttributeError(f"module 'signseek' has no attribute {name!r}")
