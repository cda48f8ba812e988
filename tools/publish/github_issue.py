"""`github_issue`: the proposal as an issue in one GitHub repository, through the REST API of github.com or,
by `github_api`, of a GitHub Enterprise server.

Idempotent by a marker: the issue body ends with `<!-- weightkeeper:KEY -->`, which GitHub does not render.
Before opening an issue, the repository's issues, open and closed, are read page by page (`Link: rel="next"`)
for the marker; found, that issue is the one published. A retry (429 or a rate-limit 403 with the server's
wait, 5xx, timeouts, resets) looks again before posting again, so a POST GitHub took but did not answer is
not posted twice.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tools.publish import PublishError, bound_endpoint, channel_token, marked, marker, single_line
from tools.publish.http import client, retried, server_says
from tools.registries.http import CLIENT_ERRORS, RetryPolicy, Transient, attempt_request, json_of, server_wait
from weightkeeper.config import GITHUB_REPO_PATTERN

API_VERSION = "2022-11-28"


class GitHubIssuePublisher:
    channel = "github_issue"

    def __init__(self, api: str, *, token_env: str, labels: tuple[str, ...] = (),
                 policy: RetryPolicy = RetryPolicy(), timeout: float = 30.0) -> None:
        self.api, self.token_env, self.labels = api.rstrip("/"), token_env, labels
        self.policy, self.timeout = policy, timeout

    def publish(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Open the issue in the approved target repository ("owner/repo"), unless one carries this key."""
        repo = payload["target"]
        bound_endpoint(payload, self.api, "github_api")
        # The target goes into the API's URL: anything but "owner/repo" could lead the token elsewhere.
        if not GITHUB_REPO_PATTERN.fullmatch(repo) or {".", ".."} & set(repo.split("/")):
            raise PublishError(f"the action's target {repo!r} is not a GitHub repository \"owner/repo\"; nothing "
                               "was published (it needs a new proposal naming `github_repo`)")
        headers = {"Authorization": f"Bearer {channel_token(self.token_env, 'github_token_env')}",
                   "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        what = f"opening an issue in {repo} at {self.api}"
        with client(headers, self.timeout) as session:
            return retried(lambda: self._find_or_open(session, repo, payload, idempotency_key, what), what=what,
                           policy=self.policy)

    def _find_or_open(self, session: httpx.Client, repo: str, payload: dict[str, Any], idempotency_key: str,
                      what: str) -> dict[str, Any]:
        issue = self._find(session, repo, marker(idempotency_key), what)
        if issue is not None:
            return _detail(issue, what, already_published=True)
        body = {"title": single_line(payload["title"]), "body": marked(payload["body"], idempotency_key),
                **({"labels": list(self.labels)} if self.labels else {})}
        response = self._send(session, "POST", f"{self.api}/repos/{repo}/issues", repo, what, json=body)
        return _detail(json_of(response, what), what, already_published=False)

    def _find(self, session: httpx.Client, repo: str, mark: str, what: str) -> dict[str, Any] | None:
        """The repository's issue (open or closed) whose body carries `mark`, if any."""
        url: str | None = f"{self.api}/repos/{repo}/issues"
        params: dict[str, Any] | None = {"state": "all", "per_page": 100}
        while url is not None:
            response = self._send(session, "GET", url, repo, what, params=params)
            issues = json_of(response, what)
            if not isinstance(issues, list):
                raise PublishError(f"{what}: the issue list is a {type(issues).__name__}, not a list; is github_api "
                                   "the API's base URL (https://api.github.com, or https://HOST/api/v3)?")
            found = next((issue for issue in issues if mark in (issue.get("body") or "")), None)
            if found is not None:
                return found
            url, params = self._next_page(response, what), None  # the next link carries every parameter
        return None

    def _next_page(self, response: httpx.Response, what: str) -> str | None:
        link = response.links.get("next", {}).get("url")
        if link is None:
            return None
        url = urljoin(str(response.url), link)
        if urlsplit(url)[:2] != urlsplit(self.api)[:2]:  # the token would go with the request
            raise PublishError(f"{what}: GitHub links the next page of issues at {urlsplit(url).netloc}, off "
                               f"{self.api}; not followed, so nothing was published")
        return url

    def _send(self, session: httpx.Client, method: str, url: str, repo: str, what: str,
              **kwargs: Any) -> httpx.Response:
        response = attempt_request(session, method, url, what=what, ok_statuses=CLIENT_ERRORS, **kwargs)
        if response.status_code in CLIENT_ERRORS:
            self._refuse(response, repo, what)
        return response

    def _refuse(self, response: httpx.Response, repo: str, what: str) -> None:
        """Raise what a 4xx means: a rate limit is waited out (Transient), anything else explained."""
        status, says = response.status_code, server_says(response)
        limited = response.headers.get("Retry-After") or response.headers.get("X-RateLimit-Remaining") == "0"
        if status == 403 and limited:  # GitHub's rate limits answer 403 as well as 429
            reset = response.headers.get("X-RateLimit-Reset", "")
            wait = server_wait(response) or (max(0.0, int(reset) - time.time()) if reset.isdigit() else None)
            raise Transient(f"HTTP 403 rate limited ({says})", wait)
        explanations = {
            401: f"GitHub rejected the token in ${self.token_env}; put a valid token in it (one that may write "
                 f"issues in {repo})",
            403: f"the token in ${self.token_env} may not open issues in {repo}; give it issues: write access "
                 "to the repository",
            404: f"GitHub has no repository {repo} that the token in ${self.token_env} can see; check "
                 "`github_repo` in [proposals] and the token's access to it",
            410: f"issues are disabled in {repo}; enable them in its settings, or choose another [proposals] channel",
            422: "GitHub did not accept the issue; check `github_labels` in [proposals]",
        }
        explanation = explanations.get(status, "GitHub refused the request")
        raise PublishError(f"{what}: {explanation} (HTTP {status}: {says})")


def _detail(issue: Any, what: str, *, already_published: bool) -> dict[str, Any]:
    if not isinstance(issue, dict) or "html_url" not in issue or "number" not in issue:
        raise PublishError(f"{what}: GitHub's answer names no issue (no html_url and number); is github_api the "
                           "API's base URL?")
    return {"url": issue["html_url"], "number": issue["number"], "already_published": already_published}
