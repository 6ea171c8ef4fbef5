"""SignSeek: sign-language recognition from landmarks, as retrieval over reference clips."""

__version__ = "0.1.0"
