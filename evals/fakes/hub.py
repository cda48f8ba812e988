"""A fake Hugging Face Hub on `FakeServer`: real HTTP on 127.0.0.1, the Hub's wire format, a mutable set of repos.

What it reproduces, as `huggingface_hub` 2.4 reads it (hf_api.py, utils/_http.py, utils/_pagination.py):

- `GET /api/models`: `author`, `search` (in the id, any case), `filter` (tags, all of them), `limit`
  (a page size the server caps, as the Hub caps it at 1000), `expand` (unknown properties are a 400;
  `_id` and `id` come with every item; without `expand` only the Hub's default fields), and a cursor
  in the `Link: <…>; rel="next"` header. Items are in `_id` order, so a rename keeps its place.
  Anonymously no private repo is listed; with a token, the private repos of the token's orgs are.
  Disabled repos are left out unless `lists_disabled`.
- `GET /api/models/{id}` (model_info) and `GET /api/models/{id}/tree/{rev}` (list_repo_tree):
  an old name redirects (307) to the new one; a missing or unreadable private repo is 401 with
  `X-Error-Code: RepoNotFound` to an anonymous caller, 404 `RepoNotFound` to an authenticated one; a
  disabled repo is 403 with `X-Error-Message: Access to this resource is disabled.`; a tree at an unknown
  revision is 404 `RevisionNotFound`. Trees are paged like listings.
- `GET /{id}/resolve/{rev}/{path}` (hf_hub_download): a git-stored file is served directly, an LFS file
  redirects (302) to `/cdn-lfs/{sha256}` as the Hub redirects to its CDN; both honour `Range: bytes=N-`
  (206 with `Content-Range`, 416 past the end). A private repo needs a token of its org.
- `GET /api/whoami-v2`: every token is the user `alice`'s, who reads her own namespace and the token's orgs;
  a request with an unknown token is 401 `Invalid credentials in Authorization header`.

Faults: the server's own (`hub.server.faults`), and `hub.after_listing_page(n, *faults)` to queue faults
once n listing pages have been served (a listing failing mid-way).

For the benchmarks: `page_delay` makes each listing page take that long (a real registry's round trip; each
request waits in its own thread, so listings in parallel wait side by side), and `built_pages` builds every page
of a listing at its first request and serves them from memory until a repo changes through the methods below,
so that a Hub of hundreds of thousands of models serves a page for the cost of a dictionary look-up rather than
a filter and sort of every repo.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import typing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from huggingface_hub.hf_api import ExpandModelProperty_T

from evals.fakes.http import FakeServer, Fault, Reply, Request, ServedFake

EXPANDABLE = frozenset(typing.get_args(ExpandModelProperty_T))
# What the Hub sends for each listed model when nothing is expanded.
DEFAULT_LIST_FIELDS = ("_id", "id", "likes", "private", "downloads", "tags", "pipeline_tag", "library_name",
                       "createdAt", "modelId")
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".onnx")
INVALID_TOKEN = "Invalid credentials in Authorization header"
USER = "alice"  # whose every token is
DISABLED_MESSAGE = "Access to this resource is disabled."
REPO_PATH = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+|[^/]+)(?:/tree/(?P<rev>[^/]+))?")
RESOLVE_PATH = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")
CDN_PATH = re.compile(r"/cdn-lfs/(?P<sha256>[0-9a-f]{64})")


@dataclass
class Repo:
    id: str
    key: str  # the Hub's `_id`, which a rename keeps
    sha: str
    created_at: str
    last_modified: str
    private: bool = False
    gated: bool | str = False  # False, "auto" or "manual", as the Hub sends it
    disabled: bool = False
    downloads: int = 0
    likes: int = 0
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = "text-generation"
    library_name: str | None = "transformers"
    card_data: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    raw: dict[str, Any] | None = None  # sent as it is instead of the fields above: a malformed item

    def wire(self) -> dict[str, Any]:
        """Every field as the Hub's JSON names it."""
        return {
            "_id": self.key, "id": self.id, "modelId": self.id, "author": self.id.split("/")[0], "sha": self.sha,
            "lastModified": self.last_modified, "createdAt": self.created_at, "private": self.private,
            "gated": self.gated, "disabled": self.disabled, "downloads": self.downloads, "likes": self.likes,
            "tags": self.tags, "pipeline_tag": self.pipeline_tag, "library_name": self.library_name,
            **({"cardData": self.card_data} if self.card_data is not None else {}),
            "siblings": [{"rfilename": path} for path in sorted(self.files)],
        }

    def tree(self) -> list[dict[str, Any]]:
        """The recursive tree entries, folders included, as `/tree/{rev}?recursive=true` sends them."""
        entries: dict[str, dict[str, Any]] = {}
        for path, data in sorted(self.files.items()):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "oid": _git_oid(folder.encode()), "size": 0,
                                            "path": folder})
            entry: dict[str, Any] = {"type": "file", "oid": _git_oid(data), "size": len(data), "path": path}
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entry["oid"] = _git_oid(f"version https://git-lfs.github.com/spec/v1\noid sha256:{entry['lfs']['oid']}"
                                        .encode())
            entries[path] = entry
        return sorted(entries.values(), key=lambda entry: entry["path"])


class FakeHub(ServedFake):
    def __init__(self, *, page_size: int = 2, tree_page_size: int = 1000, tokens: dict[str, set[str]] | None = None,
                 lists_disabled: bool = False, page_delay: float = 0.0, built_pages: bool = False) -> None:
        self.page_size, self.tree_page_size, self.lists_disabled = page_size, tree_page_size, lists_disabled
        self.page_delay, self.built_pages = page_delay, built_pages
        # (the listing's query without its cursor, the caller's orgs) -> {cursor: its page}; see `built_pages`.
        self._built: dict[tuple[Any, ...], dict[str | None, Reply]] = {}
        self.tokens = tokens if tokens is not None else {}  # token -> the orgs whose private repos it reads
        self.repos: dict[str, Repo] = {}
        self.redirects: dict[str, str] = {}
        self.listing_pages_served = 0
        self._faults_after: dict[int, list[Fault]] = {}
        self._clock = 0
        self.server = FakeServer(self.route)

    # -- the repos, as their owners and the Hub's staff change them ----------------------------------

    def add(self, name: str, *, files: dict[str, bytes] | None = None, **fields: Any) -> Repo:
        self._clock += 1
        repo = Repo(id=name, key=f"{0x66A000000000000000000000 + self._clock:024x}", sha=self._sha(name),
                    created_at=self._stamp(), last_modified=self._stamp(),
                    files=files if files is not None else {"config.json": b'{"model_type": "llama"}',
                                                           "model.safetensors": f"weights of {name}".encode()},
                    **fields)
        self.repos[name] = repo
        self.redirects.pop(name, None)  # a new repo takes the name an old one was renamed from
        self._built.clear()
        return repo

    def add_raw(self, item: dict[str, Any]) -> None:
        """A listed item exactly as given (a malformed one)."""
        self._clock += 1
        name = str(item.get("id", f"raw-{self._clock}"))
        self.repos[name] = Repo(id=name, key=str(item.get("_id", f"{self._clock:024x}")), sha="", created_at="",
                                last_modified="", raw=item)
        self._built.clear()

    def commit(self, name: str, *, files: dict[str, bytes] | None = None, card_data: dict[str, Any] | None = None,
               tags: list[str] | None = None) -> Repo:
        """A push: a new sha and lastModified."""
        repo = self.repos[name]
        self._clock += 1
        if files is not None:
            repo.files = files
        if card_data is not None:
            repo.card_data = card_data
        if tags is not None:
            repo.tags = tags
        repo.sha, repo.last_modified = self._sha(name), self._stamp()
        self._built.clear()
        return repo

    def update(self, name: str, **fields: Any) -> None:
        """Settings and counters that change without a commit (downloads, likes, private, gated, disabled)."""
        for key, value in fields.items():
            setattr(self.repos[name], key, value)
        self._built.clear()

    def delete(self, name: str) -> None:
        del self.repos[name]
        self.redirects = {old: new for old, new in self.redirects.items() if new != name}
        self._built.clear()

    def rename(self, old: str, new: str) -> None:
        repo = self.repos.pop(old)
        repo.id = new
        self.repos[new] = repo
        # Every redirect to the old name now leads to the new one; other repos' redirects stay. A repo serves its
        # name: a redirect left there by an earlier rename away from it is gone.
        self.redirects = {o: new if n == old else n for o, n in self.redirects.items() if o != new}
        self.redirects[old] = new
        self._built.clear()

    def after_listing_page(self, pages: int, *faults: Fault) -> None:
        """Once `pages` listing pages have been served (counting from now), queue these faults."""
        self._faults_after[self.listing_pages_served + pages] = list(faults)

    # -- what the tests look at ----------------------------------------------------------------------

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.server.requests if r.path == path]

    def tree_requests(self, name: str) -> list[Request]:
        return [r for r in self.server.requests if r.path.startswith(f"/api/models/{name}/tree/")]

    # -- the wire ------------------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        orgs: set[str] | None = None  # None: anonymous
        authorization = request.headers.get("authorization")
        if authorization is not None:
            orgs = self.tokens.get(authorization.removeprefix("Bearer "))
            if orgs is None:
                return _error(401, None, INVALID_TOKEN)
        if request.path == "/api/whoami-v2":
            if orgs is None:
                return _error(401, None, "Invalid username or password.")
            return Reply.json({"type": "user", "name": USER, "orgs": [{"name": org} for org in sorted(orgs)],
                               "auth": {"type": "access_token", "accessToken": {"displayName": "wk", "role": "read"}}})
        if request.path == "/api/models":
            return self._list(request, orgs)
        if (download := RESOLVE_PATH.fullmatch(request.path)) is not None:
            return self._resolve(request, orgs, download["repo"], download["rev"], download["path"])
        if (cdn := CDN_PATH.fullmatch(request.path)) is not None:
            data = next((data for repo in self.repos.values() for data in repo.files.values()
                         if hashlib.sha256(data).hexdigest() == cdn["sha256"]), None)
            return _error(404, "EntryNotFound", "no such object") if data is None else _ranged(request, data)
        match = REPO_PATH.fullmatch(request.path)
        if match is None:
            return Reply(404, b"<!doctype html><title>404</title>Sorry, we can't find the page you are looking for.",
                         {"Content-Type": "text/html"})
        name, rev = match["repo"], match["rev"]
        if name in self.redirects:
            target = request.path.replace(f"/api/models/{name}", f"/api/models/{self.redirects[name]}", 1)
            query = urlencode([(k, v) for k, values in request.query.items() for v in values])
            return Reply(307, b"", {"Location": f"{target}?{query}" if query else target})
        repo = self.repos.get(name)
        if repo is None or repo.private and not self._reads(orgs, repo):
            # The Hub tells an anonymous caller nothing about whether the repo exists.
            return _error(401 if orgs is None else 404, "RepoNotFound", "Repository not found")
        if repo.disabled:
            return _error(403, None, DISABLED_MESSAGE)
        if rev is None:
            expand = request.query.get("expand")
            return Reply.json(_fields(repo.wire(), expand) if expand else repo.wire())
        if rev not in (repo.sha, "main"):
            return _error(404, "RevisionNotFound", "Invalid rev id: " + rev)
        return self._paged(request, repo.tree(), self.tree_page_size, lambda entry: entry["path"])

    def _resolve(self, request: Request, orgs: set[str] | None, name: str, rev: str, path: str) -> Reply:
        repo = self.repos.get(name)
        if repo is None or repo.private and not self._reads(orgs, repo):
            return _error(401 if orgs is None else 404, "RepoNotFound", "Repository not found")
        if rev not in (repo.sha, "main"):
            return _error(404, "RevisionNotFound", "Invalid rev id: " + rev)
        data = repo.files.get(unquote(path))
        if data is None:
            return _error(404, "EntryNotFound", f"{path} does not exist on {rev}")
        if path.endswith(LFS_SUFFIXES):
            return Reply(302, b"", {"Location": f"{self.url}/cdn-lfs/{hashlib.sha256(data).hexdigest()}"})
        return _ranged(request, data)

    def _list(self, request: Request, orgs: set[str] | None) -> Reply:
        query = request.query
        expand = query.get("expand")
        unknown = sorted(set(expand or ()) - EXPANDABLE)
        if unknown:
            return Reply.json({"error": f'"expand" must be one of the expandable properties, not {unknown}'}, 400)
        if self.page_delay:
            time.sleep(self.page_delay)
        limit = min(int(_one(query, "limit") or self.page_size), self.page_size)
        cursor = _one(query, "cursor")
        built = self._built_listing(request, orgs, limit) if self.built_pages else {}
        # A cursor of pages built before a repo changed is answered from the repos as they are now.
        reply = built.get(cursor) or self._paged(request, self._listed(query, orgs), limit, _position)
        self.listing_pages_served += 1
        faults = self._faults_after.pop(self.listing_pages_served, [])
        self.server.faults.extend(faults)
        return reply

    def _listed(self, query: dict[str, list[str]], orgs: set[str] | None) -> list[dict[str, Any]]:
        """Every item the listing's query lists, in `_id` order."""
        expand = query.get("expand")
        author, search = _one(query, "author"), _one(query, "search")
        repos = sorted((repo for repo in self.repos.values()
                        if repo.raw is not None  # a malformed item is listed whatever the query
                        or self._listable(repo, orgs)
                        and (author is None or repo.id.split("/")[0] == author)
                        and (search is None or search.lower() in repo.id.lower())
                        and all(tag in repo.tags for tag in query.get("filter", []))),
                       key=lambda repo: repo.key)
        return [repo.raw if repo.raw is not None else
                _fields(repo.wire(), expand) if expand else _fields(repo.wire(), DEFAULT_LIST_FIELDS)
                for repo in repos]

    def _built_listing(self, request: Request, orgs: set[str] | None, limit: int) -> dict[str | None, Reply]:
        """Every page of the request's listing by the cursor that asks for it, built at the listing's first request."""
        key = (tuple(sorted((name, tuple(values)) for name, values in request.query.items() if name != "cursor")),
               None if orgs is None else frozenset(orgs))
        if key not in self._built:
            items = self._listed(request.query, orgs)
            pages: dict[str | None, Reply] = {}
            cursor = None
            for start in range(0, max(len(items), 1), limit):
                page = items[start : start + limit]
                pages[cursor] = self._page_reply(request, page, start + limit < len(items), _position)
                cursor = _cursor_after(page[-1], _position) if page else None
            self._built[key] = pages
        return self._built[key]

    def _paged(self, request: Request, items: list[dict[str, Any]], size: int, position: Any) -> Reply:
        """A page of `items` after the request's cursor, with a Link to the next one when more remain."""
        cursor = _one(request.query, "cursor")
        after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else None
        remaining = [item for item in items if after is None or str(position(item)) > after]
        return self._page_reply(request, remaining[:size], len(remaining) > size, position)

    def _page_reply(self, request: Request, page: list[dict[str, Any]], more: bool, position: Any) -> Reply:
        """`page` as JSON, with a Link to the page after its last item when `more` remain."""
        headers = {}
        if more:
            params = [(k, v) for k, values in request.query.items() if k != "cursor" for v in values]
            query = urlencode([*params, ("cursor", _cursor_after(page[-1], position))])
            headers["Link"] = f'<{self.url}{request.path}?{query}>; rel="next"'
        return Reply.json(page, headers=headers)

    def _listable(self, repo: Repo, orgs: set[str] | None) -> bool:
        return (not repo.private or self._reads(orgs, repo)) and (not repo.disabled or self.lists_disabled)

    @staticmethod
    def _reads(orgs: set[str] | None, repo: Repo) -> bool:
        return orgs is not None and repo.id.split("/")[0] in {USER, *orgs}

    def _sha(self, name: str) -> str:
        return hashlib.sha1(f"{name}:{self._clock}".encode()).hexdigest()

    def _stamp(self) -> str:
        return f"2024-{1 + self._clock // 28 % 12:02d}-{1 + self._clock % 28:02d}T10:{self._clock % 60:02d}:00.000Z"


def _position(item: dict[str, Any]) -> str:
    """Where a listed item stands in the listing: its `_id`."""
    return item.get("_id", "")


def _cursor_after(item: dict[str, Any], position: Any) -> str:
    return base64.urlsafe_b64encode(str(position(item)).encode()).decode()


def _fields(wire: dict[str, Any], names: Any) -> dict[str, Any]:
    return {key: value for key, value in wire.items() if key in {"_id", "id", *names}}


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _error(status: int, code: str | None, message: str) -> Reply:
    headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return Reply.json({"error": message}, status, headers)


def _ranged(request: Request, data: bytes) -> Reply:
    """The bytes, or from `Range: bytes=N-` on: 206, or 416 when N is past the end."""
    wanted = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
    if wanted is None:
        return Reply(200, data, {"Content-Type": "application/octet-stream"})
    start = int(wanted[1])
    if start >= len(data):
        return Reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
    return Reply(206, data[start:], {"Content-Type": "application/octet-stream",
                                     "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
