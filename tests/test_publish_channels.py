"""The publish channels beside the outbox (a Hub discussion, a GitHub issue, a webhook) against fakes that
speak real HTTP on 127.0.0.1: each publishes once per idempotency key, retries what is transient, explains
what is not, and never lets its token out; then the approval path end to end through a GitHub issue."""

from __future__ import annotations

import email.parser
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub
from fake_hub_discussions import FakeHubWithDiscussions
from fake_webhook import FakeWebhook
from http_fakes import Fault
from proposal_world import approve, queue, run_propose

from agents import executor
from tools.publish import PublishError, marker
from tools.publish.github_issue import GitHubIssuePublisher
from tools.publish.hf_discussion import HubDiscussionPublisher
from tools.publish.webhook import WebhookPublisher
from tools.registries.http import RetryPolicy
from weightkeeper import config
from weightkeeper.config import ProposalSettings
from weightkeeper.errors import ConfigError
from weightkeeper.ledger import Ledger
from weightkeeper.proposals import PlannedAction

GITHUB_TOKEN = "ghp_wkTestToken0123456789abcdefABCDEF"
HF_TOKEN = "hf_wkTestToken0123456789abcdef"
HOOK_TOKEN = "whsec_wkTestToken0123456789"
TOKENS = (GITHUB_TOKEN, HF_TOKEN, HOOK_TOKEN)
POLICY = RetryPolicy(attempts=3, first_backoff=0.01)
TITLE = "Preserving acme/alpha: a proposal after its deletion"
BODY = "## What happened\n\nacme/alpha was deleted [E1].\n"
KEY, OTHER_KEY = "a" * 64, "b" * 64


def payload(channel: str, target: str, endpoint: str | None = None) -> dict[str, Any]:
    bound = {"endpoint": endpoint} if endpoint else {}
    return PlannedAction("publish", channel, target, {"model": "acme/alpha", "registry": "hub", **bound}).payload(
        TITLE, BODY)


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The channels' tokens in the environment, and every log line checked for them after the test."""
    monkeypatch.setenv("WK_TEST_GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("WK_TEST_HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("WK_TEST_HOOK_TOKEN", HOOK_TOKEN)
    caplog.set_level(logging.DEBUG)
    yield
    assert not [token for token in TOKENS if token in caplog.text]


def assert_no_token(*values: object) -> None:
    text = json.dumps([str(value) if isinstance(value, BaseException) else value for value in values])
    assert not [token for token in TOKENS if token in text]


# -- GitHub issues ---------------------------------------------------------------------------------------------

@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens={GITHUB_TOKEN}, page_size=2) as fake:
        fake.server.hang_seconds = 0.6
        fake.add_repo("acme/models")
        for number in range(3):
            fake.add_issue("acme/models", f"an earlier issue {number}", None if number == 1 else "text",
                           state="closed" if number == 0 else "open")
        yield fake


def issues_publisher(github: FakeGitHub, labels: tuple[str, ...] = ()) -> GitHubIssuePublisher:
    return GitHubIssuePublisher(github.url, token_env="WK_TEST_GITHUB_TOKEN", labels=labels, policy=POLICY,
                                timeout=0.3)


def test_github_opens_one_issue_and_finds_it_again_by_its_marker_even_closed(github: FakeGitHub) -> None:
    publisher = issues_publisher(github, labels=("preservation",))
    first = publisher.publish(payload("github_issue", "acme/models", github.url), KEY)
    assert first == {"url": "https://github.com/acme/models/issues/4", "number": 4, "already_published": False}
    (post,) = github.posts()
    assert post.path == "/repos/acme/models/issues"
    assert post.headers["authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert post.headers["accept"] == "application/vnd.github+json"
    sent = post.json()
    assert (sent["title"], sent["labels"]) == (TITLE, ["preservation"])
    assert sent["body"].startswith(BODY.rstrip()) and sent["body"].endswith(marker(KEY))

    github.repos["acme/models"][-1]["state"] = "closed"  # a maintainer closed it: it was still published
    for later in range(2):  # newer issues move it to the second page
        github.add_issue("acme/models", f"a later issue {later}", "text")
    again = publisher.publish(payload("github_issue", "acme/models", github.url), KEY)
    assert again == {**first, "already_published": True}
    assert len(github.posts()) == 1 and len(github.repos["acme/models"]) == 6
    listings = [r for r in github.server.requests if r.method == "GET"]
    assert all(r.query["state"] == ["all"] and r.query["per_page"] == ["100"] for r in listings)
    assert [r.query.get("page") for r in listings][-2:] == [None, ["2"]]  # followed the Link to page 2

    other = publisher.publish(payload("github_issue", "acme/models", github.url), OTHER_KEY)
    assert (other["number"], other["already_published"], len(github.posts())) == (7, False, 2)
    assert_no_token(first, again, other)


@pytest.mark.parametrize("fault", [Fault.http(502), Fault.http(429, {"Retry-After": "0"}),
                                   Fault.http(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"}),
                                   Fault.reset(), Fault.timeout()], ids=["502", "429", "403-rate", "reset", "timeout"])
def test_github_transient_faults_are_retried(github: FakeGitHub, fault: Fault) -> None:
    github.server.faults.append(fault)
    detail = issues_publisher(github).publish(payload("github_issue", "acme/models", github.url), KEY)
    assert (detail["number"], detail["already_published"], len(github.posts())) == (4, False, 1)


def test_github_a_creation_answered_with_a_502_is_found_not_posted_again(github: FakeGitHub) -> None:
    github.lose_created_answers = 1
    detail = issues_publisher(github).publish(payload("github_issue", "acme/models", github.url), KEY)
    # The retry looked for the marker before posting: the issue GitHub made is the one published.
    assert (detail["number"], len(github.posts()), len(github.repos["acme/models"])) == (4, 1, 4)


@pytest.mark.parametrize(
    ("setup", "target", "message"),
    [
        (lambda g, m: m.setenv("WK_TEST_GITHUB_TOKEN", "ghp_revoked"), "acme/models",
         r"rejected the token in \$WK_TEST_GITHUB_TOKEN.*HTTP 401: Bad credentials"),
        (lambda g, m: None, "acme/nowhere", r"no repository acme/nowhere .*github_repo.*HTTP 404"),
        (lambda g, m: g.issues_disabled.add("acme/models"), "acme/models", r"issues are disabled in acme/models"),
        (lambda g, m: m.delenv("WK_TEST_GITHUB_TOKEN"), "acme/models",
         r"\$WK_TEST_GITHUB_TOKEN is not set.*github_token_env"),
    ],
    ids=["bad-token", "missing-repo", "issues-disabled", "token-unset"],
)
def test_github_refusals_say_what_to_do(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, setup: Any,
                                        target: str, message: str) -> None:
    setup(github, monkeypatch)
    with pytest.raises(PublishError, match=message) as refused:
        issues_publisher(github).publish(payload("github_issue", target, github.url), KEY)
    assert github.posts() == [] and len(github.server.requests) <= 1  # a refusal is not retried
    assert_no_token(refused.value)


def test_github_out_of_retries_is_a_publish_error(github: FakeGitHub) -> None:
    github.server.faults.extend([Fault.http(503, {"Retry-After": "0"})] * 3)
    with pytest.raises(PublishError, match="HTTP 503.*after 3 attempts"):
        issues_publisher(github).publish(payload("github_issue", "acme/models", github.url), KEY)
    assert github.posts() == []


# -- Hub discussions -------------------------------------------------------------------------------------------

@pytest.fixture
def hub() -> Iterator[FakeHubWithDiscussions]:
    with FakeHubWithDiscussions(tokens={HF_TOKEN: {"acme"}}) as fake:
        fake.add("acme/alpha")
        fake.add_discussion("acme/alpha", "Question about the license", "Is it apache-2.0?", author="bob")
        fake.add_discussion("acme/alpha", "An earlier note of ours", "Unrelated.")
        fake.add_discussion("acme/alpha", "Another question", f"quoting {marker('c' * 64)}", author="carol")
        yield fake


def discussions_publisher(hub: FakeHubWithDiscussions) -> HubDiscussionPublisher:
    return HubDiscussionPublisher(hub.url, token_env="WK_TEST_HF_TOKEN", policy=POLICY)


def test_hf_opens_one_discussion_on_the_model_repo_and_finds_it_again_by_its_marker(
        hub: FakeHubWithDiscussions) -> None:
    publisher = discussions_publisher(hub)
    first = publisher.publish(payload("hf_discussion", "acme/alpha", hub.url), KEY)
    assert first == {"url": f"{hub.url}/acme/alpha/discussions/4", "number": 4, "already_published": False}
    (creation,) = hub.creations()
    assert creation.headers["authorization"] == f"Bearer {HF_TOKEN}"
    assert creation.json()["title"] == TITLE and creation.json()["description"].endswith(marker(KEY))

    hub.add_discussion("acme/alpha", "A later one of ours", "Unrelated too.")  # ours is now on the second page
    again = publisher.publish(payload("hf_discussion", "acme/alpha", hub.url), KEY)
    assert again == {**first, "already_published": True}
    assert len(hub.creations()) == 1
    # Only the discussions the token's user opened are read: others' are neither opened nor trusted.
    opened = {r.path.rsplit("/", 1)[-1] for r in hub.server.requests if r.path.startswith(
        "/api/models/acme/alpha/discussions/")}
    assert opened <= {"2", "4", "5"}
    assert_no_token(first, again)


def test_hf_a_creation_answered_with_a_502_is_found_not_opened_again(hub: FakeHubWithDiscussions) -> None:
    hub.lose_created_answers = 1
    hub.server.faults.append(Fault.http(503, {"Retry-After": "0"}, path_prefix="/api/models/acme/alpha/discussions"))
    detail = discussions_publisher(hub).publish(payload("hf_discussion", "acme/alpha", hub.url), KEY)
    assert (detail["number"], len(hub.creations()), len(hub.discussions["acme/alpha"])) == (4, 1, 4)


@pytest.mark.parametrize(
    ("setup", "target", "message"),
    [
        (lambda h, m: m.setenv("WK_TEST_HF_TOKEN", "hf_revoked"), "acme/alpha",
         r"rejected the token in \$WK_TEST_HF_TOKEN \(HTTP 401"),
        (lambda h, m: None, "acme/deleted-ft",
         r"no model repo acme/deleted-ft .*HTTP 404.*another \[proposals\] channel"),
        (lambda h, m: h.discussions_disabled.add("acme/alpha"), "acme/alpha",
         r"HTTP 403: Discussions are disabled for this repo"),
        (lambda h, m: m.delenv("WK_TEST_HF_TOKEN"), "acme/alpha", r"\$WK_TEST_HF_TOKEN is not set.*hf_token_env"),
    ],
    ids=["bad-token", "deleted-repo", "discussions-disabled", "token-unset"],
)
def test_hf_refusals_say_what_to_do(hub: FakeHubWithDiscussions, monkeypatch: pytest.MonkeyPatch, setup: Any,
                                    target: str, message: str) -> None:
    setup(hub, monkeypatch)
    with pytest.raises(PublishError, match=message) as refused:
        discussions_publisher(hub).publish(payload("hf_discussion", target, hub.url), KEY)
    assert hub.creations() == []
    assert_no_token(refused.value)


# -- the webhook -----------------------------------------------------------------------------------------------

@pytest.fixture
def webhook() -> Iterator[FakeWebhook]:
    with FakeWebhook(token=HOOK_TOKEN) as fake:
        yield fake


def hook_publisher(webhook: FakeWebhook, token_env: str | None = "WK_TEST_HOOK_TOKEN") -> WebhookPublisher:
    return WebhookPublisher(webhook.hook, token_env=token_env, policy=POLICY)


def test_webhook_posts_once_with_an_idempotency_key_and_a_resend_carries_the_same_one(webhook: FakeWebhook) -> None:
    publisher = hook_publisher(webhook)
    first = publisher.publish(payload("webhook", webhook.hook), KEY)
    assert first == {"url": webhook.hook, "status": 201, "already_published": False}
    assert webhook.delivered[KEY] == {"title": TITLE, "body": BODY, "target": webhook.hook, "model": "acme/alpha",
                                      "registry": "hub", "idempotency_key": KEY}
    # A crash between the POST and recording its result: the re-send carries the same key, the receiver dedupes.
    again = publisher.publish(payload("webhook", webhook.hook), KEY)
    assert again == {**first, "status": 200, "already_published": True}
    posts = webhook.posts()
    assert [p.headers["idempotency-key"] for p in posts] == [KEY, KEY] and len(webhook.delivered) == 1
    assert posts[0].headers["authorization"] == f"Bearer {HOOK_TOKEN}"
    assert_no_token(first, again)


def test_webhook_retries_a_5xx_and_a_429_under_the_same_key(webhook: FakeWebhook) -> None:
    webhook.server.faults.extend([Fault.http(503), Fault.http(429, {"Retry-After": "0"})])
    detail = hook_publisher(webhook).publish(payload("webhook", webhook.hook), KEY)
    assert detail["status"] == 201 and len(webhook.delivered) == 1
    assert [p.headers["idempotency-key"] for p in webhook.posts()] == [KEY] * 3


def test_webhook_refusals_say_what_to_do(webhook: FakeWebhook, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PublishError, match="webhook_token_env.*HTTP 401"):
        hook_publisher(webhook, token_env=None).publish(payload("webhook", webhook.hook), KEY)
    monkeypatch.setenv("WK_TEST_HOOK_TOKEN", "whsec_revoked")
    with pytest.raises(PublishError, match=r"refused the token in \$WK_TEST_HOOK_TOKEN.*HTTP 401"):
        hook_publisher(webhook).publish(payload("webhook", webhook.hook), KEY)
    monkeypatch.setenv("WK_TEST_HOOK_TOKEN", HOOK_TOKEN)
    elsewhere = WebhookPublisher(webhook.url + "/nowhere", token_env="WK_TEST_HOOK_TOKEN", policy=POLICY)
    with pytest.raises(PublishError, match="check `webhook_url`.*HTTP 404"):
        elsewhere.publish(payload("webhook", webhook.url + "/nowhere"), KEY)
    posted = len(webhook.posts())
    # An action approved for another URL than the configured one is not sent anywhere, token and all.
    with pytest.raises(PublishError, match="approved for the webhook https://old.example/hook"):
        hook_publisher(webhook).publish(payload("webhook", "https://old.example/hook"), KEY)
    assert len(webhook.posts()) == posted and webhook.delivered == {}


# -- config, planning and the executor's channels ----------------------------------------------------------------

def write_proposals(home: Path, lines: str) -> None:
    path = config.config_path(home)
    path.write_text(path.read_text().replace('channel = "outbox"', lines), encoding="utf-8")


def test_the_channel_settings_are_read_with_their_defaults(proposal_home: Path) -> None:
    assert config.load(proposal_home).proposals == ProposalSettings()
    write_proposals(proposal_home, 'channel = "github_issue"\ngithub_repo = "acme/models"\n'
                                   'github_labels = ["preservation"]\nwebhook_url = "https://hooks.example/wk"\n'
                                   'webhook_token_env = "HOOK_TOKEN"\nhf_endpoint = "https://hub.example"')
    settings = config.load(proposal_home).proposals
    assert (settings.channel, settings.github_repo, settings.github_labels, settings.github_api,
            settings.github_token_env) == ("github_issue", "acme/models", ("preservation",), "https://api.github.com",
                                           "GITHUB_TOKEN")
    assert (settings.webhook_url, settings.webhook_token_env, settings.hf_endpoint, settings.hf_token_env) == (
        "https://hooks.example/wk", "HOOK_TOKEN", "https://hub.example", "HF_TOKEN")


@pytest.mark.parametrize(
    ("lines", "key", "message"),
    [
        ('channel = "email"', "channel", "unknown channel 'email'; expected one of: outbox, hf_discussion"),
        ('channel = "github_issue"', "github_repo", "needs `github_repo`"),
        ('channel = "webhook"', "webhook_url", "needs `webhook_url`"),
        ('github_repo = "https://github.com/acme/models"', "github_repo", '"owner/repo"'),
        ('github_token_env = "ghp_abc-123"', "github_token_env", "not a token"),
        ('hf_token_env = "hf_abc.def"', "hf_token_env", "not a token"),
        ('webhook_token_env = 3', "webhook_token_env", "not a token"),
        ('github_labels = "preservation"', "github_labels", "list of label names"),
        ('github_api = "api.github.com"', "github_api", "http:// or https:// URL"),
        ('webhook_url = "hooks.example/wk"', "webhook_url", "http:// or https:// URL"),
        ('github_token = "ghp_x"', "github_token", "[proposals] takes"),
    ],
)
def test_bad_channel_settings_name_their_key(proposal_home: Path, lines: str, key: str, message: str) -> None:
    write_proposals(proposal_home, f'channel = "outbox"\n{lines}' if not lines.startswith("channel") else lines)
    with pytest.raises(ConfigError) as refused:
        config.load(proposal_home)
    assert refused.value.key == key and message in str(refused.value)


@pytest.mark.parametrize(("settings", "target"), [
    (ProposalSettings(), "acme"),
    (ProposalSettings(channel="hf_discussion"), "acme/med-ft"),
    (ProposalSettings(channel="github_issue", github_repo="acme/models"), "acme/models"),
    (ProposalSettings(channel="webhook", webhook_url="https://hooks.example/wk"), "https://hooks.example/wk"),
], ids=["outbox", "hf_discussion", "github_issue", "webhook"])
def test_a_planned_actions_target_is_where_its_channel_delivers(deleted: Path, settings: ProposalSettings,
                                                                target: str) -> None:
    (outcome,) = run_propose(deleted, settings)
    ledger, reviews = queue(deleted)
    with ledger:
        (action,) = reviews.get(outcome.review_id).draft.actions
    endpoint = {"hf_discussion": settings.hf_endpoint, "github_issue": settings.github_api}.get(settings.channel)
    assert (action.channel, action.target, action.parameters) == (settings.channel, target, {
        "model": "acme/med-ft", "registry": "mem", **({"endpoint": endpoint} if endpoint else {})})


def test_the_executor_builds_every_configured_channel_and_always_the_outbox(tmp_path: Path) -> None:
    assert sorted(executor.publishers(tmp_path, ProposalSettings())) == ["github_issue", "hf_discussion", "outbox"]
    hooked = executor.publishers(tmp_path, ProposalSettings(channel="webhook", webhook_url="https://hooks.example/wk"))
    assert sorted(hooked) == ["github_issue", "hf_discussion", "outbox", "webhook"]
    assert all(name == publisher.channel for name, publisher in hooked.items())


# -- end to end: approve, execute, execute again ------------------------------------------------------------------

@pytest.fixture
def github_home(deleted: Path, github: FakeGitHub) -> Path:
    write_proposals(deleted, f'channel = "github_issue"\ngithub_repo = "acme/models"\ngithub_api = "{github.url}"\n'
                             'github_token_env = "WK_TEST_GITHUB_TOKEN"')
    return deleted


def test_an_approved_proposal_opens_one_github_issue_and_executing_again_opens_none(
        github_home: Path, github: FakeGitHub) -> None:
    (outcome,) = run_propose(github_home, config.load(github_home).proposals)
    assert github.server.requests == []  # nothing leaves before a human approves
    approve(github_home, outcome.review_id)
    with Ledger(config.load(github_home).ledger_path) as ledger:
        (done,) = executor.execute(ledger, github_home, outcome.review_id)
        assert (done["channel"], done["target"], done["number"], done["already_published"]) == (
            "github_issue", "acme/models", 4, False)
        assert executor.execute(ledger, github_home, outcome.review_id) == []
        (event,) = ledger.conn.execute("SELECT detail FROM events WHERE kind = 'action_executed'").fetchall()
    (post,) = github.posts()
    issue = github.repos["acme/models"][-1]
    assert issue["title"].startswith("Preserving acme/med-ft") and json.loads(event[0])["url"] == issue["html_url"]
    assert_home_holds_no_token(github_home)


def test_a_refused_channel_records_action_failed_with_a_message_and_no_token(
        github_home: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    (outcome,) = run_propose(github_home, config.load(github_home).proposals)
    approve(github_home, outcome.review_id)
    monkeypatch.setenv("WK_TEST_GITHUB_TOKEN", "ghp_revokedTokenValue0123456789")
    with Ledger(config.load(github_home).ledger_path) as ledger:
        (done,) = executor.execute(ledger, github_home, outcome.review_id)
        assert done["error"].startswith("PublishError: ") and "HTTP 401" in done["error"]
        (event,) = ledger.conn.execute("SELECT detail FROM events WHERE kind = 'action_failed'").fetchall()
        assert "rejected the token in $WK_TEST_GITHUB_TOKEN" in json.loads(event[0])["error"]
        assert ledger.conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'action_executed'").fetchone()[0] == 0
    assert github.posts() == []
    assert_home_holds_no_token(github_home, "ghp_revokedTokenValue0123456789")


def assert_home_holds_no_token(home: Path, *extra: str) -> None:
    """No byte of the home (ledger, checkpoints, config, outbox) holds a token."""
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [token for token in (*TOKENS, *extra) if token.encode() in data], path


# -- registry strings cannot add a header or a field -------------------------------------------------------------

# Each ends a line for some reader: an email parser (CR, LF), str.splitlines and Unicode (NEL, U+2028).
LINE_BREAKS = {"lf": "\n", "crlf": "\r\n", "cr": "\r", "nel": "\x85", "line-separator": "\u2028"}
INJECTED_MODEL = "org/m{}Bcc: attacker@example.org"


def injected(channel: str, target: str, line_break: str, endpoint: str | None = None) -> dict[str, Any]:
    """A payload whose title names a model whose name tries to start a header of its own."""
    name = INJECTED_MODEL.format(line_break)
    bound = {"endpoint": endpoint} if endpoint else {}
    return PlannedAction("publish", channel, target, {"model": name, "registry": "hub", **bound}).payload(
        f"Preserving {name}: a proposal after its deletion", BODY)


def assert_one_line(title: str) -> None:
    assert title.splitlines() == [title] and "\r" not in title and "\x85" not in title, repr(title)
    assert "Bcc: attacker@example.org" in title  # escaped, not lost: the reader sees what the registry said


@pytest.mark.parametrize("line_break", LINE_BREAKS.values(), ids=LINE_BREAKS)
def test_an_outbox_letter_has_exactly_its_two_headers_whatever_a_name_holds(tmp_path: Path, line_break: str) -> None:
    from tools.publish.outbox import OutboxPublisher

    detail = OutboxPublisher(tmp_path).publish(injected("outbox", f"org{line_break}Bcc: attacker@example.org",
                                                        line_break), KEY)
    text = Path(detail["path"]).read_text(encoding="utf-8")
    head, _, body = text.partition("\n\n")
    assert [line.split(":", 1)[0] for line in head.splitlines()] == ["To", "Subject"]
    assert email.parser.Parser().parsestr(text, headersonly=True).keys() == ["To", "Subject"]
    assert_one_line(head.splitlines()[1])
    assert body == BODY + "\n"


def test_a_model_named_to_add_a_bcc_never_becomes_a_model_to_write_about(proposal_home: Path) -> None:
    """The first layer: the scan records such a name as a problem, shown escaped, so no letter is drafted about
    it; the channels above are the second, for any such text that reaches them some other way."""
    from proposal_world import model, outbox, scan_twice

    name = INJECTED_MODEL.format("\n")
    scan_twice(proposal_home, [model(name), model("org/kept")], [model("org/kept")])
    with Ledger(config.load(proposal_home).ledger_path) as ledger:
        assert [row[0] for row in ledger.conn.execute("SELECT name FROM models")] == ["org/kept"]
        problems = [row[0] for row in ledger.conn.execute("SELECT model_name FROM problems")]
    assert problems and all("\n" not in problem and "\\n" in problem for problem in problems)
    assert run_propose(proposal_home) == [] and outbox(proposal_home) == []


@pytest.mark.parametrize("line_break", LINE_BREAKS.values(), ids=LINE_BREAKS)
def test_a_github_issue_title_stays_one_line_and_its_fields_are_only_ours(github: FakeGitHub, line_break: str) -> None:
    issues_publisher(github).publish(injected("github_issue", "acme/models", line_break, github.url), KEY)
    (post,) = github.posts()
    assert sorted(post.json()) == ["body", "title"] and "bcc" not in post.headers
    assert_one_line(post.json()["title"])


@pytest.mark.parametrize("target", ["acme/models\nBcc: attacker@example.org", "acme/../../user/repos",
                                    "acme/models?labels=x"])
def test_a_github_target_that_is_no_repository_is_refused_before_any_request(github: FakeGitHub,
                                                                              target: str) -> None:
    with pytest.raises(PublishError, match="not a GitHub repository"):
        issues_publisher(github).publish(payload("github_issue", target, github.url), KEY)
    assert github.server.requests == []


@pytest.mark.parametrize("line_break", LINE_BREAKS.values(), ids=LINE_BREAKS)
def test_a_hub_discussion_title_stays_one_line(hub: FakeHubWithDiscussions, line_break: str) -> None:
    discussions_publisher(hub).publish(injected("hf_discussion", "acme/alpha", line_break, hub.url), KEY)
    (creation,) = hub.creations()
    assert sorted(creation.json()) == ["description", "pullRequest", "title"] and "bcc" not in creation.headers
    assert_one_line(creation.json()["title"])


def test_a_hub_discussion_target_that_is_no_repo_id_is_refused_before_any_request(
        hub: FakeHubWithDiscussions) -> None:
    with pytest.raises(PublishError, match="not a Hub repo id"):
        discussions_publisher(hub).publish(payload("hf_discussion", INJECTED_MODEL.format("\n"), hub.url), KEY)
    assert hub.server.requests == []


@pytest.mark.parametrize("line_break", LINE_BREAKS.values(), ids=LINE_BREAKS)
def test_a_webhook_post_has_one_line_title_and_only_its_fields(webhook: FakeWebhook, line_break: str) -> None:
    hook_publisher(webhook).publish(injected("webhook", webhook.hook, line_break), KEY)
    (post,) = webhook.posts()
    sent = post.json()
    assert sorted(sent) == ["body", "idempotency_key", "model", "registry", "target", "title"]
    assert "bcc" not in post.headers and sent["model"] == INJECTED_MODEL.format(line_break)  # data, kept exact
    assert_one_line(sent["title"])
