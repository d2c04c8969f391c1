"""Hugging Face text-embeddings-inference's sequence-classification routes: POST /predict
(`{"inputs": "text"}`, or a batch `{"inputs": [["text"], ["text"]]}`) and GET /info. Each
text's predictions are every label with its score (Classifier.predict_proba's, or the logits
with `raw_scores`), the label Classifier.predict answers first (a calibrated threshold
included), then by score. Errors are `{"error": "...", "error_type": "..."}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictBool

from spamkit import __version__
from spamkit.runtime.classifier import Classifier, softmax
from spamkit.serve.batcher import Batcher
from spamkit.serve.config import ServeConfig
from spamkit.serve.guard import PREDICT
from spamkit.serve.infer import run_texts

BATCH = 'send a batch as [["text"], ["text"], ...]'


class ErrorResponse(BaseModel):
    error: str
    error_type: str


class PredictRequest(BaseModel):
    """As text-embeddings-inference takes it; other keys are ignored, as it ignores them."""

    inputs: Any  # a text, [text], or a batch [[text], ...]: checked by texts_of
    raw_scores: StrictBool = False
    truncate: StrictBool | None = None  # a message is always cut as Classifier cuts it


def add_tei_routes(app: FastAPI, classifier: Classifier, config: ServeConfig,
                   batcher: Batcher) -> None:
    """/predict and /info, for the bundle loaded.

    Args:
        app: the service.
        classifier: the loaded bundle.
        config: its settings (the limits /info reports among them).
        batcher: the micro-batcher every inference route shares."""
    problems = {code: {"model": ErrorResponse} for code in (400, 413, 422, 424, 429, 504)}

    @app.post(PREDICT, responses=problems)
    async def predict(body: PredictRequest, request: Request) -> JSONResponse:
        """Each text's labels with their scores, the predicted label first."""
        texts, single = texts_of(body.inputs)
        logits = await run_texts(texts, "inputs", request, config, batcher)
        proba = softmax(logits)
        scores = logits if body.raw_scores else proba
        answers = [predictions(classifier.labels, decided, row)
                   for decided, row in zip(classifier.decide(proba), scores.tolist())]
        return JSONResponse(answers[0] if single else answers)

    @app.get("/info")
    async def info() -> dict:
        """The model and the limits it is served with, as text-embeddings-inference's /info."""
        labels = classifier.labels
        return {"model_id": config.model_name, "model_sha": classifier.digest,
                "model_dtype": classifier.precision,
                "model_type": {"classifier": {"id2label": {str(i): n for i, n in enumerate(labels)},
                                              "label2id": {n: i for i, n in enumerate(labels)}}},
                "max_concurrent_requests": config.max_queue,
                "max_input_length": classifier.manifest.context_length,
                "max_batch_tokens": config.max_batch_tokens,
                "max_batch_requests": config.max_batch,
                "max_client_batch_size": config.max_messages,
                "auto_truncate": True,  # the start of a long message is cut, as Classifier does
                "tokenization_workers": 1, "version": __version__, "sha": None,
                "docker_label": None}


def texts_of(inputs: object) -> tuple[list[str], bool]:
    """The messages of `inputs`, and whether it was one text rather than a batch; 422 for a
    pair of texts (a cross-encoder's input, which a classifier of one text cannot take)."""
    if isinstance(inputs, str):
        return [inputs], True
    if not isinstance(inputs, list) or not inputs:
        raise HTTPException(422, f"inputs must be a text, [text] or a batch: {BATCH}")
    if all(isinstance(x, str) for x in inputs):
        if len(inputs) == 1:
            return inputs, True
        raise HTTPException(422, f"inputs is a list of {len(inputs)} texts, which "
                            f"text-embeddings-inference reads as a pair or refuses: {BATCH}")
    texts = []
    for i, item in enumerate(inputs):
        if not (isinstance(item, list) and len(item) == 1 and isinstance(item[0], str)):
            raise HTTPException(422, f"inputs[{i}] is not one text in a list ([\"text\"]; "
                                f"this model takes no pairs): {BATCH}")
        texts.append(item[0])
    return texts, False


def predictions(labels: list[str], decided: int, scores: list[float]) -> list[dict]:
    """Every label with its score: `decided` (the label Classifier.predict answers) first,
    then the others by score, highest first (ties in label order)."""
    order = sorted(range(len(labels)), key=lambda j: (j != decided, -scores[j]))
    return [{"score": scores[j], "label": labels[j]} for j in order]
