"""`make mutants`: every mutant in mutants.py must make at least one of its tests fail.

For each mutant: copy the tree to a temporary directory, apply the one-line change there, and run
the mutant's tests in that copy (`python -m pytest -x`). The editable install points `spamkit`
at this checkout, so the copy gets an import directory of its own, `_import/spamkit` (links to
the copy's toolkit/, export/ and runtime/), placed first on PYTHONPATH: the path finder sees it
before the editable install's finder, here and in every process a test starts. Before the tests
run, a fresh process in the copy prints where spamkit, spamkit.export and spamkit.runtime come
from, and the run stops unless that is the copy.

First, the unmutated tree builds conftest's tiny checkpoint and bundle once; a mutant whose file
that building never imported gets copies of them (SPAMKIT_TEST_PREBUILT) instead of training
and exporting its own, which it could not change. Then an unmutated copy runs the tests of all
mutants together (the control): a test that fails without a mutant would count any mutant as
caught. Exit status: 0 when every mutant is caught,
1 when one survives (or its tests could not run), 2 when the list itself is stale.

    python tests/mutation/run.py                  # all mutants, one at a time
    python tests/mutation/run.py -j 2             # two at a time
    python tests/mutation/run.py --only "no streaming" --keep
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mutants import MUTANTS, ROOT, Mutant, problems

# What a test run needs from the tree; the data is found through ../shared, linked beside it.
COPIED = ("toolkit", "export", "runtime", "tests", "benchmarks", "ports", "deploy", "Dockerfile",
          "docs", "examples", "tools",
          "pyproject.toml", "README.md")
# npm's packages for the page and the Node.js port (`make web-deps`): linked, not copied.
NODE_MODULES = ("toolkit/web/node_modules", "ports/node/node_modules")
PACKAGES = {"spamkit": "toolkit", "spamkit.export": "export", "spamkit.runtime": "runtime"}
TIMEOUT_S = 1800  # one mutant's tests, at most


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "caught", "SURVIVED", "NOT RUN" (its tests could not run)
    detail: str  # the first failing test, or why it did not run
    seconds: float


def copy_tree(source: Path, repo: Path) -> None:
    """The parts of the tree that the tests need, from `source` to `repo`."""
    repo.mkdir(parents=True)
    for name in COPIED:
        if (source / name).is_dir():
            shutil.copytree(source / name, repo / name, ignore=shutil.ignore_patterns(
                "__pycache__", ".hypothesis", ".pytest_cache", "node_modules"))
        else:
            shutil.copy2(source / name, repo / name)


def make_copy(snapshot: Path, work: Path) -> Path:
    """A copy of `snapshot` at work/repo whose `spamkit` is its own; return the copy."""
    repo = work / "repo"
    copy_tree(snapshot, repo)
    (work / "shared").symlink_to(ROOT.parent / "shared")  # tests read ../shared/data
    for modules in NODE_MODULES:
        if (ROOT / modules).is_dir():
            (repo / modules).symlink_to(ROOT / modules)
    package = repo / "_import" / "spamkit"
    package.mkdir(parents=True)
    for entry in (repo / "toolkit").iterdir():
        (package / entry.name).symlink_to(entry)
    for sub in ("export", "runtime"):
        (package / sub).symlink_to(repo / sub)
    return repo


def copy_env(repo: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(repo / "_import"), os.environ.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports(repo: Path) -> str:
    """Where a fresh process in the copy imports spamkit from; raise unless from the copy."""
    code = ("import json, importlib; print(json.dumps({n: importlib.import_module(n).__file__ "
            f"for n in {list(PACKAGES)!r}}}))")
    # From another directory, as the tests' subprocesses often run.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=copy_env(repo), cwd=repo.parent, timeout=120, check=False)
    if result.returncode != 0:
        raise SystemExit(f"cannot import spamkit in {repo}:\n{result.stderr}")
    files = json.loads(result.stdout)
    for name, file in files.items():
        expected = repo / "_import" / Path(*name.split(".")) / "__init__.py"
        if Path(file) != expected or not expected.resolve().is_relative_to(repo):
            raise SystemExit(f"{name} comes from {file}, not from the copy {repo}")
    return files["spamkit"]


def apply(m: Mutant, repo: Path) -> None:
    path = repo / m.file
    text = path.read_text(encoding="utf-8")
    if text.count(m.original) != 1:
        raise SystemExit(f"{m.name}: {m.original!r} is not in {m.file} exactly once")
    path.write_text(text.replace(m.original, m.replacement), encoding="utf-8")


# Builds conftest's tiny checkpoint and bundle into argv[1] and lists every file of the tree
# (argv[2]) that building them imported: a mutant in any other file cannot change them.
PREBUILD = """
import json, sys
from pathlib import Path
from conftest import export_tiny_bundle, train_tiny_checkpoint
out, root = Path(sys.argv[1]), Path(sys.argv[2])
train_tiny_checkpoint(out / "checkpoint")
export_tiny_bundle(out / "checkpoint", out / "bundle")
files = {Path(m.__file__).resolve() for m in list(sys.modules.values())
         if getattr(m, "__file__", None)}
imported = sorted(str(f.relative_to(root)) for f in files if f.is_relative_to(root))
(out / "imported.json").write_text(json.dumps(imported))
"""


@dataclass(frozen=True)
class Prebuilt:
    folder: Path
    imported: frozenset[str]  # the tree's files that building them imported

    def serves(self, m: Mutant | None) -> bool:
        return m is None or m.file not in self.imported


def prebuild(snapshot: Path, work: Path) -> Prebuilt:
    """conftest's tiny checkpoint and bundle, built once by the unmutated tree."""
    repo = make_copy(snapshot, work)
    folder = work / "fixtures"
    env = {**copy_env(repo), "SPAMKIT_CACHE": str(work / "cache")}
    subprocess.run([sys.executable, "-c", PREBUILD, str(folder), str(repo)], cwd=repo / "tests",
                   env=env, check=True, timeout=TIMEOUT_S, capture_output=True)
    imported = json.loads((folder / "imported.json").read_text(encoding="utf-8"))
    return Prebuilt(folder, frozenset(imported))


def run_tests(repo: Path, tests: tuple[str, ...], log: Path, prebuilt: Path | None,
              workers: int) -> tuple[int, str]:
    """pytest's exit status and its first FAILED/ERROR line (or its last line)."""
    spread = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else ["-p", "no:xdist"]
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
           *spread, *tests]
    env = copy_env(repo) | ({"SPAMKIT_TEST_PREBUILT": str(prebuilt)} if prebuilt else {})
    try:
        result = subprocess.run(cmd, cwd=repo, env=env, capture_output=True,
                                text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s"
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    lines = result.stdout.splitlines()
    failed = [line for line in lines if re.match(r"(FAILED|ERROR) ", line)]
    return result.returncode, (failed or lines[-1:] or ["no output"])[0]


def run_mutant(m: Mutant | None, snapshot: Path, work: Path, tests: tuple[str, ...],
               prebuilt: Prebuilt, workers: int = 1) -> Outcome:
    """One mutant in a copy of its own (None: the unmutated control, which may spread its
    tests over `workers` processes)."""
    name = m.name if m else "control (no mutant)"
    t0 = time.monotonic()
    repo = make_copy(snapshot, work)
    where = check_imports(repo)
    if m:
        apply(m, repo)
    print(f"[{name}] spamkit from {where}", flush=True)
    code, line = run_tests(repo, tests, work / "pytest.log",
                           prebuilt.folder if prebuilt.serves(m) else None, workers)
    seconds = time.monotonic() - t0
    if code == 0:
        status = "passed" if m is None else "SURVIVED"
    elif code == 1:  # pytest: tests ran and some failed
        status = "FAILED" if m is None else "caught"
    else:  # interrupted, internal or usage error, nothing collected, timeout
        status = "NOT RUN"
        line = f"pytest exit {code}: {line}"
    print(f"[{name}] {status} in {seconds:.0f} s: {line}", flush=True)
    return Outcome(name, status, line, seconds)


def table(outcomes: list[Outcome]) -> str:
    by_name = {m.name: m for m in MUTANTS}
    rows = ["| mutant | file | tests | result | s |", "|---|---|---|---|---|"]
    for o in outcomes:
        m = by_name.get(o.name)
        tests = "<br>".join(m.tests) if m else "all of the above"
        rows.append(f"| {o.name} | {m.file if m else ''} | {tests} | {o.status}: {o.detail} "
                    f"| {o.seconds:.0f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="mutants to run, by name")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the unmutated run of all the tests")
    parser.add_argument("--keep", action="store_true", help="keep the copies and their logs")
    args = parser.parse_args()
    stale = problems()
    if stale:
        print("the mutant list is stale:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        print(f"no mutants named {sorted(unknown)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="spamkit-mutants-"))
    # Every copy is made from one snapshot taken now: edits to the checkout during the run
    # do not reach the mutants that start later.
    snapshot = base / "snapshot"
    try:
        copy_tree(ROOT, snapshot)
        prebuilt = prebuild(snapshot, base / "prebuilt")
        outcomes = []
        if not args.no_control:
            every = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
            outcomes.append(run_mutant(None, snapshot, base / "control", every, prebuilt,
                                       workers=args.jobs))
            if outcomes[0].status != "passed":
                print(f"the unmutated tests fail; see {base / 'control' / 'pytest.log'}",
                      file=sys.stderr)
                args.keep = True
                return 1
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes += list(pool.map(
                lambda im: run_mutant(im[1], snapshot, base / f"m{im[0]:02d}", im[1].tests,
                                      prebuilt),
                enumerate(chosen)))
    finally:
        if args.keep:
            print(f"copies and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("\n" + table(outcomes))
    bad = [o for o in outcomes if o.status not in ("caught", "passed")]
    print(f"\n{len(chosen) - len(bad)} of {len(chosen)} mutants caught in "
          f"{(time.monotonic() - started) / 60:.1f} min ({args.jobs} at a time)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
