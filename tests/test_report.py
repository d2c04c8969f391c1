"""Looking at the model: training curves, `spamkit eval`, and `spamkit calibrate`."""

import json
import shutil

import numpy as np
import pytest
from conftest import SMS_FILE, spamkit_cli
from PIL import Image

from spamkit.jobs.evaluate import examples_for, load_model
from spamkit.runtime import Classifier
from spamkit.runtime.bundle import read_manifest


def assert_sensible_png(path, min_size=(300, 250)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= min_size[0] and image.height >= min_size[1]
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colors) > 20, "the figure is (nearly) blank"


def test_training_writes_its_curves_beside_the_metrics(tiny_checkpoint):
    assert_sensible_png(tiny_checkpoint / "curves.png", min_size=(800, 300))


def test_the_curves_of_a_long_run_label_its_axes_without_overlapping():
    from spamkit.plots import curves_figure

    history = [{"epoch": e, "examples_seen": 1045 * e, "train_loss": 1 / e, "val_loss": 1 / e,
                "train_accuracy": 1 - 1 / e, "val_accuracy": 1 - 1 / e} for e in range(1, 16)]
    fig = curves_figure(history)
    fig.canvas.draw()
    for ax in fig.axes:  # both panels, their epochs below and examples seen above
        boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
        assert len(boxes) >= 3
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), ax.get_xlabel()


def test_eval_of_checkpoint_and_bundles_agree(tiny_checkpoint, tiny_bundle, tmp_path):
    reports = {}
    for name, args in {"checkpoint": [tiny_checkpoint],
                       "fp32": [tiny_bundle, "--precision", "fp32"],
                       "int8": [tiny_bundle, "--precision", "int8"]}.items():
        result = spamkit_cli("eval", *args, "--data", SMS_FILE, "--json")
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads(result.stdout)
    fp32 = reports["fp32"]
    assert fp32["split"] == "test"
    assert sum(c["support"] for c in fp32["classes"].values()) == 300
    assert np.array(fp32["confusion_matrix"]["rows_true_columns_predicted"]).sum() == 300
    # PyTorch and the fp32 graph are the same function: the same answers.
    assert reports["checkpoint"]["confusion_matrix"] == fp32["confusion_matrix"]
    assert abs(reports["int8"]["accuracy"] - fp32["accuracy"]) <= 3 / 300
    spam = fp32["classes"]["spam"]
    cm = fp32["confusion_matrix"]["rows_true_columns_predicted"]
    assert spam["precision"] == pytest.approx(cm[1][1] / (cm[0][1] + cm[1][1]))
    assert spam["recall"] == pytest.approx(cm[1][1] / (cm[1][0] + cm[1][1]))


def test_eval_prints_a_table_and_draws_plots(tiny_bundle, tmp_path):
    result = spamkit_cli("eval", tiny_bundle, "--data", SMS_FILE, "--split", "val",
                         "--plots", tmp_path / "plots")
    assert result.returncode == 0, result.stderr
    assert "on 149 messages" in result.stdout
    assert "precision" in result.stdout and "confusion matrix" in result.stdout
    assert_sensible_png(tmp_path / "plots" / "confusion_matrix.png")
    assert_sensible_png(tmp_path / "plots" / "precision_recall.png")


def test_calibrate_stores_a_threshold_that_predict_uses(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    texts = ["Free entry! Win cash now", "see you at 6", "URGENT call now", "ok"]
    before = Classifier.load(bundle).predict_proba(texts)

    result = spamkit_cli("calibrate", bundle, "--data", SMS_FILE, "--target-precision", "0.9")
    assert result.returncode == 0, result.stderr
    stored = read_manifest(bundle).threshold  # the checksums still verify
    assert stored["label"] == "spam" and stored["target_precision"] == 0.9

    clf = Classifier.load(bundle)
    assert clf.threshold == stored["value"]
    np.testing.assert_array_equal(clf.predict_proba(texts), before)
    # The threshold meets the target on the validation split, checked independently here.
    val = examples_for(load_model(bundle), str(SMS_FILE), "val")
    p_spam = clf.predict_proba(val.texts)[:, 1]
    flagged = p_spam >= stored["value"]
    assert np.mean(np.array(val.labels)[flagged] == 1) >= 0.9
    assert clf.predict(val.texts) == ["spam" if f else "ham" for f in flagged]
    # A lower threshold flags more, and an explicit one overrides the stored one.
    assert Classifier.load(bundle, threshold=0.0).predict(texts) == ["spam"] * 4
    assert Classifier.load(bundle, threshold=1.0).predict(texts) == ["ham"] * 4


def assert_one_line_error(result, *words):
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("spamkit: error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("options, words", [
    (("--target-precision", "0.9", "--label", "phishing"),
     "--label 'phishing' is not one of the model's labels ['ham', 'spam']"),
    (("--target-precision", "0"), "--target-precision must be in (0, 1], not 0.0"),
    (("--target-precision", "1.5"), "--target-precision must be in (0, 1], not 1.5"),
], ids=["another-label", "zero", "above-one"])
def test_calibrate_refuses_what_it_cannot_store_and_changes_nothing(tiny_bundle, tmp_path,
                                                                   options, words):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    before = (bundle / "manifest.json").read_bytes()
    result = spamkit_cli("calibrate", bundle, "--data", SMS_FILE, *options)
    assert_one_line_error(result, words)
    assert (bundle / "manifest.json").read_bytes() == before


def test_data_with_other_labels_is_refused(tiny_bundle, tmp_path):
    data = tmp_path / "other.csv"
    data.write_text("text,label\n" + "".join(f"message {i},{'ab'[i % 2]}\n" for i in range(50)))
    result = spamkit_cli("eval", tiny_bundle, "--data", data)
    assert_one_line_error(result, "differ from the model's")


def test_an_empty_split_is_refused(tiny_bundle, tmp_path):
    data = tmp_path / "empty.csv"
    data.write_text("text,label\n")
    assert_one_line_error(spamkit_cli("eval", tiny_bundle, "--data", data, "--split", "all"),
                          "no messages")


def test_an_unreachable_precision_target_is_refused_and_nothing_changes(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest_before = (bundle / "manifest.json").read_text()
    # One text, labelled spam half the time: every threshold flags all validation messages or
    # none, so precision stays near one half whatever the model learned.
    same = tmp_path / "same.tsv"
    same.write_text("text\tlabel\n" + "".join(
        f"Call now to claim your prize\t{'spam' if i % 2 else 'ham'}\n" for i in range(400)))
    result = spamkit_cli("calibrate", bundle, "--data", same, "--target-precision", "0.99")
    assert_one_line_error(result, "no threshold reaches spam precision 99.00%")
    assert (bundle / "manifest.json").read_text() == manifest_before
