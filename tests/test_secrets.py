"""Secrets never leak: a server that echoes the credential it was sent (`401 Invalid token <token>`, as a
header, a text body or a JSON error; as it is, URL-encoded or inside a Basic credential) gets it into no
file under the home (ledger, WAL, checkpoints, outbox, archive) and no output, whether it answers a scan,
`registry check`, `watch`, a publish or an archive. Real servers on 127.0.0.1, the real command."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fake_hub import FakeHub
from http_fakes import Fault, FakeServer, Reply, Request
from proposal_world import approve, run_propose
from test_archive_actions import WEIGHTS, approve_archive, the_review
from test_cli import REPO, clean_env, ok, wk
from test_publish_channels import write_proposals

from tools.llm import LLMError
from weightkeeper import config
from weightkeeper.cli.main import main
from weightkeeper.cli.scanning import scan_registries
from weightkeeper.config import LLMSettings
from weightkeeper.secrets import scrub, scrubbed

TOKEN_ENV = "WK_TEST_ECHOED_TOKEN"
TOKEN = "hf_wkEcho/Secret+Value=0123456789abcdef"  # '/', '+' and '=' make its URL-encoded form differ
PLACEHOLDER = f"[secret ${TOKEN_ENV}]"


def basic(user: str, token: str = TOKEN) -> str:
    return base64.b64encode(f"{user}:{token}".encode()).decode()


def leaked_forms(token: str = TOKEN) -> list[bytes]:
    """The token as a server may echo it: as it is, URL-encoded, and inside Basic credentials."""
    return [token.encode(), quote(token, safe="").encode(), *(basic(user, token).encode() for user in ("", "u", "us"))]


def assert_nothing_holds_the_token(home: Path, *outputs: str) -> None:
    """No byte of any file under the home, nor any output, holds a form of the token."""
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.name.startswith("ledger.sqlite3") for path in files)
    for path in files:
        data = path.read_bytes()
        assert not [form for form in leaked_forms() if form in data], path
    for output in outputs:
        assert not [form for form in leaked_forms() if form.decode() in output], output


# -- the one scrub ----------------------------------------------------------------------------------------------

@pytest.fixture
def named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config.RegistryConfig("echo", "hf", {"author": "acme"}, token_env=TOKEN_ENV)  # a config naming the variable


def test_scrub_replaces_each_form_of_a_configured_value_and_nothing_else(named: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert scrub(f"HTTP 401: Invalid token {TOKEN}") == f"HTTP 401: Invalid token {PLACEHOLDER}"
    assert scrub(f"?token={quote(TOKEN, safe='')}&x=1") == f"?token={PLACEHOLDER}&x=1"
    for user in ("", "u", "us", "use", "alice"):  # the token at each offset within a base64 group
        echoed = scrub(f"Invalid credentials Basic {basic(user)}")
        assert PLACEHOLDER in echoed and basic(user) not in echoed
    assert scrubbed({"error": [f"a {TOKEN}", 401], "ok": True}) == {"error": [f"a {PLACEHOLDER}", 401], "ok": True}
    assert scrub("HTTP 401: Bad credentials") == "HTTP 401: Bad credentials"
    monkeypatch.setenv("WK_TEST_UNNAMED", "unnamed-secret-value")  # a variable no config names is not a secret
    assert scrub("unnamed-secret-value") == "unnamed-secret-value"
    monkeypatch.setenv(TOKEN_ENV, "short")  # too short to be a token: scrubbing it would eat ordinary words
    assert scrub("a short note") == "a short note"


def test_an_llm_error_quoting_the_key_records_no_key(named: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_TEST_LLM_ECHO_KEY", "sk-wkLlmEchoKey0123456789")
    LLMSettings("http://127.0.0.1:9/v1", "m", api_key_env="WK_TEST_LLM_ECHO_KEY")
    error = LLMError("HTTP 401 for sk-wkLlmEchoKey0123456789", "the server said: Invalid key sk-wkLlmEchoKey0123456789")
    assert "sk-wkLlmEchoKey0123456789" not in str(error) + error.reason
    assert error.reason == "HTTP 401 for [secret $WK_TEST_LLM_ECHO_KEY]"


# -- scans, `registry check` and `watch`: the real command -------------------------------------------------------

ECHOES: dict[str, tuple[str, Callable[[Request], Reply]]] = {
    # the Hub quotes X-Error-Message on a refusal
    "hf-header": ("hf", lambda request: Reply(401, b"", {"X-Error-Message": f"Invalid token {TOKEN}"})),
    "hf-basic": ("hf", lambda request: Reply(401, b"", {"X-Error-Message": f"Invalid credentials Basic {basic('u')}"})),
    # MLflow's adapter quotes the body of an answer it cannot use
    "mlflow-body": ("mlflow", lambda request: Reply(400, f"Invalid token {quote(TOKEN, safe='')}".encode(),
                                                   {"Content-Type": "text/plain"})),
    "mlflow-json": ("mlflow", lambda request: Reply.json(
        {"error_code": "UNAUTHENTICATED", "message": f"Invalid token {TOKEN}"}, 400)),
}


def echoing_home(tmp_path: Path, kind: str, url: str) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    options = ["--endpoint", url, "--author", "acme"] if kind == "hf" else ["--url", url]
    ok(wk("registry", "add", "echo", "--kind", kind, *options, "--token-env", TOKEN_ENV, "--no-check", home=home))
    return home, clean_env(**{TOKEN_ENV: TOKEN})


@pytest.mark.parametrize("echo", ECHOES)
def test_a_scan_answered_with_the_echoed_token_stores_and_prints_only_a_placeholder(tmp_path: Path,
                                                                                    echo: str) -> None:
    kind, route = ECHOES[echo]
    with FakeServer(route) as server:
        home, env = echoing_home(tmp_path, kind, server.url)
        scanned = wk("scan", home=home, env=env)
        summary = wk("scan", "--json", home=home, env=env)
    ledger = wk("ledger", "--format", "jsonl", home=home, env=env)
    assert scanned.returncode == summary.returncode == 1, scanned.stderr
    (result,) = json.loads(summary.stdout)
    assert result["status"] == "failed" and PLACEHOLDER in result["error"]  # the message says what, the token not
    assert PLACEHOLDER in scanned.stdout
    with sqlite3.connect(home / "ledger.sqlite3") as conn:
        errors = [error for (error,) in conn.execute("SELECT error FROM scans")]
    assert errors and all(PLACEHOLDER in error for error in errors)
    assert_nothing_holds_the_token(home, *(p.stdout + p.stderr for p in (scanned, summary, ledger)))


def test_registry_check_and_watch_print_the_placeholder_not_the_echoed_token(tmp_path: Path) -> None:
    kind, route = ECHOES["hf-header"]
    with FakeServer(route) as server:
        home, env = echoing_home(tmp_path, kind, server.url)
        check = wk("registry", "check", "echo", home=home, env=env)
        wk("scan", home=home, env=env)  # failed: unfinished, so `watch` scans it again at once
        watching = subprocess.Popen([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "watch",
                                     "--jitter", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=env, cwd=REPO)
        try:
            deadline = time.monotonic() + 60
            while scan_attempts(home) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            watching.send_signal(signal.SIGTERM)
            out, err = watching.communicate(timeout=60)
    assert check.returncode == 1 and f"Invalid token {PLACEHOLDER}" in check.stderr
    assert f"Invalid token {PLACEHOLDER}" in out, out + err
    assert_nothing_holds_the_token(home, check.stdout + check.stderr, out + err)


def scan_attempts(home: Path) -> int:
    with sqlite3.connect(home / "ledger.sqlite3") as conn:
        (attempts,) = conn.execute("SELECT COALESCE(MAX(attempts), 0) FROM scans WHERE status = 'failed'").fetchone()
    return attempts


# -- the executor: a publish and an archive that fail ------------------------------------------------------------

CHANNELS: dict[str, tuple[str, Callable[[Request], Reply]]] = {
    "github_issue": ('channel = "github_issue"\ngithub_repo = "acme/models"\ngithub_api = "{url}"\n'
                     f'github_token_env = "{TOKEN_ENV}"',
                     lambda request: Reply.json({"message": f"Bad credentials: {TOKEN}"}, 401)),
    "webhook": (f'channel = "webhook"\nwebhook_url = "{{url}}/hook"\nwebhook_token_env = "{TOKEN_ENV}"',
                lambda request: Reply(401, f"Invalid token {TOKEN}".encode(), {"Content-Type": "text/plain"})),
    "hf_discussion": (f'channel = "hf_discussion"\nhf_endpoint = "{{url}}"\nhf_token_env = "{TOKEN_ENV}"',
                      lambda request: Reply(401, b"{}", {"X-Error-Message": f"Invalid token {TOKEN}",
                                                         "Content-Type": "application/json"})),
}


@pytest.fixture
def act(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[Path], str]]:
    """`weightkeeper act` in this process, with the token in the environment; returns what it printed."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def run(home: Path) -> str:
        capsys.readouterr()
        assert main(["act", "--home", str(home)]) == 0
        out, err = capsys.readouterr()
        return out + err

    yield run


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_publish_refused_with_the_echoed_token_records_action_failed_without_it(
        deleted: Path, act: Callable[[Path], str], channel: str) -> None:
    lines, route = CHANNELS[channel]
    with FakeServer(route) as server:
        write_proposals(deleted, lines.format(url=server.url))
        (outcome,) = run_propose(deleted, config.load(deleted).proposals)
        approve(deleted, outcome.review_id)
        printed = act(deleted)
    (failed,) = events(deleted, "action_failed")
    assert failed["error"].startswith("PublishError: ") and PLACEHOLDER in failed["error"], failed
    assert PLACEHOLDER in printed
    assert_nothing_holds_the_token(deleted, printed)


def test_an_archive_refused_with_the_echoed_token_records_archive_failed_without_it(
        proposal_home: Path, act: Callable[[Path], str]) -> None:
    with FakeHub(tokens={TOKEN: {"acme"}}) as hub:
        hub.add("acme/med-ft", files={"config.json": b'{"a": 1}', "model.safetensors": WEIGHTS})
        hub.add("acme/med-ft-v2", card_data={"base_model": "acme/med-ft"}, tags=["base_model:finetune:acme/med-ft"])
        config.add_registry(proposal_home, config.RegistryConfig(
            "hub", "hf", {"endpoint": hub.url, "author": "acme", "files": "acme/*"}, token_env=TOKEN_ENV))
        scan_registries(proposal_home, ["hub"], log=None)
        hub.update("acme/med-ft", private=True)
        scan_registries(proposal_home, ["hub"], log=None)
        run_propose(proposal_home)
        approve_archive(proposal_home, the_review(proposal_home))
        # The revision's file tree (read for the git blob ids) is refused, the token quoted back.
        hub.server.faults.append(Fault.http(401, {"Content-Type": "text/plain"}, f"Invalid token {TOKEN}".encode(),
                                            path_prefix="/api/models/acme/med-ft/tree/"))
        printed = act(proposal_home)
    (archive_failed,) = events(proposal_home, "archive_failed")
    (action_failed,) = events(proposal_home, "action_failed")
    assert PLACEHOLDER in archive_failed["reason"] and PLACEHOLDER in action_failed["error"]
    assert PLACEHOLDER in printed
    assert_nothing_holds_the_token(proposal_home, printed)


def events(home: Path, kind: str) -> list[dict]:
    with sqlite3.connect(config.load(home).ledger_path) as conn:
        return [json.loads(detail) for (detail,) in conn.execute("SELECT detail FROM events WHERE kind = ?", (kind,))]
