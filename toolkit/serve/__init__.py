"""`spamkit serve`: a bundle behind HTTP, with dynamic micro-batching (the `serve` extra:
FastAPI and uvicorn). This package's modules other than `config` import them at the top, so
the CLI imports only `spamkit.serve.config` until the command runs."""
