"""The HTTP API: POST /v1/classify, /healthz, /readyz, /metrics, and FastAPI's OpenAPI schema
(/openapi.json, /docs). Every refusal is JSON `{"detail": "..."}` with a 4xx or 5xx status."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, StrictStr

from spamkit import __version__
from spamkit.runtime.bundle import first_line
from spamkit.runtime.classifier import Classifier
from spamkit.serve.batcher import Batcher, QueueFull
from spamkit.serve.config import ServeConfig
from spamkit.serve.guard import CLASSIFY, ClassifyGuard
from spamkit.serve.metrics import Metrics

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr]


class Answer(BaseModel):
    label: str
    probabilities: dict[str, float]


class ClassifyResponse(BaseModel):
    results: list[Answer]


class Problem(BaseModel):
    detail: str


def build_app(classifier: Classifier, config: ServeConfig) -> FastAPI:
    """The service for one loaded classifier; its lifespan runs the inference worker."""
    metrics = Metrics(config.max_batch, lambda: batcher.depth())
    batcher = Batcher(classifier, config, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        batcher.stop()

    app = FastAPI(title="spamkit", version=__version__, lifespan=lifespan,
                  description=f"Classifies messages as {', '.join(classifier.labels)}.")
    app.add_middleware(ClassifyGuard, max_body_bytes=config.max_body_bytes, metrics=metrics)
    add_error_handlers(app)
    add_classify_route(app, classifier, config, batcher)
    add_probes(app, classifier, batcher, metrics)
    return app


def add_classify_route(app: FastAPI, classifier: Classifier, config: ServeConfig,
                       batcher: Batcher) -> None:
    problems = {code: {"model": Problem} for code in (400, 413, 422, 503, 504)}

    @app.post(CLASSIFY, response_model=ClassifyResponse, responses=problems)
    async def classify(body: ClassifyRequest, request: Request) -> JSONResponse:
        """Each message's label and class probabilities, in the order given."""
        texts = body.texts
        request.state.messages = len(texts)
        check_texts(texts, config)
        try:
            proba = await batcher.classify(texts)
        except QueueFull as e:
            raise HTTPException(503, f"busy: {e}", headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            raise HTTPException(504, f"not answered within {config.request_timeout_s:g} s "
                                "(--request-timeout-s)") from None
        names = classifier.labels
        results = [{"label": label, "probabilities": dict(zip(names, row))}
                   for label, row in zip(classifier.decide_labels(proba), proba.tolist())]
        return JSONResponse({"results": results})


def check_texts(texts: list[str], config: ServeConfig) -> None:
    if len(texts) > config.max_messages:
        raise HTTPException(413, f"{len(texts)} messages in one request; at most "
                            f"{config.max_messages}")
    for i, text in enumerate(texts):
        if len(text) > config.max_chars:
            raise HTTPException(422, f"texts[{i}] has {len(text)} characters; at most "
                                f"{config.max_chars}")


def add_probes(app: FastAPI, classifier: Classifier, batcher: Batcher, metrics: Metrics) -> None:
    @app.get("/healthz")
    async def healthz() -> dict:
        """The process is alive."""
        return {"status": "alive"}

    @app.get("/readyz", responses={503: {"model": Problem}})
    async def readyz() -> JSONResponse:
        """The bundle is loaded (and answered a warm-up) and its inference worker runs."""
        if not batcher.alive():
            return JSONResponse({"detail": "not ready: the inference worker has stopped"},
                                status_code=503)
        return JSONResponse({"status": "ready", "digest": classifier.digest,
                             "labels": classifier.labels, "precision": classifier.precision,
                             "device": classifier.device})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        """Requests and messages by outcome, latency and batch-size histograms, queue depth."""
        return PlainTextResponse(metrics.render(), media_type=PROMETHEUS_TEXT)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # An empty body is reported as a missing one.
        if any(e["type"] == "json_invalid" or e["loc"] == ("body",) and e["type"] == "missing"
               for e in errors):
            return JSONResponse({"detail": "the request body is not JSON"}, status_code=400)
        return JSONResponse({"detail": "; ".join(map(describe_error, errors))}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"classification failed: {first_line(exc)}"},
                            status_code=500)


def describe_error(error: dict) -> str:
    """`texts[2]: Input should be a valid string` from one of pydantic's errors."""
    if len(error["loc"]) == 1:  # ("body",): not an object at all
        return 'the body must be a JSON object: {"texts": [...]}'
    where = ""
    for part in error["loc"][1:]:  # [0] is "body"
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return f"{where}: {error['msg']}"
