"""What a user of any CLI reaches for: `--version`, tab completion in a real bash, help that
reads cleanly, choices refused in one line, `spamkit bench` on a file of their own unlabelled
messages, and the data cache where their OS keeps caches. Every test runs the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import SMS_FILE, SMS_ZIP, assert_clean_failure, spamkit_cli


def test_version_prints_the_installed_version():
    result = spamkit_cli("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"spamkit {metadata.version('spamkit')}\n"


def complete_in_bash(home: Path, *lines: str) -> list[str]:
    """What bash offers for TAB after each of `lines`, one line of output each, in a shell that
    read the .bashrc in `home`."""
    script = ['source "$HOME/.bashrc"']
    for words in lines:
        script += [f"COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))",
                   'COMPREPLY=(); _spamkit_completion spamkit; echo "${COMPREPLY[*]}"']
    result = subprocess.run(["bash", "--norc", "-c", "\n".join(script)], capture_output=True,
                            text=True, timeout=120, env=user_env(home), check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def user_env(home: Path) -> dict:
    """A user's shell environment: this HOME, and the venv's `spamkit` on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "HOME": str(home), "PATH": path}


def test_tab_completes_commands_and_choices_once_installed_in_bash(tmp_path):
    # Typed in bash, as a user would: typer finds the shell from its parent process (`&& :`
    # keeps bash from replacing itself with spamkit, which would leave make's sh as parent).
    installed = subprocess.run(["bash", "--norc", "-c", "spamkit --install-completion && :"],
                               capture_output=True, text=True, timeout=120,
                               env=user_env(tmp_path), check=False)
    assert installed.returncode == 0, installed.stderr

    offered = complete_in_bash(tmp_path, "spamkit cl", "spamkit classify bundle --device ''",
                               "spamkit eval run --precision fp")

    assert offered == ["classify", "cpu cuda auto", "fp16 fp32"]


@pytest.mark.parametrize("command", [None, "train", "classify", "bench"])
def test_help_labels_no_flag_bool_and_no_option_str(command):
    result = spamkit_cli(*filter(None, [command, "--help"]), env={"COLUMNS": "200"})

    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout and "<str>" not in result.stdout, result.stdout
    assert "Usage: spamkit " in result.stdout


@pytest.mark.parametrize("command, option, value, allowed", [
    ("classify", "--device", "gpu", "cpu, cuda, auto"),
    ("eval", "--precision", "int4", "int8, fp16, fp32"),
])
def test_a_value_outside_the_choices_is_one_line_naming_them(command, option, value, allowed,
                                                             tmp_path):
    result = spamkit_cli(command, tmp_path, option, value)

    assert result.returncode == 2
    assert_clean_failure(result, f"'{option}'", f"'{value}' is not one of {allowed}")


# -----------------------------------------------------------------------------
# spamkit bench on a user's own messages

MESSAGES = ["Free entry in 2 a wkly comp to win FA Cup final tkts", "Ok lar... Joking wif u oni",
            "Are you coming to dinner, tonight?", 'She said "call me", then left']
SMALL = ("--messages", "3", "--throughput-messages", "4", "--warmup", "1", "--json")


@pytest.mark.parametrize("name, content, column", [
    ("mine.csv", "id,body\n" + "".join(f'{i},"{m.replace(chr(34), 2 * chr(34))}"\n'
                                       for i, m in enumerate(MESSAGES)), "body"),
    ("mine.txt", "".join(m + "\n" for m in MESSAGES), "text"),
], ids=["csv", "lines"])
def test_bench_runs_on_a_file_of_unlabelled_messages(tiny_bundle, tmp_path, name, content,
                                                     column):
    data = tmp_path / name
    data.write_text(content, encoding="utf-8")

    result = spamkit_cli("bench", tiny_bundle, "--data", data, "--text-column", column, *SMALL)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data"] == str(data)
    assert report["throughput"]["messages"] == len(MESSAGES)
    assert report["latency_ms"]["messages"] == 3


def test_bench_text_column_without_data_says_to_give_the_file(tiny_bundle):
    result = spamkit_cli("bench", tiny_bundle, "--text-column", "body")

    assert_clean_failure(result, "--text-column", "--data")


# -----------------------------------------------------------------------------
# the data cache


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is Linux's convention")
def test_the_download_is_cached_where_the_os_keeps_caches_unless_spamkit_cache_says(
        tmp_path, serve, monkeypatch):
    url, requests = serve(SMS_ZIP.read_bytes())
    monkeypatch.delenv("SPAMKIT_CACHE")
    env = {"SPAMKIT_DATA_URL": url, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "HOME": str(tmp_path / "home")}

    first = spamkit_cli("data", env=env)
    assert first.returncode == 0, first.stderr
    cached = tmp_path / "xdg" / "spamkit" / "SMSSpamCollection"
    assert cached.read_bytes() == SMS_FILE.read_bytes()
    assert spamkit_cli("data", env=env).returncode == 0  # the cached copy: no second download
    assert len(requests) == 1

    pinned = spamkit_cli("data", env={**env, "SPAMKIT_CACHE": str(tmp_path / "mine")})
    assert pinned.returncode == 0, pinned.stderr
    assert (tmp_path / "mine" / "SMSSpamCollection").is_file()
    assert len(requests) == 2
    assert not (tmp_path / "home").exists()
