"""KServe's Open Inference Protocol (v2) over REST: the server's liveness, readiness and
metadata, the model's metadata and readiness, and inference on one BYTES input of messages
(`input-0`, the name KServe's Hugging Face runtime gives its text input). Outputs: `label`
(BYTES, Classifier.predict's, a calibrated threshold included) and `probabilities` (FP32,
[n, classes], Classifier.predict_proba's, row-major). Errors are `{"error": "..."}`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictInt, StrictStr

from spamkit import __version__
from spamkit.runtime.classifier import Classifier, softmax
from spamkit.serve.batcher import Batcher
from spamkit.serve.config import ServeConfig
from spamkit.serve.infer import run_texts

INPUT = "input-0"
LABEL, PROBABILITIES = "label", "probabilities"
PLATFORM = "onnx_onnxv1"  # the protocol's name for an ONNX model


class InferError(BaseModel):
    error: str


class InputTensor(BaseModel):
    name: StrictStr
    shape: list[StrictInt]
    datatype: StrictStr
    data: list[Any]
    parameters: dict[str, Any] | None = None


class OutputWanted(BaseModel):
    name: StrictStr
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InputTensor]
    outputs: list[OutputWanted] | None = None


def add_kserve_routes(app: FastAPI, classifier: Classifier, config: ServeConfig,
                      batcher: Batcher) -> None:
    """The protocol's routes, for the model named `config.model_name`.

    Args:
        app: the service.
        classifier: the loaded bundle.
        config: its settings (the model's name among them).
        batcher: the micro-batcher every inference route shares."""
    add_health(app, config, batcher)
    name = config.model_name
    problems = {code: {"model": InferError} for code in (400, 404, 413)}

    @app.get("/v2/models/{model}", responses=problems)
    async def model_metadata(model: str) -> dict:
        """The model's name, platform, input and outputs."""
        check_model(model, name)
        return {"name": name, "platform": PLATFORM,
                "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": LABEL, "datatype": "BYTES", "shape": [-1]},
                            {"name": PROBABILITIES, "datatype": "FP32",
                             "shape": [-1, len(classifier.labels)]}]}

    @app.post("/v2/models/{model}/infer", responses=problems)
    async def infer(model: str, body: InferenceRequest, request: Request) -> JSONResponse:
        """Each message's label and class probabilities, in the order given."""
        check_model(model, name)
        texts, wanted = input_texts(body.inputs), wanted_outputs(body.outputs)
        proba = softmax(await run_texts(texts, "inputs[0].data", request, config, batcher))
        tensors = {LABEL: {"name": LABEL, "datatype": "BYTES", "shape": [len(texts)],
                           "data": classifier.decide_labels(proba)},
                   PROBABILITIES: {"name": PROBABILITIES, "datatype": "FP32",
                                   "shape": list(proba.shape), "data": proba.ravel().tolist()}}
        return JSONResponse({"model_name": name, "id": body.id or str(uuid.uuid4()),
                             "outputs": [tensors[w] for w in wanted]})


def add_health(app: FastAPI, config: ServeConfig, batcher: Batcher) -> None:
    @app.get("/v2")
    async def server_metadata() -> dict:
        """The server's name and version; no protocol extensions."""
        return {"name": "spamkit", "version": __version__, "extensions": []}

    @app.get("/v2/health/live")
    async def live() -> dict:
        """The process is alive."""
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        """The model is loaded and its inference worker runs (503 otherwise)."""
        return JSONResponse({"ready": batcher.alive()}, 200 if batcher.alive() else 503)

    @app.get("/v2/models/{model}/ready")
    async def model_ready(model: str) -> JSONResponse:
        """As /v2/health/ready, for the model named in the path."""
        check_model(model, config.model_name)
        alive = batcher.alive()
        return JSONResponse({"name": config.model_name, "ready": alive}, 200 if alive else 503)


def check_model(model: str, name: str) -> None:
    if model != name:
        raise HTTPException(404, f"no model {model!r} here: this server serves {name!r}")


def input_texts(inputs: list[InputTensor]) -> list[str]:
    """The messages of the one input, checked against the model's metadata (400 otherwise)."""
    if len(inputs) != 1 or inputs[0].name != INPUT:
        names = ", ".join(repr(t.name) for t in inputs) or "none"
        raise HTTPException(400, f"the model takes one input, {INPUT!r} (BYTES, shape [-1]); "
                            f"got {names}")
    tensor = inputs[0]
    if tensor.datatype != "BYTES":
        raise HTTPException(400, f"{INPUT} is BYTES (the messages as strings), not "
                            f"{tensor.datatype}")
    for i, text in enumerate(tensor.data):
        if not isinstance(text, str):
            raise HTTPException(400, f"inputs[0].data[{i}] is not a string: each element of "
                                f"{INPUT} is one message")
    if tensor.shape != [len(tensor.data)]:
        raise HTTPException(400, f"{INPUT}'s shape {tensor.shape} does not match its "
                            f"{len(tensor.data)} messages: [{len(tensor.data)}]")
    return tensor.data


def wanted_outputs(outputs: list[OutputWanted] | None) -> list[str]:
    """The outputs asked for, in the order asked (both when none is named; 400 for others)."""
    if outputs is None:
        return [LABEL, PROBABILITIES]
    for output in outputs:
        if output.name not in (LABEL, PROBABILITIES):
            raise HTTPException(400, f"no output {output.name!r}: the model's outputs are "
                                f"{LABEL!r} and {PROBABILITIES!r}")
    return [output.name for output in outputs]
