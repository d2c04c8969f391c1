"""The HTTP API: POST /v1/classify, KServe's Open Inference Protocol (/v2/...), Hugging Face
text-embeddings-inference's /predict and /info, /healthz, /readyz, /metrics, and FastAPI's
OpenAPI schema (/openapi.json, /docs). Every refusal is one JSON line with a 4xx or 5xx
status, in the shape of the route's protocol (serve.errors)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from spamkit import __version__
from spamkit.runtime.bundle import first_line
from spamkit.runtime.classifier import Classifier, softmax
from spamkit.serve.access import AccessLog
from spamkit.serve.batcher import Batcher
from spamkit.serve.config import ServeConfig
from spamkit.serve.errors import EXPECTED, error_body, protocol_of
from spamkit.serve.guard import CLASSIFY, ClassifyGuard
from spamkit.serve.infer import run_texts
from spamkit.serve.kserve import add_kserve_routes
from spamkit.serve.metrics import CONTENT_TYPE, Metrics, outcome_of
from spamkit.serve.tei import add_tei_routes


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
    """The service for one loaded classifier; its lifespan runs the inference worker.

    Args:
        classifier: the loaded bundle, shared by every route through one micro-batcher.
        config: the limits, batching, names and logging of `spamkit serve`.

    Returns:
        The ASGI application."""
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
    if config.access_log:
        app.add_middleware(AccessLog)  # added last, so outside the guard: its refusals too
    add_error_handlers(app)
    add_classify_route(app, classifier, config, batcher)
    add_kserve_routes(app, classifier, config, batcher)
    add_tei_routes(app, classifier, config, batcher)
    add_probes(app, classifier, batcher, metrics)
    return app


def add_classify_route(app: FastAPI, classifier: Classifier, config: ServeConfig,
                       batcher: Batcher) -> None:
    problems = {code: {"model": Problem} for code in (400, 413, 422, 503, 504)}

    @app.post(CLASSIFY, response_model=ClassifyResponse, responses=problems)
    async def classify(body: ClassifyRequest, request: Request) -> JSONResponse:
        """Each message's label and class probabilities, in the order given."""
        proba = softmax(await run_texts(body.texts, "texts", request, config, batcher))
        names = classifier.labels
        results = [{"label": label, "probabilities": dict(zip(names, row))}
                   for label, row in zip(classifier.decide_labels(proba), proba.tolist())]
        return JSONResponse({"results": results})


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

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Requests and messages by outcome, latency and batch-size histograms, queue depth,
        and the process's CPU, memory and open files (process_*)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return refusal(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # An empty body is reported as a missing one.
        if any(e["type"] == "json_invalid" or e["loc"] == ("body",) and e["type"] == "missing"
               for e in errors):
            return refusal(request, 400, "the request body is not JSON")
        expected = EXPECTED[protocol_of(request.url.path)]
        return refusal(request, 422, "; ".join(describe_error(e, expected) for e in errors))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        return refusal(request, 500, f"classification failed: {first_line(exc)}")


def refusal(request: Request, status: int, message: str,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """`message` with `status` in the shape of the request's protocol; the metrics count it
    by spamkit's status, whatever status the protocol answers it with."""
    request.state.outcome = outcome_of(status)
    status, body = error_body(request.url.path, status, message)
    return JSONResponse(body, status_code=status, headers=headers)


def describe_error(error: dict, expected: str = EXPECTED["spamkit"]) -> str:
    """`texts[2]: Input should be a valid string` from one of pydantic's errors; `expected`
    is what the body should have been, for a body that is not an object at all."""
    if len(error["loc"]) == 1:  # ("body",): not an object at all
        return f"the body must be a JSON object: {expected}"
    where = ""
    for part in error["loc"][1:]:  # [0] is "body"
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return f"{where}: {error['msg']}"
