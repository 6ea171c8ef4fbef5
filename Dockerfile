# SignSeek demo (Gradio UI + API) in a container: slim, non-root, no torch.
#
#   docker build -t signseek .
#   docker run -p 7860:7860 signseek                       # http://127.0.0.1:7860/
#   docker run -p 7860:7860 -e API_WORKERS=2 -e STORE_URL=postgresql://user:pass@db/signseek signseek
#
# Serving needs no torch: the encoder runs in ONNX Runtime (requirements.txt = the runtime
# dependencies, pinned by constraints.txt) plus psycopg for a shared PostgreSQL store (STORE_URL).
# Calibrated thresholds come with the bundle in models/; set only what you mean to override.
# Enrolled signs go to /app/data/enrolled.db (mount a volume there) or to STORE_URL.

ARG BASE=debian:bookworm-slim

# ---- build: a virtual environment with the pinned runtime packages ----------------------------
FROM ${BASE} AS build
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends python3 python3-venv python3-dev gcc g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.txt constraints.txt ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -q --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install -q --no-cache-dir -r requirements.txt "psycopg[binary,pool]" -c constraints.txt \
    && /opt/venv/bin/pip check \
    && ! /opt/venv/bin/pip show torch >/dev/null 2>&1

# ---- run: the venv, the code, the bundle; nothing to compile with -----------------------------
FROM ${BASE}
# packages.txt's list (what a Space installs): OpenGL and GLib for OpenCV, ffmpeg for Gradio's video.
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends python3 libgl1 libglib2.0-0 ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin signseek
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# app.py, signseek/, demo/, models/ (the bundle), sample_dataset/ and the project files:
# .dockerignore leaves out tests, the trainer, the explorer, benchmarks and local data.
COPY --chown=signseek:signseek . .
RUN install -d -o signseek -g signseek /app/data
USER signseek
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=7860
EXPOSE 7860
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '7860'), timeout=4).status != 200)"]
CMD ["python", "app.py"]
