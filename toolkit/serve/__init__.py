"""`spamkit serve`: a bundle behind HTTP, with dynamic micro-batching (the `serve` extra:
FastAPI and uvicorn with httptools, which only `app`, `protocol` and `server` import; the CLI
imports `config` alone until the command runs)."""
