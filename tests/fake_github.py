"""A fake GitHub REST API on `FakeServer`: real HTTP on 127.0.0.1, GitHub's wire format for issues.

What it reproduces, as docs.github.com describes the issues endpoints:

- `GET /repos/{owner}/{repo}/issues`: `state` (`open` by default, `closed`, `all`), `per_page` (capped by
  the fake's `page_size`, as GitHub caps it at 100), `page`, newest first, and a
  `Link: <…>; rel="next", <…>; rel="last"` header while pages remain.
- `POST /repos/{owner}/{repo}/issues` with `title`, `body`, `labels`: 201 and the issue (`number`,
  `html_url`, …).
- A missing or unknown token is 401 `Bad credentials`; a repo the fake does not hold is 404 `Not Found`; a
  repo with issues disabled answers 410 `Issues are disabled for this repo`.

Faults: the server's own (`github.server.faults`), and `lose_created_answers` to make the next creations
happen but answer 502, as a proxy timing out after GitHub took the POST would.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from http_fakes import FakeServer, Reply, Request, ServedFake

ISSUES_PATH = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/issues")
DOCS = "https://docs.github.com/rest"


class FakeGitHub(ServedFake):
    def __init__(self, *, tokens: set[str], page_size: int = 2) -> None:
        self.tokens, self.page_size = tokens, page_size
        self.repos: dict[str, list[dict[str, Any]]] = {}  # "owner/repo" -> its issues, oldest first
        self.issues_disabled: set[str] = set()
        self.lose_created_answers = 0
        self.server = FakeServer(self.route)

    def add_repo(self, name: str) -> None:
        self.repos[name] = []

    def add_issue(self, repo: str, title: str, body: str | None, *, state: str = "open",
                  labels: list[str] | None = None) -> dict[str, Any]:
        issues = self.repos[repo]
        number = len(issues) + 1
        issue = {"number": number, "title": title, "body": body, "state": state,
                 "labels": [{"name": label} for label in labels or []],
                 "html_url": f"https://github.com/{repo}/issues/{number}",
                 "url": f"{self.url}/repos/{repo}/issues/{number}", "user": {"login": "wk-bot"}}
        issues.append(issue)
        return issue

    def posts(self) -> list[Request]:
        return [request for request in self.server.requests if request.method == "POST"]

    def route(self, request: Request) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return Reply.json({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, 401)
        match = ISSUES_PATH.fullmatch(request.path)
        if match is None or match["repo"] not in self.repos:
            return Reply.json({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, 404)
        repo = match["repo"]
        if repo in self.issues_disabled:
            return Reply.json({"message": "Issues are disabled for this repo", "documentation_url": DOCS,
                               "status": "410"}, 410)
        if request.method == "POST":
            return self._create(repo, request.json())
        return self._list(request, repo)

    def _create(self, repo: str, body: dict[str, Any]) -> Reply:
        if not isinstance(body, dict) or not body.get("title"):
            return Reply.json({"message": "Validation Failed", "errors": [{"field": "title", "code": "missing_field"}],
                               "status": "422"}, 422)
        issue = self.add_issue(repo, body["title"], body.get("body"), labels=body.get("labels"))
        if self.lose_created_answers:
            self.lose_created_answers -= 1
            return Reply(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        return Reply.json(issue, 201)

    def _list(self, request: Request, repo: str) -> Reply:
        state = (request.query.get("state") or ["open"])[-1]
        issues = [issue for issue in reversed(self.repos[repo]) if state == "all" or issue["state"] == state]
        size = min(int((request.query.get("per_page") or ["30"])[-1]), self.page_size)
        page = int((request.query.get("page") or ["1"])[-1])
        last = max(1, -(-len(issues) // size))
        headers = {}
        if page < last:
            params = [(k, v) for k, values in request.query.items() if k != "page" for v in values]
            link = f"{self.url}{request.path}?{urlencode(params)}"
            headers["Link"] = f'<{link}&page={page + 1}>; rel="next", <{link}&page={last}>; rel="last"'
        return Reply.json(issues[(page - 1) * size: page * size], headers=headers)
