"""What an app sees: `spamkit.runtime` without torch."""

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from spamkit.errors import SpamkitError
from spamkit.runtime import Classifier
from spamkit.runtime.batching import length_sorted_batches

RUNTIME_DEPS = ("onnxruntime", "numpy", "tiktoken")


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _with_requirements(names) -> set[str]:
    """Distributions `names` need, transitively (the ones actually installed)."""
    seen, todo = set(), [metadata.distribution(n).metadata["Name"].lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.distribution(name).requires or []:
            if "extra ==" in req:
                continue
            dep = req.split(";")[0].split("[")[0].split("(")[0]
            dep = dep.split("<")[0].split(">")[0].split("=")[0].split("!")[0].split("~")[0].strip()
            try:
                todo.append(metadata.distribution(dep).metadata["Name"].lower())
            except metadata.PackageNotFoundError:
                pass
    return seen


def test_importing_the_runtime_imports_only_onnxruntime_numpy_tiktoken_and_stdlib():
    out = _python(
        "import sys, json, spamkit.runtime; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    modules = set(json.loads(out)) - set(sys.stdlib_module_names) - {"spamkit", "__main__"}
    # Installer plumbing that site.py loads into every process, not imported by spamkit.
    modules = {m for m in modules if m != "_distutils_hack" and not m.startswith("__editable__")}
    owners = metadata.packages_distributions()
    allowed = _with_requirements(RUNTIME_DEPS)
    foreign = {m for m in modules if not any(d.lower() in allowed for d in owners.get(m, []))}
    assert "torch" not in modules
    assert foreign == set()


def test_an_app_classifies_in_a_process_where_torch_cannot_be_imported(tiny_bundle):
    out = _python(
        "import sys; sys.modules['torch'] = None  # any `import torch` now raises\n"
        "from spamkit.runtime import Classifier\n"
        f"clf = Classifier.load({str(tiny_bundle)!r})\n"
        "print(clf.device, clf.precision,\n"
        "      clf.predict(['Free entry! Win cash now', 'see you at 6']))\n"
        "print(clf.predict_proba('hello').sum())"
    )
    first, second = out.strip().splitlines()
    assert first.startswith("cpu int8 [")
    assert abs(float(second) - 1) < 1e-6


def test_single_string_and_list(tiny_bundle):
    clf = Classifier.load(tiny_bundle, threads=1)
    assert clf.labels == ["ham", "spam"]
    label = clf.predict("URGENT! You have won a 1 week FREE membership")
    assert label in clf.labels
    assert clf.predict(["URGENT! You have won a 1 week FREE membership"]) == [label]
    p = clf.predict_proba(["a", "b c", ""])
    assert p.shape == (3, 2) and np.allclose(p.sum(axis=1), 1)
    assert clf.predict_proba("a").shape == (2,)
    assert clf.predict([]) == [] and clf.predict_proba([]).shape == (0, 2)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("cap", [{"batch_size": 2}, {"batch_tokens": 12}])
def test_results_come_back_in_the_callers_order(tiny_bundle, precision, cap):
    # Logits do not depend on batch-mates, so any mix-up of rows would show.
    clf = Classifier.load(tiny_bundle, precision=precision, **cap)
    texts = ["a much longer message " * 10, "hi", "medium length message here", "ok"]
    together = clf.logits(texts)
    one_by_one = np.stack([clf.logits(t) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_no_batch_holds_more_padded_tokens_than_the_cap():
    """A message longer than the cap runs alone; every other batch stays within it."""
    lengths = [3, 50, 7, 7, 12, 1, 30, 31, 200, 16, 16, 16, 16, 5]
    batches = list(length_sorted_batches(lengths, batch_size=32, batch_tokens=64))
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths)))
    for rows in batches:
        widest = max(lengths[i] for i in rows)
        assert len(rows) == 1 or len(rows) * widest <= 64, [lengths[i] for i in rows]
    assert [8] in batches  # the 200-token message, alone


def test_a_non_string_is_a_type_error_naming_its_index(tiny_bundle):
    clf = Classifier.load(tiny_bundle)
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        clf.predict(["fine", None])


def test_cuda_on_a_machine_without_it_is_a_clear_error_and_auto_falls_back(tiny_bundle):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SpamkitError, match="CUDA provider"):
        Classifier.load(tiny_bundle, device="cuda")
    assert Classifier.load(tiny_bundle, device="auto").device == "cpu"


def test_asking_for_a_graph_the_bundle_lacks_names_what_it_has(tiny_bundle):
    with pytest.raises(SpamkitError, match="has no fp16 graph"):
        Classifier.load(tiny_bundle, precision="fp16")


def test_a_threshold_is_reached_by_a_probability_equal_to_it(tiny_bundle):
    # "spam when its probability reaches the threshold": equal is reached, a hair above is not.
    texts = ["Free entry! Win cash now", "see you at 6", "URGENT call now", "ok"]
    p_spam = Classifier.load(tiny_bundle, threads=1).predict_proba(texts)[:, 1]
    for i, p in enumerate(p_spam):
        at = Classifier.load(tiny_bundle, threads=1, threshold=float(p))
        assert at.predict(texts)[i] == "spam"
        above = float(np.nextafter(p, np.float32(2)))
        assert Classifier.load(tiny_bundle, threads=1, threshold=above).predict(texts)[i] == "ham"
