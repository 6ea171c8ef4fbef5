"""Settings precedence: environment (and .env) > calibrated bundle thresholds > defaults."""

from __future__ import annotations

from signseek.settings import Settings, resolve_settings

BUNDLE = {"thresholds": {"SIM_THRESHOLD": 0.7, "SIM_MARGIN": 0.05, "NOT_A_SETTING": 1, "API_KEY": "x"}}


def test_defaults_without_bundle_or_env(monkeypatch):
    for name in ("SIM_THRESHOLD", "SIM_MARGIN", "DEFAULT_TOP_K"):
        monkeypatch.delenv(name, raising=False)
    settings, sources = resolve_settings(None, _env_file=None)
    assert settings.DEFAULT_TOP_K == 5 and settings.MIN_ENROL_CLIPS == 3 and settings.DTW_TOP_N == 5
    assert settings.DTW_BACKEND == "dtaidistance"
    assert sources["SIM_THRESHOLD"] == "default"


def test_bundle_beats_default_and_env_beats_both(monkeypatch):
    monkeypatch.delenv("SIM_MARGIN", raising=False)
    monkeypatch.setenv("SIM_THRESHOLD", "0.9")
    settings, sources = resolve_settings(BUNDLE, _env_file=None)
    assert settings.SIM_THRESHOLD == 0.9 and sources["SIM_THRESHOLD"] == "env"
    assert settings.SIM_MARGIN == 0.05 and sources["SIM_MARGIN"] == "bundle"
    assert sources["CONFIDENCE_TEMPERATURE"] == "default"
    # Only model-dependent thresholds come from a bundle; never secrets or unknown names.
    assert settings.API_KEY is None and sources["API_KEY"] == "default"


def test_dotenv_file_counts_as_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SIM_MARGIN", raising=False)
    monkeypatch.delenv("DTW_BACKEND", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("SIM_MARGIN=0.2\nDTW_BACKEND=fastdtw\nAPI_KEY=secret\n")
    settings, sources = resolve_settings(BUNDLE, _env_file=env_file)
    assert settings.SIM_MARGIN == 0.2 and sources["SIM_MARGIN"] == ".env"
    assert settings.DTW_BACKEND == "fastdtw"
    assert settings.public_dict()["API_KEY"] == "***"


def test_bad_values_are_refused(monkeypatch):
    import pydantic
    import pytest

    monkeypatch.setenv("DTW_BACKEND", "cuda-magic")
    with pytest.raises(pydantic.ValidationError, match="DTW_BACKEND"):
        Settings(_env_file=None)
