"""Locust load for POST /v1/inference: 64-frame payloads of 258 values a frame (pose_hands).

    locust -f benchmarks/locustfile.py --headless -u 16 -r 16 -t 60s --host http://127.0.0.1:8000
    python -m benchmarks api          # starts uvicorn, runs this headless, checks the targets

Payloads are real sequences from sample_dataset/signs_sample.npz (20 frames each) joined into
64 frames, serialised once at start so the load generator spends its CPU on requests, not
on JSON. Each user posts back to back (no think time) unless LOCUST_RPS_PER_USER is set.
A response counts as a failure unless it is a 200 with an InferenceResponse body.
"""

from __future__ import annotations

import os
import random

from bench_api import HEADERS, build_payloads  # locust puts this folder on sys.path
from locust import FastHttpUser, constant, constant_throughput, task

PAYLOADS = build_payloads()
_RPS = float(os.environ.get("LOCUST_RPS_PER_USER", "0") or 0)


class InferenceUser(FastHttpUser):
    wait_time = constant_throughput(_RPS) if _RPS > 0 else constant(0)

    @task
    def inference(self) -> None:
        body = random.choice(PAYLOADS)
        with self.client.post("/v1/inference", data=body, headers=HEADERS, catch_response=True,
                              name="/v1/inference") as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            elif "results" not in (response.json() or {}):
                response.failure("no results in the response")
            else:
                response.success()
