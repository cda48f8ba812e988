"""The `weightkeeper` command, run as a user runs it: a subprocess with its own home directory."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from weightkeeper.cli.main import build_parser
from weightkeeper.demo_models import apply_demo_changes, write_demo_registry
from weightkeeper.signing import KEYS_ENV

REPO = Path(__file__).resolve().parents[1]
CONFIG = "weightkeeper.toml"


def clean_env(**extra: str) -> dict[str, str]:
    # The reviewers' keys stay in the test's own folder (conftest.py), never the user's.
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEIGHTKEEPER") or key == KEYS_ENV}
    env.update(extra)
    return env


def wk(*args: str | Path, home: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `weightkeeper [--home HOME] ARGS...` and return the finished process (text output)."""
    command = [sys.executable, "-m", "weightkeeper.cli.main"]
    if home is not None:
        command += ["--home", str(home)]
    command += [str(arg) for arg in args]
    return subprocess.run(command, capture_output=True, text=True, env=env or clean_env(), cwd=REPO, timeout=120)


def ok(process: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert process.returncode == 0, f"exit {process.returncode}\nstdout:\n{process.stdout}\nstderr:\n{process.stderr}"
    return process


def make_model(root: Path, name: str, *, card: str = "---\nlicense: mit\n---\n# model\n",
               weights: bytes | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "_name": name}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(weights if weights is not None else f"weights of {name}".encode())
    (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


def jsonl(process: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in ok(process).stdout.splitlines() if line.strip()]


# -- help, init, registries ---------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if action.choices and action.dest != "help"
                     and isinstance(action.choices, dict)]
    commands = set(subparsers.choices)
    assert {"init", "registry", "scan", "ledger", "stats", "demo"} <= commands
    process = ok(wk("--help"))
    for command in commands:
        assert re.search(rf"^\s+{re.escape(command)}\b", process.stdout, re.MULTILINE), f"{command} not in --help"
    assert "--home" in process.stdout
    scan_help = " ".join(ok(wk("scan", "--help")).stdout.split())
    assert "Exit codes: 0 done; 1 a registry could not be scanned" in scan_help


def test_no_command_prints_help_and_exits_2(tmp_path: Path) -> None:
    process = wk(home=tmp_path / "home")
    assert process.returncode == 2
    assert "COMMAND" in process.stdout


def test_init_writes_a_commented_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    process = ok(wk("init", home=home))
    config = home / CONFIG
    assert str(config) in process.stdout
    text = config.read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) >= 5
    assert "token_env" in text and "registry add" in text
    assert tomllib.loads(text) == {"ledger": {"path": "ledger.sqlite3"},
                                   "scan": {"commit_records": 10000, "commit_seconds": 1.0},
                                   "proposals": {"cooldown_days": 30, "do_not_contact": [], "channel": "outbox",
                                                 "critic_rounds": 2, "auto_propose": False},
                                   "memory": {"enabled": True, "path": "memory", "precedents": 3,
                                              "min_similarity": 0.88, "near_duplicate": 0.95},
                                   "archive": {"path": "archive", "max_object_gb": 500, "fixity": ["sha1"],
                                               "verify_schedule": "30 3 * * 0"}}
    assert (home / "ledger.sqlite3").is_file()
    # The first reviewer, its public key in the ledger and its private key in the keys folder, not the home.
    assert f"reviewer {getpass.getuser()}: the ledger's first" in process.stdout
    with closing(sqlite3.connect(home / "ledger.sqlite3")) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM reviewers")] == [getpass.getuser()]
    assert list(Path(os.environ[KEYS_ENV]).glob("*.ed25519")) and not list(home.rglob("*.ed25519"))
    # ...and pinned as the ledger's root in this user's witness, beside the keys.
    witness = Path(os.environ[KEYS_ENV]) / "witness.json"
    assert "pinned as its root reviewer" in process.stdout and str(witness) in process.stdout
    assert str((home / "ledger.sqlite3").resolve()) in witness.read_text() and not list(home.rglob("witness*"))

    root = tmp_path / "registry"
    make_model(root, "acme/alpha")
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", root, home=home))
    ok(wk("scan", home=home))
    configured = config.read_text(encoding="utf-8")

    refused = wk("init", home=home)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--force" in refused.stderr and str(config) in refused.stderr
    assert config.read_text(encoding="utf-8") == configured

    ok(wk("init", "--force", home=home))
    assert config.read_text(encoding="utf-8") == text
    assert json.loads(ok(wk("registry", "list", "--json", home=home)).stdout) == []
    # The ledger is kept either way.
    assert [row["event"] for row in jsonl(wk("ledger", "--format", "jsonl", home=home))] == ["appeared"]


def test_registry_add_and_list(tmp_path: Path) -> None:
    home, first, second = tmp_path / "home", tmp_path / "models", tmp_path / "more models"
    home.mkdir()  # only `init` and `demo` create a home
    first.mkdir(), second.mkdir()
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", first, home=home))
    added = ok(wk("registry", "add", "nightly_2", "--kind", "local", "--path", second, "--schedule", "0 3 * * *",
                  home=home))
    assert "nightly_2" in added.stdout
    listed = json.loads(ok(wk("registry", "list", "--json", home=home)).stdout)
    assert listed == [
        {"name": "lab", "kind": "local", "location": str(first.resolve()), "schedule": "17 * * * *",
         "token_env": None},
        {"name": "nightly_2", "kind": "local", "location": str(second.resolve()), "schedule": "0 3 * * *",
         "token_env": None},
    ]
    table = ok(wk("registry", "list", home=home)).stdout
    assert "lab" in table and "nightly_2" in table


def test_registry_add_relative_path_is_stored_absolute(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    (tmp_path / "rel").mkdir()
    command = [sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home),
               "registry", "add", "lab", "--kind", "local", "--path", "rel"]
    ok(subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=60))
    (listed,) = json.loads(ok(wk("registry", "list", "--json", home=home)).stdout)
    assert listed["location"] == str((tmp_path / "rel").resolve())


def test_registry_add_duplicate_name_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    (tmp_path / "a").mkdir()
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", tmp_path / "a", home=home))
    before = (home / CONFIG).read_text(encoding="utf-8")
    duplicate = wk("registry", "add", "lab", "--kind", "local", "--path", tmp_path / "b", home=home)
    assert duplicate.returncode == 2
    assert "'lab' already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    assert (home / CONFIG).read_text(encoding="utf-8") == before


def test_registry_add_local_needs_a_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    missing = wk("registry", "add", "lab", "--kind", "local", home=home)
    assert missing.returncode == 2 and "--path" in missing.stderr
    assert json.loads(ok(wk("registry", "list", "--json", home=home)).stdout) == []


def test_registry_add_takes_each_kinds_own_options_into_the_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    ok(wk("registry", "add", "hub", "--kind", "hf", "--author", "acme", "--filter",
          "base_model:finetune:meta-llama/Llama-3.1-8B", "--token-env", "HF_TOKEN", "--schedule", "5 * * * *",
          "--no-check", home=home))
    ok(wk("registry", "add", "ft", "--kind", "openai", "--base-url", "http://127.0.0.1:9/v1",
          "--api-key-env", "TEAM_OPENAI_KEY", "--deprecations", "deprecations.md", "--no-check", home=home))
    ok(wk("registry", "add", "mlf", "--kind", "mlflow", "--url", "http://127.0.0.1:5000", "--no-check", home=home))
    ok(wk("registry", "add", "llamas", "--kind", "ollama", "--no-check", home=home))
    tables = tomllib.loads((home / CONFIG).read_text(encoding="utf-8"))["registries"]
    assert tables["hub"] == {"kind": "hf", "author": "acme", "filter": "base_model:finetune:meta-llama/Llama-3.1-8B",
                             "schedule": "5 * * * *", "token_env": "HF_TOKEN"}
    assert tables["ft"]["token_env"] == "TEAM_OPENAI_KEY"
    assert tables["ft"]["deprecations"] == str(REPO / "deprecations.md")
    listed = {row["name"]: row for row in json.loads(ok(wk("registry", "list", "--json", home=home)).stdout)}
    assert listed["hub"]["location"] == "https://huggingface.co/api/models?author=acme&filter=" \
                                        "base_model:finetune:meta-llama/Llama-3.1-8B"
    assert listed["ft"]["location"] == "http://127.0.0.1:9/v1"
    assert listed["llamas"]["location"] == "http://127.0.0.1:11434"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--kind", "hf"), "at least one of --author, --search, --filter"),
        (("--kind", "mlflow"), "needs --url"),
        (("--kind", "ollama", "--author", "acme"), "--author does not apply to a ollama registry"),
        (("--kind", "local", "--path", ".", "--url", "http://x"), "--url does not apply"),
        (("--kind", "mlflow", "--url", "ftp://x"), "http:// or https:// URL"),
    ],
)
def test_registry_add_refuses_options_of_another_kind_or_missing_ones(tmp_path: Path, args, needle) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    refused = wk("registry", "add", "r", *args, home=home)
    assert refused.returncode == 2 and needle in refused.stderr, refused.stderr
    assert json.loads(ok(wk("registry", "list", "--json", home=home)).stdout) == []


def test_registry_check_says_what_it_verified_or_precisely_what_is_wrong(tmp_path: Path) -> None:
    home, root = tmp_path / "home", tmp_path / "models"
    home.mkdir()  # only `init` and `demo` create a home
    make_model(root, "acme/alpha")
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", root, home=home))
    assert "holds 1 model folder" in ok(wk("registry", "check", "lab", home=home)).stdout
    shutil.rmtree(root)
    missing = wk("registry", "check", "lab", home=home)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    ok(wk("registry", "add", "ft", "--kind", "openai", "--api-key-env", "NOT_SET_ANYWHERE", "--no-check", home=home))
    unset = wk("registry", "check", "ft", home=home)
    assert unset.returncode == 1 and "$NOT_SET_ANYWHERE, which is not set" in unset.stderr
    unknown = wk("registry", "check", "nope", home=home)
    assert unknown.returncode == 2 and "no registry named 'nope'" in unknown.stderr


def test_a_registry_that_cannot_be_opened_fails_alone_and_the_others_still_scan(tmp_path: Path) -> None:
    home, root = tmp_path / "home", tmp_path / "models"
    home.mkdir()  # only `init` and `demo` create a home
    make_model(root, "acme/alpha")
    ok(wk("registry", "add", "ft", "--kind", "openai", "--api-key-env", "NOT_SET_ANYWHERE", "--no-check", home=home))
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", root, home=home))
    scanned = wk("scan", "--json", home=home)
    assert scanned.returncode == 1
    summary = {row["registry"]: row for row in json.loads(scanned.stdout)}
    assert summary["ft"]["status"] == "failed" and "NOT_SET_ANYWHERE" in summary["ft"]["error"]
    assert summary["lab"]["status"] == "complete" and summary["lab"]["events"] == {"appeared": 1}


@pytest.mark.parametrize("name", ["bad name", "a]b", "-leading-dash", "x" * 65])
def test_registry_add_invalid_name_is_a_usage_error(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    bad = wk("registry", "add", "--kind", "local", "--path", tmp_path, "--", name, home=home)
    assert bad.returncode == 2, bad.stderr
    assert "letters, digits" in bad.stderr and name in bad.stderr
    assert "Traceback" not in bad.stderr
    assert json.loads(ok(wk("registry", "list", "--json", home=home)).stdout) == []


def test_registry_name_with_a_dot_can_be_added_and_scanned(tmp_path: Path) -> None:
    """Names may use '.', as `registry add --help` and the config's rules say."""
    home, root = tmp_path / "home", tmp_path / "models"
    home.mkdir()  # only `init` and `demo` create a home
    make_model(root, "acme/alpha")
    added = wk("registry", "add", "team.models", "--kind", "local", "--path", root, home=home)
    assert added.returncode == 0, added.stderr
    (listed,) = json.loads(ok(wk("registry", "list", "--json", home=home)).stdout)
    assert listed["name"] == "team.models"
    (summary,) = json.loads(ok(wk("scan", "team.models", "--json", home=home)).stdout)
    assert summary["registry"] == "team.models" and summary["events"] == {"appeared": 1}


# -- scanning -----------------------------------------------------------------------------------


def test_scan_exit_codes_and_json_summary(tmp_path: Path) -> None:
    home, good, gone = tmp_path / "home", tmp_path / "good", tmp_path / "not-mounted"
    home.mkdir()  # only `init` and `demo` create a home
    make_model(good, "acme/alpha")
    make_model(good, "acme/beta")
    make_model(good, "acme/broken", card="---\ntags: [unclosed\n---\n")
    ok(wk("registry", "add", "good", "--kind", "local", "--path", good, home=home))

    first = ok(wk("scan", "--json", home=home))
    (summary,) = json.loads(first.stdout)
    assert summary["registry"] == "good" and summary["status"] == "complete"
    assert summary["events"] == {"appeared": 2}
    assert summary["models_seen"] == 3
    assert [problem["model"] for problem in summary["problems"]] == ["acme/broken"]
    assert "not valid YAML" in summary["problems"][0]["message"]
    assert summary["error"] is None

    human = ok(wk("scan", home=home))
    assert "good: scan" in human.stdout and "complete" in human.stdout and "acme/broken" in human.stdout

    ok(wk("registry", "add", "gone", "--kind", "local", "--path", gone, "--no-check", home=home))
    make_model(good, "acme/gamma")
    failed = wk("scan", "--json", home=home)
    assert failed.returncode == 1, failed.stderr
    results = {result["registry"]: result for result in json.loads(failed.stdout)}
    assert results["good"]["status"] == "complete" and results["good"]["events"] == {"appeared": 1}
    assert results["gone"]["status"] == "failed"
    assert str(gone) in results["gone"]["error"]
    assert results["gone"]["events"] == {}

    assert ok(wk("scan", "good", home=home)).returncode == 0
    only_gone = wk("scan", "gone", home=home)
    assert only_gone.returncode == 1 and str(gone) in only_gone.stdout

    unknown = wk("scan", "nope", home=home)
    assert unknown.returncode == 2
    assert "no registry named 'nope'" in unknown.stderr and "good" in unknown.stderr
    assert "Traceback" not in unknown.stderr


REGISTRY_TABLE = '[ledger]\npath = "ledger.sqlite3"\n\n[registries.lab]\n'


@pytest.mark.parametrize(
    ("body", "line", "needles"),
    [
        ('kind = "local"\npath = /srv/models\n', 6, ("not valid TOML",)),
        ('kind = "s3"\npath = "/srv/models"\n', 5, ("key 'kind'", "unknown registry kind 's3'")),
        ('kind = "local"\nschedule = "17 * * * *"\n', 4, ("needs `path`",)),
        ('kind = "local"\npath = "/srv/models"\ntoken_env = "hf-AbC.dEf/123"\n', 7,
         ("key 'token_env'", "name* of an environment variable")),
        ('kind = "local"\npath = "/srv/models"\nurl = "https://example.org"\n', 7, ("key 'url'",)),
        ('kind = "local"\npath = "/srv/models"\nschedule = "hourly"\n', 7, ("key 'schedule'", "cron")),
    ],
    ids=["invalid-toml", "unknown-kind", "missing-path", "token-not-a-name", "unknown-key", "bad-schedule"],
)
def test_malformed_config_is_a_usage_error_naming_file_line_and_key(
    tmp_path: Path, body: str, line: int, needles: tuple[str, ...]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = home / CONFIG
    config.write_text(REGISTRY_TABLE + body, encoding="utf-8")
    for command in (("scan",), ("registry", "list")):
        process = wk(*command, home=home)
        assert process.returncode == 2, process.stdout
        assert process.stderr.startswith("weightkeeper: error: ")
        assert str(config) in process.stderr
        assert f"line {line}" in process.stderr
        for needle in needles:
            assert needle in process.stderr
        assert "Traceback" not in process.stderr
        assert "hf-AbC.dEf/123" not in process.stderr  # a token pasted by mistake is not echoed


def test_config_error_in_a_quoted_registry_table_names_its_line(tmp_path: Path) -> None:
    """TOML needs `[registries."team.models"]` for a dotted name; errors inside it still name the line."""
    home = tmp_path / "home"
    home.mkdir()
    (home / CONFIG).write_text('[registries."team.models"]\nkind = "local"\npath = "/srv/models"\n'
                               'schedule = "often"\n', encoding="utf-8")
    process = wk("scan", home=home)
    assert process.returncode == 2
    assert "line 4" in process.stderr and "key 'schedule'" in process.stderr


# -- the ledger, read back ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two registries scanned twice; between the scans, lab lost two models, renamed one, changed two."""
    tmp = tmp_path_factory.mktemp("history")
    home, lab, other = tmp / "home", tmp / "lab", tmp / "other"
    home.mkdir()
    for name in ("acme/keep", "acme/gone1", "acme/gone2", "acme/old", "acme/upd", "acme/vis"):
        make_model(lab, name)
    make_model(other, "zeta/one")
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", lab, home=home))
    ok(wk("registry", "add", "other", "--kind", "local", "--path", other, home=home))
    ok(wk("scan", home=home))

    shutil.rmtree(lab / "acme/gone1")
    shutil.rmtree(lab / "acme/gone2")
    os.rename(lab / "acme/old", lab / "acme/new")
    (lab / "acme/upd/model.safetensors").write_bytes(b"retrained weights, a different size")
    (lab / "acme/vis/README.md").write_text("---\nlicense: mit\nvisibility: private\n---\n# model\n",
                                            encoding="utf-8")
    make_model(other, "zeta/two")
    ok(wk("scan", home=home))
    rows = jsonl(wk("ledger", "--format", "jsonl", home=home))
    return {"home": home, "rows": rows}


def test_ledger_jsonl_rows(history: dict) -> None:
    rows = history["rows"]
    assert len(rows) == 7 + 1 + 2 * 2 + 3  # appeared; zeta/two appeared; missing+deleted twice; renamed, updated, visibility
    for row in rows:
        assert {"event", "registry", "model", "at"} <= set(row)
        moment = datetime.fromisoformat(row["at"])
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - moment) < timedelta(hours=1)
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)
    appeared = sorted((row["registry"], row["model"]) for row in rows if row["event"] == "appeared")
    assert appeared == [("lab", f"acme/{name}") for name in sorted(("keep", "gone1", "gone2", "old", "upd", "vis"))] + [
        ("other", "zeta/one"), ("other", "zeta/two")]
    others = sorted((row["event"], row["registry"], row["model"]) for row in rows if row["event"] != "appeared")
    assert others == sorted([
        ("suspected_missing", "lab", "acme/gone1"), ("deleted", "lab", "acme/gone1"),
        ("suspected_missing", "lab", "acme/gone2"), ("deleted", "lab", "acme/gone2"),
        ("renamed", "lab", "acme/new"), ("updated", "lab", "acme/upd"), ("visibility_changed", "lab", "acme/vis"),
    ])
    renamed = next(row for row in rows if row["event"] == "renamed")
    assert renamed["detail"] == {"from": "acme/old", "to": "acme/new"}


def test_ledger_kind_filter(history: dict) -> None:
    home = history["home"]
    comma = jsonl(wk("ledger", "--kind", "deleted,renamed", "--format", "jsonl", home=home))
    assert sorted((row["event"], row["model"]) for row in comma) == [
        ("deleted", "acme/gone1"), ("deleted", "acme/gone2"), ("renamed", "acme/new")]
    repeated = jsonl(wk("ledger", "--kind", "deleted", "--kind", " renamed ,", "--format", "jsonl", home=home))
    assert repeated == comma
    assert jsonl(wk("ledger", "--kind", "archive_verified", "--format", "jsonl", home=home)) == []


def test_ledger_registry_filter(history: dict) -> None:
    home = history["home"]
    other = jsonl(wk("ledger", "--registry", "other", "--format", "jsonl", home=home))
    assert sorted(row["model"] for row in other) == ["zeta/one", "zeta/two"]
    assert {row["registry"] for row in other} == {"other"}
    lab = jsonl(wk("ledger", "--registry", "lab", "--kind", "appeared", "--format", "jsonl", home=home))
    assert len(lab) == 6 and {row["registry"] for row in lab} == {"lab"}


def test_ledger_model_filter_finds_a_renamed_model_by_either_name(history: dict) -> None:
    home = history["home"]
    by_old = jsonl(wk("ledger", "--model", "acme/old", "--format", "jsonl", home=home))
    by_new = jsonl(wk("ledger", "--model", "acme/new", "--format", "jsonl", home=home))
    assert by_old == by_new
    assert [(row["event"], row["model"]) for row in by_old] == [("appeared", "acme/old"), ("renamed", "acme/new")]
    gone = jsonl(wk("ledger", "--model", "acme/gone1", "--format", "jsonl", home=home))
    assert [row["event"] for row in gone] == ["appeared", "suspected_missing", "deleted"]
    never = wk("ledger", "--model", "acme/never", "--format", "jsonl", home=home)
    assert never.returncode == 2 and "no model named 'acme/never'" in never.stderr and not never.stdout


def test_ledger_since_filter(history: dict) -> None:
    home, rows = history["home"], history["rows"]
    second_scan = min(row["scan"] for row in rows if row["event"] != "appeared")
    cut = next(row for row in rows if row["scan"] == second_scan)["at"]
    expected = [row for row in rows if row["at"] >= cut]
    assert 0 < len(expected) < len(rows)

    assert jsonl(wk("ledger", "--since", cut, "--format", "jsonl", home=home)) == expected
    plus_two = datetime.fromisoformat(cut).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert jsonl(wk("ledger", "--since", plus_two, "--format", "jsonl", home=home)) == expected
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert jsonl(wk("ledger", "--since", yesterday, "--format", "jsonl", home=home)) == rows
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert jsonl(wk("ledger", "--since", tomorrow, "--format", "jsonl", home=home)) == []

    bad = wk("ledger", "--since", "last tuesday", home=home)
    assert bad.returncode == 2
    assert "--since 'last tuesday' is not an ISO date" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_ledger_csv_and_markdown(history: dict) -> None:
    home, rows = history["home"], history["rows"]
    text = ok(wk("ledger", "--format", "csv", home=home)).stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows)
    assert {"at", "event", "registry", "model", "detail"} <= set(parsed[0])
    for got, row in zip(parsed, rows, strict=True):
        assert (got["event"], got["registry"], got["model"], got["at"]) == (
            row["event"], row["registry"], row["model"], row["at"])
        assert json.loads(got["detail"]) == row["detail"]
    empty = ok(wk("ledger", "--format", "csv", "--kind", "archive_verified", home=home)).stdout
    assert next(csv.reader(io.StringIO(empty))) == ["id", "at", "event", "registry", "model", "detail"]

    markdown = ok(wk("ledger", "--format", "markdown", home=home)).stdout.splitlines()
    assert markdown[0] == "| at | event | registry | model | detail |"
    assert set(markdown[1].replace("|", "")) == {"-"}
    assert len(markdown) == 2 + len(rows)
    assert any("| renamed | lab | acme/new | acme/old → acme/new |" in line for line in markdown)

    table = ok(wk("ledger", "--kind", "renamed", home=home)).stdout
    assert "acme/new" in table and "renamed" in table


def test_stats_counts_deleted_and_persisting(history: dict) -> None:
    home = history["home"]
    figures = json.loads(ok(wk("stats", "--json", home=home)).stdout)
    models = figures["models"]
    assert (models["tracked"], models["persist"], models["deleted"], models["suspected_missing"]) == (8, 6, 2, 0)
    assert models["hidden"] == 1 and models["deleted_unarchived"] == 2 and models["archived"] == 0
    assert sum(sum(week.values()) for week in figures["weeks"].values()) == len(history["rows"])
    lab = json.loads(ok(wk("stats", "--registry", "lab", "--json", home=home)).stdout)["models"]
    assert (lab["tracked"], lab["persist"], lab["deleted"]) == (6, 4, 2)
    assert "deleted: 2" in ok(wk("stats", home=home)).stdout


# -- home directory -----------------------------------------------------------------------------


def test_home_before_or_after_the_command_and_from_the_environment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", tmp_path / "models", "--no-check", home=home))
    expected = ["lab"]

    def names(process: subprocess.CompletedProcess) -> list[str]:
        return [row["name"] for row in json.loads(ok(process).stdout)]

    assert names(wk("registry", "list", "--json", home=home)) == expected
    assert names(wk("registry", "list", "--json", "--home", home)) == expected
    assert names(wk("registry", "--home", home, "list", "--json")) == expected
    assert names(wk("registry", "list", "--json", env=clean_env(WEIGHTKEEPER_HOME=str(home)))) == expected
    # --home wins over the environment.
    other = tmp_path / "other-home"
    other.mkdir()
    assert names(wk("registry", "list", "--json", "--home", other, env=clean_env(WEIGHTKEEPER_HOME=str(home)))) == []
    ok(wk("init", env=clean_env(WEIGHTKEEPER_HOME=str(other))))
    assert (other / CONFIG).is_file()


# -- the demo -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_documents_every_scripted_change(tmp_path: Path, reviewer_keys_dir: Path) -> None:
    home = tmp_path / "demo-home"
    process = ok(wk("demo", "--home", home))
    assert "changes were documented" in process.stdout
    # The demo's reviewer signs and verifies with a keys folder and witness of its own: the user's stay as they were.
    assert list(reviewer_keys_dir.iterdir()) == [] and "pinned" not in process.stderr

    reference = tmp_path / "reference"
    write_demo_registry(reference)
    changes = apply_demo_changes(reference)
    expected = {(change.kind, change.new_model_id or change.model_id) for change in changes}
    assert {kind for kind, _ in expected} == {"deleted", "renamed", "visibility_changed", "updated",
                                               "deprecation_announced"}

    rows = jsonl(wk("ledger", "--format", "jsonl", home=home))
    second = max(row["scan"] for row in rows if row["scan"] is not None)
    documented = {(row["event"], row["model"]) for row in rows
                  if row["scan"] == second and row["event"] not in ("suspected_missing", "restored")}
    assert documented == expected
    missing = {row["model"] for row in rows if row["event"] == "suspected_missing"}
    assert missing == {change.model_id for change in changes if change.kind == "deleted"}
    stats = json.loads(ok(wk("stats", "--json", home=home)).stdout)["models"]
    assert stats["deleted"] == 2 and stats["suspected_missing"] == 0
    # The deletions wait in the review queue as drafted proposals; nothing was sent. The deprecated model's
    # archive action was approved by the demo's scripted reviewer, and ran: the model is archived, its letter not
    # sent, so that review is partly executed.
    queued = json.loads(ok(wk("review", "list", "--json", home=home)).stdout)
    assert {(row["event"], row["status"]) for row in queued} == {("deleted", "pending"),
                                                                 ("deprecation_announced", "partly executed")}
    (partly,) = [row for row in queued if row["status"] == "partly executed"]
    assert [(action["kind"], action["state"]) for action in partly["actions"]] == [("publish", "not approved"),
                                                                                   ("archive", "executed")]
    archived = json.loads(ok(wk("archive", "list", "--json", home=home)).stdout)
    deprecated = next(change.model_id for change in changes if change.kind == "deprecation_announced")
    assert [row["id"] for row in archived] == [f"demo/{deprecated}"]
    assert stats["archived"] == 1
    assert {row["model"] for row in queued} >= {change.model_id for change in changes if change.kind == "deleted"}
    assert not (home / "outbox").exists()
    with closing(sqlite3.connect(home / "ledger.sqlite3")) as conn:  # the scripted approval says it was scripted
        assert {row[0] for row in conn.execute("SELECT channel FROM decisions")} == {"demo"}

    again = wk("demo", "--home", home)
    assert again.returncode == 2
    assert "already has a weightkeeper.toml" in again.stderr
    assert rows == jsonl(wk("ledger", "--format", "jsonl", home=home))


# -- secrets ------------------------------------------------------------------------------------


def test_token_value_is_never_written_under_home(tmp_path: Path) -> None:
    secret = "hf_wk7SECRETqZ9xV3pL0tokenVALUE"
    home, root = tmp_path / "home", tmp_path / "models"
    home.mkdir()  # only `init` and `demo` create a home
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")
    ok(wk("registry", "add", "lab", "--kind", "local", "--path", root, home=home))
    config = home / CONFIG
    config.write_text(config.read_text(encoding="utf-8") + 'token_env = "MY_SECRET_TOKEN"\n', encoding="utf-8")
    env = clean_env(MY_SECRET_TOKEN=secret)

    (listed,) = json.loads(ok(wk("registry", "list", "--json", home=home, env=env)).stdout)
    assert listed["token_env"] == "MY_SECRET_TOKEN"
    outputs = [ok(wk("scan", home=home, env=env)), ok(wk("scan", "--json", home=home, env=env))]
    shutil.rmtree(root / "acme/beta")
    outputs += [ok(wk("scan", home=home, env=env)), ok(wk("ledger", "--format", "jsonl", home=home, env=env)),
                ok(wk("stats", "--json", home=home, env=env))]
    assert any(row["event"] == "deleted" for row in jsonl(outputs[3]))

    for process in outputs:
        assert secret not in process.stdout and secret not in process.stderr
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.name.startswith("ledger.sqlite3") for path in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    assert "MY_SECRET_TOKEN" in config.read_text(encoding="utf-8")
