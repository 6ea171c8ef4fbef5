"""schemathesis against the real app (the API on the fixture bundle, in process): every operation
of the OpenAPI schema, schema-valid and schema-invalid requests, every built-in check, a fixed
seed and a bounded number of examples, 0 failures.

One exception, said here: for the routes whose bodies are videos or landmark recordings, a
schema cannot say "a decodable clip with a person in it" or "a recording with hands", so a 422
that names such a problem in a schema-valid request is right, and `positive_data_acceptance`
is not applied to those answers; every other check still is.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as fixed_seed
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_api_support import make_settings

from demo.api import create_app

pytestmark = pytest.mark.slow
KEY = "fuzz-key"
load_all_checks()

# 422s that name the content, not the shape: corrupt clips, no person, clips without hands.
CONTENT_ROUTES = {("POST", "/v1/inference/video"), ("POST", "/v1/signs/video"), ("POST", "/v1/signs")}
CONTENT_CODES = {"invalid_video", "unreadable_video", "corrupt_video", "truncated_video", "empty_video",
                 "no_person", "extraction_failed", "enrolment_refused", "no_file", "empty_file"}


def _app():
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(prefix="signseek-fuzz-"))
    (tmp / "videos").mkdir()
    # A public deployment's configuration: writes need the key (the fuzzer holds it).
    return create_app(make_settings(tmp, API_KEY=KEY, RATE_LIMIT_INFERENCE=0, RATE_LIMIT_VIDEO=0,
                                    RATE_LIMIT_WRITE=0, MAX_JSON_MB=4))


# Built at collection (schemathesis' pytest plugin makes one test per operation from it).
schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


def _check(case) -> None:
    if "X-API-Key" in (case.headers or {}):  # the fuzzer made a key up: use the real one (absent stays absent)
        case.headers["X-API-Key"] = KEY
    response = case.call()
    excluded = []
    if (case.method.upper(), case.path) in CONTENT_ROUTES and response.status_code == 422:
        code = (response.json() or {}).get("error", "")
        if code in CONTENT_CODES or code.startswith(("invalid_", "no_")):
            excluded = [positive_data_acceptance]
    case.validate_response(response, excluded_checks=excluded)


SETTINGS = {"deadline": None, "derandomize": True, "phases": [Phase.explicit, Phase.generate],
            "suppress_health_check": list(HealthCheck)}


@schema.exclude(method="POST", path="/v1/signs").parametrize()
@fixed_seed(20261130)
@settings(max_examples=8, **SETTINGS)
def test_every_operation_holds_every_check(case):
    _check(case)


# Three or more whole sequences a case: the costliest to generate (~3 s of CPU a case), so fewer.
@schema.include(method="POST", path="/v1/signs").parametrize()
@fixed_seed(20261130)
@settings(max_examples=3, **SETTINGS)
def test_enrolment_holds_every_check(case):
    _check(case)
