"""The fake Hub with its repos' discussions: `FakeHub` plus the community endpoints `huggingface_hub` 2.4 calls
(hf_api.py `get_repo_discussions`, `get_discussion_details`, `create_discussion`; community.py reads them):

- `GET /api/models/{repo}/discussions?p=N[&author=][&type=][&status=]`: `{"discussions", "count", "start"}`,
  `page_size` per page, newest first;
- `GET /api/models/{repo}/discussions/{num}`: the discussion with its `events`, the first being the comment
  that opened it (`data.latest.raw`);
- `POST /api/models/{repo}/discussions` with `title`, `description`, `pullRequest`: `{"num", …}`, authored
  by the token's user (`whoami-v2` answers "alice").

Errors as the Hub sends them: an unknown token is 401 `Invalid credentials in Authorization header`; a
missing repo is 404 `RepoNotFound` (401 to an anonymous caller); a disabled repo is 403; a repo whose
discussions are disabled answers 403 `Discussions are disabled for this repo`. `lose_created_answers`
makes the next creations happen but answer 502, as a proxy timing out after the Hub took the POST would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evals.fakes.hub import DISABLED_MESSAGE, INVALID_TOKEN, FakeHub, _error, _one
from evals.fakes.http import Reply, Request

DISCUSSIONS_PATH = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/discussions(?:/(?P<num>\d+))?")
USER = "alice"  # FakeHub's whoami-v2 names every valid token's user so
DISCUSSIONS_DISABLED = "Discussions are disabled for this repo"


@dataclass
class Discussion:
    num: int
    title: str
    author: str
    description: str
    created_at: str
    status: str = "open"

    def wire(self, repo: str) -> dict[str, Any]:
        return {"num": self.num, "title": self.title, "status": self.status, "createdAt": self.created_at,
                "isPullRequest": False, "author": {"name": self.author}, "repo": {"name": repo, "type": "model"},
                "pinned": False, "numComments": 1, "topReactions": []}

    def details(self, repo: str) -> dict[str, Any]:
        comment = {"id": f"c{self.num}", "type": "comment", "createdAt": self.created_at,
                   "author": {"name": self.author},
                   "data": {"edited": False, "hidden": False, "latest": {"raw": self.description}}}
        return {**self.wire(repo), "events": [comment]}


class FakeHubWithDiscussions(FakeHub):
    def __init__(self, *, page_size: int = 2, **kwargs: Any) -> None:
        super().__init__(page_size=page_size, **kwargs)
        self.discussions: dict[str, list[Discussion]] = {}  # repo id -> its discussions, oldest first
        self.discussions_disabled: set[str] = set()
        self.lose_created_answers = 0

    def add_discussion(self, repo: str, title: str, description: str, *, author: str = USER,
                       status: str = "open") -> Discussion:
        discussions = self.discussions.setdefault(repo, [])
        discussion = Discussion(len(discussions) + 1, title, author, description,
                                f"2026-01-{len(discussions) % 28 + 1:02d}T10:00:00.000Z", status)
        discussions.append(discussion)
        return discussion

    def creations(self) -> list[Request]:
        return [request for request in self.server.requests
                if request.method == "POST" and DISCUSSIONS_PATH.fullmatch(request.path)]

    def route(self, request: Request) -> Reply:
        match = DISCUSSIONS_PATH.fullmatch(request.path)
        if match is None:
            return super().route(request)
        authorization = request.headers.get("authorization")
        if authorization is not None and authorization.removeprefix("Bearer ") not in self.tokens:
            return _error(401, None, INVALID_TOKEN)
        repo = self.repos.get(match["repo"])
        if repo is None:
            return _error(401 if authorization is None else 404, "RepoNotFound", "Repository not found")
        if repo.disabled:
            return _error(403, None, DISABLED_MESSAGE)
        if repo.id in self.discussions_disabled:
            return _error(403, None, DISCUSSIONS_DISABLED)
        if request.method == "POST":
            return self._create(repo.id, request, authorization)
        if match["num"] is not None:
            found = [d for d in self.discussions.get(repo.id, []) if d.num == int(match["num"])]
            return Reply.json(found[0].details(repo.id)) if found else _error(404, None, "Discussion not found")
        return self._discussions(repo.id, request)

    def _create(self, repo: str, request: Request, authorization: str | None) -> Reply:
        if authorization is None:
            return _error(401, None, "You must be authenticated to open a discussion")
        body = request.json()
        discussion = self.add_discussion(repo, body["title"], body["description"])
        if self.lose_created_answers:
            self.lose_created_answers -= 1
            return Reply(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        return Reply.json(discussion.wire(repo))

    def _discussions(self, repo: str, request: Request) -> Reply:
        author, kind, status = _one(request.query, "author"), _one(request.query, "type"), _one(request.query, "status")
        listed = [d for d in reversed(self.discussions.get(repo, []))
                  if (author is None or d.author == author) and kind in (None, "all", "discussion")
                  and status in (None, "all", d.status)]
        start = int(_one(request.query, "p") or 0) * self.page_size
        return Reply.json({"discussions": [d.wire(repo) for d in listed[start:start + self.page_size]],
                           "count": len(listed), "start": start,
                           "numClosedDiscussions": sum(d.status == "closed" for d in listed)})
