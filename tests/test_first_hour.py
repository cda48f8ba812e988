"""A newcomer's first hour, run as they run it: the real CLI in a subprocess, its exit code and its words.

A read-only home is a real read-only folder: as root, whom permissions do not stop, the command runs without
the capabilities that override them (util-linux's `setpriv`), so the kernel refuses the writes. It stays root,
so it still reads the project and its venv wherever the clone lies (a folder only root may enter, say).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from proposal_world import approve, outbox, run_propose
from test_cli import REPO, clean_env, make_model, ok, wk

from weightkeeper.signing import KEYS_ENV

READ_COMMANDS = (("ledger",), ("stats",), ("review", "list"), ("archive", "list"))
HOME_COMMANDS = (("init",), ("scan",), ("review", "list"), ("ledger",), ("stats",),
                 ("registry", "add", "x", "--kind", "local", "--path", "/tmp", "--no-check"))


def refused(process: subprocess.CompletedProcess, *words: str) -> str:
    """The one clear line a refusal prints: exit 2, no traceback, and the words that say what to do."""
    assert process.returncode == 2, f"exit {process.returncode}\n{process.stdout}\n{process.stderr}"
    assert "Traceback" not in process.stderr, process.stderr
    message = process.stderr.strip()
    assert message.startswith("weightkeeper: error: ") and "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("command", HOME_COMMANDS, ids=" ".join)
def test_a_home_that_is_a_file_is_named_with_what_to_do(tmp_path: Path, command: tuple[str, ...]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a home\n")
    refused(wk(*command, home=a_file), str(a_file), "is a file", "--home")
    refused(wk(*command, home=a_file / "home"), str(a_file), "is a file", "--home")
    assert a_file.read_text() == "not a home\n"


@pytest.mark.parametrize("command", [c for c in HOME_COMMANDS if c[0] != "init"], ids=" ".join)
def test_only_init_and_demo_create_a_home(tmp_path: Path, command: tuple[str, ...]) -> None:
    typo = tmp_path / "hmoe"
    refused(wk(*command, home=typo), str(typo), "does not exist", "weightkeeper init")
    assert not typo.exists()


def test_init_creates_the_home_it_is_given(tmp_path: Path) -> None:
    ok(wk("init", home=tmp_path / "new" / "home"))
    assert (tmp_path / "new" / "home" / "weightkeeper.toml").is_file()


def as_reader(*args: str | Path, home: Path) -> subprocess.CompletedProcess:
    """`weightkeeper --home HOME ARGS` by someone who may read HOME and not write it."""
    command = [sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), *map(str, args)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "these tests run as root: they need util-linux's setpriv to drop the override capabilities"
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=REPO, timeout=120)


def make_read_only(home: Path) -> None:
    for path in (home, *home.rglob("*")):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
                   | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXOTH | stat.S_IXGRP if path.is_dir() else 0))


@pytest.fixture(scope="module")
def built_read_only_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with one scanned model and its ledger, then made read-only for everyone, and its reviewer's keys
    folder: built once (three commands), since the tests only read it."""
    base = tmp_path_factory.mktemp("read-only")
    home, models, env = base / "home", base / "models", clean_env(**{KEYS_ENV: str(base / "keys")})
    make_model(models, "alice/llama-ft")
    ok(wk("init", home=home, env=env))
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", models, home=home, env=env))
    ok(wk("scan", home=home, env=env))
    make_read_only(home)
    return base


@pytest.fixture
def read_only_home(built_read_only_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's read-only home; a copy of its reviewer's keys is this test's keys folder."""
    monkeypatch.setenv(KEYS_ENV, str(shutil.copytree(built_read_only_home / "keys", tmp_path / "keys")))
    return built_read_only_home / "home"


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_only_home_still_answers_what_only_reads(read_only_home: Path, command: tuple[str, ...]) -> None:
    done = ok(as_reader(*command, home=read_only_home))
    assert "weightkeeper ledger?" not in done.stderr
    if command == ("ledger",):
        assert "alice/llama-ft" in done.stdout and "appeared" in done.stdout


def test_a_read_only_home_refuses_a_write_with_what_to_do(read_only_home: Path) -> None:
    refused(as_reader("scan", home=read_only_home), str(read_only_home), "read-only")


def test_an_unknown_registry_or_model_is_named_not_answered_with_nothing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_model(models, "alice/llama-ft")
    ok(wk("init", home=tmp_path / "home"))
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", models, home=tmp_path / "home"))
    home = tmp_path / "home"
    refused(wk("ledger", "--registry", "lba", home=home), "lba", "lab")
    refused(wk("stats", "--registry", "lba", home=home), "lba", "lab")
    refused(wk("propose", "--model", "alice/nope", home=home), "alice/nope", "weightkeeper ledger")


def test_scanning_nothing_is_not_a_success(tmp_path: Path) -> None:
    ok(wk("init", home=tmp_path))
    refused(wk("scan", home=tmp_path), "no registries", "weightkeeper registry add")


def test_registry_add_checks_the_registry_first(tmp_path: Path) -> None:
    ok(wk("init", home=tmp_path))
    missing = tmp_path / "no-such-folder"
    message = refused(wk("registry", "add", "lab", "--kind", "local", "--path", missing, home=tmp_path), str(missing),
                      "--no-check")
    assert "[registries.lab]" not in (tmp_path / "weightkeeper.toml").read_text(), message
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", missing, "--no-check", home=tmp_path))
    assert "[registries.lab]" in (tmp_path / "weightkeeper.toml").read_text()


def test_a_bad_schedule_is_reported_as_the_flag_typed(tmp_path: Path) -> None:
    ok(wk("init", home=tmp_path))
    message = refused(wk("registry", "add", "lab", "--kind", "local", "--path", tmp_path, "--schedule", "every day",
                         home=tmp_path), "--schedule", "every day")
    assert "line" not in message


def test_counts_are_written_as_people_write_them(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_model(models, "alice/broken", card="---\ntags: [unclosed\n---\n")
    ok(wk("init", home=tmp_path / "home"))
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", models, home=tmp_path / "home"))
    line = ok(wk("scan", home=tmp_path / "home")).stdout
    assert "1 model in 1 page" in line and "1 problem:" in line, line
    assert "holds 1 model folder\n" in ok(wk("registry", "check", "lab", home=tmp_path / "home")).stdout


def test_act_prints_one_readable_line_per_action_and_json_for_scripts(deleted: Path) -> None:
    (outcome,) = run_propose(deleted)
    approve(deleted, outcome.review_id)
    done = ok(wk("act", home=deleted))
    first, summary = done.stdout.splitlines()
    (letter,) = outbox(deleted)
    assert first == f"review {outcome.review_id} action 0, publish to outbox acme: published: {letter}"
    assert summary == "1 approved action run"
    assert "{" not in done.stdout
    again = json.loads(ok(wk("act", "--json", home=deleted)).stdout)
    assert again == []


def test_tables_printed_to_a_pipe_fit_80_columns(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_model(models, "alice/" + "a-rather-long-model-name-" * 3)
    home = tmp_path / "home"
    ok(wk("init", home=home))
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", models, home=home))
    ok(wk("scan", home=home))
    for command in (("ledger",), ("registry", "list"), ("stats",)):
        lines = ok(wk(*command, home=home, env=clean_env())).stdout.splitlines()
        assert lines and max(map(len, lines)) <= 80, (command, max(map(len, lines)))


def test_the_do_not_contact_list_can_be_listed_and_undone(tmp_path: Path) -> None:
    ok(wk("init", home=tmp_path))
    ok(wk("contact", "block", "acme", "--reason", "asked us not to write", home=tmp_path))
    listed = json.loads(ok(wk("contact", "list", "--json", home=tmp_path)).stdout)
    assert [(row["owner"], row["reason"]) for row in listed] == [("acme", "asked us not to write")]
    assert "acme" in ok(wk("contact", "list", home=tmp_path)).stdout
    ok(wk("contact", "unblock", "acme", home=tmp_path))
    assert json.loads(ok(wk("contact", "list", "--json", home=tmp_path)).stdout) == []
    refused(wk("contact", "unblock", "acme", home=tmp_path), "acme", "not on the do-not-contact list")


@pytest.mark.parametrize("command", [("scan",), ("archive", "verify"), ("ledger",), ("review", "approve"), ()],
                         ids=lambda command: " ".join(command) or "weightkeeper")
def test_every_help_says_what_its_exit_codes_mean(command: tuple[str, ...]) -> None:
    text = " ".join(ok(wk(*command, "--help")).stdout.split())
    assert "Exit codes: 0 done;" in text and "2 nothing was done" in text and "130 interrupted" in text
    means_failure = {("scan",): "1 a registry could not be scanned", ("archive", "verify"): "1 a file does not match",
                     ("review", "approve"): "1 the decision was not confirmed", (): "1 a command ran"}
    if command in means_failure:
        assert means_failure[command] in text
    else:
        assert "; 1 " not in text
