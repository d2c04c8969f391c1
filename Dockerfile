# spamkit serve in a container: slim Python, a non-root user, spamkit[cpu,serve], the bundle at
# /bundle (mounted, or copied in by a derived image), health checked on /readyz.
#
#   docker build -t spamkit-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/demo/bundle:/bundle:ro" spamkit-serve
#   curl -s localhost:8000/v1/classify -H 'Content-Type: application/json' \
#        -d '{"texts": ["WINNER!! Claim your prize now", "see you at 6?"]}'
#
# Options after the image name go to `spamkit serve` (e.g. --threads 2 --max-batch 32).
# `docker stop` sends SIGTERM: the server stops accepting, answers what is in flight, exits 0.
# Any base with python3 and its venv module (tests/container/debian_base.sh makes one from
# Debian's packages where no registry can be reached): --build-arg BASE_IMAGE=...
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# spamkit in a virtual environment: the same steps on python:slim and on a Debian python3
# (whose system pip refuses installs, PEP 668).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/spamkit/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY toolkit toolkit
COPY runtime runtime
COPY export export
# A numeric user, so Kubernetes' runAsNonRoot can check it is not root (deploy/kubernetes.yaml).
RUN python3 -m venv /opt/spamkit && pip install "./[cpu,serve]" && rm -rf /src \
    && groupadd --system --gid 10001 spamkit \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home spamkit

USER 10001:10001
WORKDIR /home/spamkit
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# Exec form: spamkit is PID 1 and gets the SIGTERM itself.
ENTRYPOINT ["spamkit", "serve", "/bundle", "--host", "0.0.0.0", "--port", "8000"]
