"""A `Classifier` travels as multiprocessing, Ray and Spark send one: pickled as its bundle's
path, digest and options, loaded again and verified in the other process, answering as the
original does; a bundle changed in between is refused there."""

from __future__ import annotations

import json
import multiprocessing
import operator
import pickle
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from conftest import SMS_FILE

from spamkit.runtime import BundleError, Classifier

MESSAGES = [line.split("\t", 1)[1] for line in SMS_FILE.read_text().splitlines()[:30]]
# What the other process must have taken over: the graph, the device and every option.
SETTINGS = operator.attrgetter("precision", "device", "batch_size", "batch_tokens", "threshold",
                               "threshold_label", "digest", "text_graph")


@pytest.fixture(scope="module")
def spawned():
    """A pool of one fresh interpreter (spawn: nothing inherited but what is pickled)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        yield pool


def test_a_pickled_classifier_answers_the_same_in_a_spawned_process(tiny_bundle, spawned):
    clf = Classifier.load(tiny_bundle, threads=1, batch_size=3, batch_tokens=64, threshold=0.3)

    data = pickle.dumps(clf)

    assert len(data) < 2048  # the path, digest and options: never the session or its graph
    assert spawned.apply(SETTINGS, (clf,)) == SETTINGS(clf)
    proba = spawned.apply(clf.predict_proba, (MESSAGES,))
    assert np.array_equal(proba, clf.predict_proba(MESSAGES))
    assert spawned.apply(clf.predict, (MESSAGES,)) == clf.predict(MESSAGES)


def test_a_bundle_changed_after_pickling_is_refused_in_the_other_process(tiny_bundle, tmp_path,
                                                                          spawned):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    data = pickle.dumps(Classifier.load(bundle))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["threshold"] = {"label": "spam", "value": 0.01}  # as `spamkit calibrate` rewrites it
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert Classifier.load(bundle).threshold == 0.01  # a sound bundle: only the pin refuses it

    with pytest.raises(BundleError, match=f"{bundle} is not the pinned bundle: its digest is"):
        spawned.apply(pickle.loads, (data,))


def test_ray_tasks_classify_with_a_classifier_sent_to_them(tiny_bundle):
    ray = pytest.importorskip("ray")
    clf = Classifier.load(tiny_bundle, threads=1, batch_size=4)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote
        def classify(remote: Classifier, texts: list[str]) -> tuple[list[str], tuple]:
            return remote.predict(texts), SETTINGS(remote)

        stored = ray.put(clf)  # in Ray's object store: pickled once, loaded by each worker
        answers = ray.get([classify.remote(stored, MESSAGES), classify.remote(clf, MESSAGES)])
    finally:
        ray.shutdown()
    assert answers == [(clf.predict(MESSAGES), SETTINGS(clf))] * 2


def test_chosen_providers_travel_and_session_options_are_a_type_error_saying_why(tiny_bundle):
    providers = [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    clf = Classifier.load(tiny_bundle, providers=providers)

    again = pickle.loads(pickle.dumps(clf))

    assert again.session.get_provider_options() == clf.session.get_provider_options()
    assert again.predict(MESSAGES) == clf.predict(MESSAGES)
    options = ort.SessionOptions()
    with pytest.raises(TypeError, match="loaded with session_options cannot be pickled: "
                       "onnxruntime.SessionOptions does not pickle"):
        pickle.dumps(Classifier.load(tiny_bundle, session_options=options))
