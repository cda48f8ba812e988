"""The Hugging Face Hub (or a mirror of it, by endpoint): the models of an author, a search or a tag filter.

The listing is `GET /api/models` as `HfApi.list_models` asks for it, paged by the `Link` header (each
page's next link is its cursor); items are read field by field as `ModelInfo` reads them. File lists
come from the tree endpoint at the listed `sha`, for models matching `files`, once per revision (the
adapter cache). `lookup` asks what `HfApi.model_info` asks through the same client, and reads the Hub's
answers with its quirks in mind: a vanished model is `Withdrawn` unless a token that reads the owner's
namespace gets a 404 (`Gone`). No token is ever taken from the environment or a cached login, and the
token never appears in a message, a record or a log. What is read, and why: docs/registries/huggingface.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from tools.registries.http import (
    CLIENT_ERRORS,
    RETRY_STATUSES,
    RetryPolicy,
    Transient,
    WaitReporter,
    decode_json,
    json_of,
    request,
    server_wait,
    tls_context,
    transport_faults,
    with_retries,
)
from tools.registries.model_card import RELATIONS, CardError, card_fields, kept_text, lineage
from weightkeeper import __version__
from weightkeeper.domain import (
    FileEntry,
    Found,
    Gone,
    Hidden,
    Lineage,
    LookupResult,
    ModelRecord,
    Page,
    Visibility,
    Withdrawn,
)
from weightkeeper.config import RegistryConfig
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import (
    AdapterCache,
    Opening,
    RecordUnreadable,
    Registry,
    RegistryKind,
    Setting,
    register_kind,
    shards_by,
)
from weightkeeper.untrusted import has_hidden

if TYPE_CHECKING:  # imported when the adapter is built: the registry kinds are read at every start
    import httpx

DEFAULT_ENDPOINT = "https://huggingface.co"
PAGE_SIZE = 1000  # the most the Hub sends per page
# The fields a record is built from. `_id` and `id` come with every item whatever is expanded.
EXPAND = ("cardData", "createdAt", "disabled", "downloads", "gated", "lastModified", "library_name", "likes",
          "pipeline_tag", "private", "sha", "tags")
# What the Hub says, in X-Error-Message, to a request whose token it does not accept.
INVALID_TOKEN = "Invalid credentials in Authorization header"
# What a fine-grained token must be granted on a namespace for the Hub to show it that namespace's private repos.
READS_REPOS = "repo.content.read"
# What the Hub says, in X-Error-Message, of a disabled repo (huggingface_hub's `DisabledRepoError`).
DISABLED = "Access to this resource is disabled."
REFUSALS = frozenset({401, 403, 404})
# A Hub registry watches a scope: at least one of these narrows what it lists.
SCOPE = ("author", "search", "filter")


class HubRegistry(Registry):
    kind = "hf"
    # Reading one model may ask for its file tree: a tree the Hub will not give makes that model a problem.
    unreadable = (RecordUnreadable, RegistryUnavailable)
    stable_keys = True  # a repo's `_id` stays with it through renames; a repo created under a freed name gets another
    resumes_see_renames = True  # a lookup of a renamed repo's old name follows the Hub's redirect to the new one

    def __init__(self, endpoint: str | None, *, author: str | None, search: str | None, filter: str | None,
                 files: str | None, token: str | None, cache: AdapterCache, on_wait: WaitReporter | None = None,
                 policy: RetryPolicy = RetryPolicy(), timeout: float = 30.0) -> None:
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.author, self.search, self.filter, self.files = author, search, filter, files
        self.cache, self.on_wait, self.policy, self.timeout = cache, on_wait, policy, timeout
        self.authenticated = token is not None
        self._namespaces: frozenset[str] | None = None if self.authenticated else frozenset()
        self._user: str | None = None
        import httpx
        from huggingface_hub.utils import build_hf_headers

        # token=False: never an HF_TOKEN variable or a cached login in place of the configured token.
        self.headers = build_hf_headers(token=token or False, library_name="weightkeeper",
                                        library_version=__version__)
        self.client = httpx.Client(headers=self.headers, timeout=timeout, follow_redirects=True, verify=tls_context())
        # Anonymously the Hub lists no private and no disabled repo. With a token it lists every private
        # repo the token can read, so a recorded private model missing from the listing lost our access or
        # was deleted: worth a suspicion, not a quiet lookup. Disabled repos stay out of every listing.
        self.unlisted: frozenset[Visibility] = (
            frozenset({Visibility.DISABLED}) if self.authenticated
            else frozenset({Visibility.PRIVATE, Visibility.DISABLED})
        )

    def close(self) -> None:
        self.client.close()

    # -- the listing -----------------------------------------------------------------------------

    def pages(self, cursor: str | None) -> Iterator[Page]:
        what = f"listing models at {self.endpoint}"
        if cursor is not None and _origin(cursor) != _origin(self.endpoint):
            cursor = None  # stored before the endpoint was changed: list this one from the start
        url: str | None = cursor or f"{self.endpoint}/api/models"
        params: dict[str, Any] | None = None if cursor else self._listing_params(PAGE_SIZE)
        while url is not None:
            items, url = self._json_page(url, params, what)
            params = None  # a next link carries every parameter
            yield Page(tuple(items), cursor=url)

    def _listing_params(self, limit: int) -> dict[str, Any]:
        """The query `HfApi.list_models(filter=, author=, search=, limit=, expand=)` sends, in its order."""
        params: dict[str, Any] = {}
        if self.filter:
            params["filter"] = [self.filter]
        if self.author:
            params["author"] = self.author
        if self.search:
            params["search"] = self.search
        return {**params, "limit": limit, "expand": list(EXPAND)}

    def _json_page(self, url: str, params: dict[str, Any] | None, what: str) -> tuple[list[Any], str | None]:
        """One page of a paginated JSON array, and the link to the next page (None on the last)."""
        response = request(self.client, "GET", url, params=params, what=what, ok_statuses=frozenset({401}),
                           policy=self.policy, on_wait=self.on_wait)
        if response.status_code == 401:
            raise RegistryUnavailable(f"{what}: {self._refused(response)}")
        body = json_of(response, what)
        if not isinstance(body, list):
            raise RegistryUnavailable(f"{what}: expected a JSON array, got a {type(body).__name__}; "
                                      f"is {self.endpoint} a Hugging Face Hub?")
        return body, self._next_link(response, what)

    def _next_link(self, response: httpx.Response, what: str) -> str | None:
        from huggingface_hub.utils import fix_hf_endpoint_in_url

        link = response.links.get("next", {}).get("url")
        if link is None:
            return None
        # A mirror may answer with the public Hub's links: they are read as the mirror's, as huggingface_hub does.
        url = fix_hf_endpoint_in_url(urljoin(str(response.url), link), self.endpoint)
        if _origin(url) != _origin(self.endpoint):  # the token would go with the request
            raise RegistryUnavailable(f"{what}: the Hub links the next page at {urlsplit(url).netloc}, off "
                                      f"{self.endpoint}; not followed, nothing was concluded")
        return url

    def _refused(self, response: httpx.Response) -> str:
        message = response.headers.get("X-Error-Message") or response.reason_phrase
        if self.authenticated:
            return (f"the Hub rejected the token (HTTP {response.status_code}: {message}); put a valid one in the "
                    "environment variable the registry's token_env names")
        return f"the Hub refused an anonymous request (HTTP {response.status_code}: {message}); it may need a token"

    # -- one model -------------------------------------------------------------------------------

    def record(self, item: Any) -> ModelRecord:
        try:
            record = _parse(item)
        except (TypeError, AttributeError, ValueError, KeyError) as exc:  # a field of an unexpected shape
            raise RecordUnreadable(f"a field cannot be read ({type(exc).__name__}: {exc})") from exc
        # A name that does not show as itself is refused by the scan: its files are not asked for.
        if self.files is None or not fnmatchcase(record.name, self.files) or has_hidden(record.name):
            return record
        return replace(record, files=self._files(record.name, record.revision))

    def _files(self, name: str, sha: str | None) -> tuple[FileEntry, ...]:
        if not sha:
            raise RecordUnreadable("the Hub sent no `sha`, so its file list cannot be pinned to a revision")
        key = f"files:{name}@{sha}"
        cached = self.cache.get(key)
        if cached is not None:
            return tuple(FileEntry(*entry) for entry in json.loads(cached))
        entries = self._tree(name, sha)
        self.cache.put(key, json.dumps([list(entry) for entry in entries]))
        return entries

    def _tree(self, name: str, sha: str) -> tuple[FileEntry, ...]:
        """Every file of the model at revision `sha`, as `HfApi.list_repo_tree(recursive=True)` asks for them."""
        from huggingface_hub.hf_api import RepoFile  # here, as HfApi: importing hf_api slows every scan's start

        what = f"listing the files of {name} at {sha}"
        url: str | None = f"{self.endpoint}/api/models/{name}/tree/{quote(sha, safe='')}"
        params: dict[str, Any] | None = {"recursive": True, "expand": False}
        entries: list[FileEntry] = []
        while url is not None:
            response = request(self.client, "GET", url, params=params, what=what, ok_statuses=REFUSALS,
                               policy=self.policy, on_wait=self.on_wait)
            if response.status_code in REFUSALS:
                code = response.headers.get("X-Error-Code") or response.headers.get("X-Error-Message") or ""
                raise RecordUnreadable(f"{what}: HTTP {response.status_code} {code}".rstrip()
                                  + "; it may have changed since it was listed, the next scan reads it again")
            body = json_of(response, what)
            if not isinstance(body, list):
                raise RecordUnreadable(f"{what}: expected a JSON array of files, got a {type(body).__name__}")
            try:
                files = [RepoFile(**item) for item in body if item.get("type") == "file"]
            except (KeyError, TypeError, AttributeError) as exc:
                raise RecordUnreadable(f"{what}: a file entry cannot be read ({type(exc).__name__}: {exc})") from exc
            entries += [FileEntry(f.path, f.size, f.lfs.sha256 if f.lfs else None) for f in files]
            url, params = self._next_link(response, what), None
        return tuple(sorted(entries))

    def lookup(self, name: str) -> LookupResult:
        """The model as `HfApi.model_info(name, expand=...)` asks for it (same URL and parameters), kept as the
        Hub's JSON: a lookup's record is then built exactly as a listed one is. A refusal is read as
        huggingface_hub reads it (`hf_raise_for_status`): gated, disabled, or not found to this caller."""
        what = f"looking up {name} at {self.endpoint}"
        response = self._ask(f"{self.endpoint}/api/models/{name}", {"expand": list(EXPAND)}, what)
        if not response.is_success:
            message = response.headers.get("X-Error-Message")
            if response.headers.get("X-Error-Code") == "GatedRepo":
                return Hidden(Visibility.GATED, f"HTTP {response.status_code} GatedRepo: access must be requested")
            if message == DISABLED:
                return Hidden(Visibility.DISABLED, f"HTTP {response.status_code}: {message}")
            return self._refusal(what, name, response)
        try:
            item = decode_json(response.content)
        except ValueError as exc:
            raise RegistryUnavailable(f"{what}: the answer cannot be read ({type(exc).__name__}: {exc}); "
                                      "nothing was concluded") from exc
        try:
            return Found(self.record(item))
        except RecordUnreadable as exc:
            raise RegistryUnavailable(f"{what}: {exc}; nothing was concluded") from exc

    def _refusal(self, what: str, name: str, response: httpx.Response) -> LookupResult:
        status, code = response.status_code, response.headers.get("X-Error-Code")
        message = response.headers.get("X-Error-Message")
        if status == 401 and message == INVALID_TOKEN:
            raise RegistryUnavailable(f"{what}: {self._refused(response)}")
        if status == 401 and self.authenticated:
            raise RegistryUnavailable(f"{what}: HTTP 401 {message or ''} to a request with a token, which the Hub "
                                      "answers 404 when it cannot read a repo; nothing was concluded")
        if status == 403:
            return Hidden(Visibility.DISABLED, f"HTTP 403: {message or 'forbidden'}")
        if status not in (401, 404) or status == 404 and code != "RepoNotFound":
            raise RegistryUnavailable(f"{what}: HTTP {status} {code or ''} {message or ''}".rstrip()
                                      + "; not an answer about the model, nothing was concluded")
        said = f"HTTP {status}{' RepoNotFound' if code == 'RepoNotFound' else ''}"
        # A renamed repo's old name redirects to its new one, perhaps in a namespace this token does not read.
        asked = _repo_asked(str(response.url)) or name
        if asked != name:
            said = f"{said} after a redirect to {asked}"
        return self._not_there(what, asked, said, conclusive=status == 404)

    def name_taken(self, name: str, other: ModelRecord) -> Gone | Withdrawn:
        """What it says of the repo last seen as `name` that the Hub answers for `name` with another repo (`other`,
        of another `_id`), and lists the repo's `_id` nowhere: as much as a 404 for it would say to this caller."""
        return self._not_there(f"looking up {name} at {self.endpoint}", name,
                               f"{name} is now another repo (_id {other.key}) and the listing shows this one's _id "
                               "nowhere", conclusive=True)

    def _not_there(self, what: str, name: str, said: str, *, conclusive: bool) -> Gone | Withdrawn:
        """A repo not found as `name`: `Gone` only when `conclusive` (a 404) and the token reads its owner's
        namespace; otherwise the Hub would answer this caller the same for a repo hidden from it."""
        owner = name.partition("/")[0] if "/" in name else None
        whose = f"{owner}'s" if owner else "its owner's"
        if not self.authenticated:
            return Withdrawn(f"{said} to an anonymous request: the Hub answers an anonymous caller so for a private "
                             f"repo and for a deleted one alike; a token that reads {whose} repos would tell")
        readable = self.namespaces(what)
        if conclusive and owner in readable:
            return Gone(f"{said} to the token of {self._user}, which reads {whose} private repos: deleted")
        return Withdrawn(f"{said} to the token of {self._user}, which does not read {whose} private repos: the "
                         "Hub answers it so for a private repo and for a deleted one alike")

    def namespaces(self, what: str) -> frozenset[str]:
        """The namespaces whose private repos the token reads (none anonymously): the user's and their
        organisations', or for a fine-grained token those granted `repo.content.read`. Asked once."""
        if self._namespaces is None:
            response = self._ask(f"{self.endpoint}/api/whoami-v2", None, what)  # as `HfApi.whoami` asks
            if not response.is_success:
                raise RegistryUnavailable(f"{what}: {self._refused(response)}")
            try:
                user = _mapping(decode_json(response.content))
            except ValueError as exc:
                raise RegistryUnavailable(f"{what}: the answer cannot be read ({type(exc).__name__}: {exc}); "
                                          "nothing was concluded") from exc
            self._user, self._namespaces = str(user.get("name") or "an unnamed user"), _readable_namespaces(user)
        return self._namespaces

    # -- the registry ----------------------------------------------------------------------------

    def check(self) -> str:
        what = f"checking the Hub API at {self.endpoint}"
        response = request(self.client, "GET", f"{self.endpoint}/api/models", params=self._listing_params(1),
                           what=what, ok_statuses=CLIENT_ERRORS, policy=self.policy, on_wait=self.on_wait)
        if response.status_code == 401:
            raise RegistryUnavailable(f"{what}: {self._refused(response)}")
        if response.status_code in CLIENT_ERRORS or not _is_json_list(response):
            raise RegistryUnavailable(
                f"{what}: it answers, but not as a Hugging Face Hub (GET /api/models gave HTTP {response.status_code}"
                f" {response.headers.get('Content-Type', 'without a content type')}); set endpoint to the Hub's "
                "base URL, such as https://huggingface.co, without /api"
            )
        return f"{self.endpoint} answers the Hub API; {self.conclusions(what)}"

    def conclusions(self, what: str) -> str:
        """What this caller can conclude about a model that vanishes, in words for `registry check`."""
        scope = f"of {self.author} " if self.author else ""
        if not self.authenticated:
            return ("anonymous, so private and disabled models are not listed, and a model that vanishes is recorded "
                    f"as withdrawn (deleted or made private alike); add a token {scope or 'of the owners '}"
                    "(token_env) to tell them apart")
        readable = self.namespaces(what)
        reads = f"reads the private repos of {', '.join(sorted(readable))}" if readable else "reads no private repos"
        said = f"the token is accepted for {self._user} and {reads}"
        if self.author and self.author in readable:
            return f"{said}: a model of {self.author} that vanishes is recorded as deleted or made private, as it was"
        if self.author:
            return (f"{said}: a model of {self.author} that vanishes is recorded as withdrawn (deleted or made private "
                    f"alike); a token that reads {self.author}'s repos would tell them apart")
        return (f"{said}: a vanished model of those is recorded as deleted or made private, as it was; of any other "
                "owner, as withdrawn (deleted or made private alike)")

    def _ask(self, url: str, params: dict[str, Any] | None, what: str) -> httpx.Response:
        """A GET whose answer the caller reads, refusals included, retried as `tools.registries.http.request`
        retries (429 and 5xx with the server's own wait, timeouts, resets)."""

        def attempt() -> httpx.Response:
            with transport_faults():
                response = self.client.get(url, params=params)
            if response.status_code in RETRY_STATUSES:
                raise Transient(f"HTTP {response.status_code}", server_wait(response))
            return response

        return with_retries(attempt, what=what, policy=self.policy, on_wait=self.on_wait)

    def item_name(self, item: Any) -> str:
        """The model's name for a problem report: its `id`, else what identifies the item at all."""
        if isinstance(item, dict):
            if isinstance(item.get("id"), str):
                return item["id"]
            if item.get("_id"):
                return f"(a model with _id {item['_id']} and no id)"
        return f"(an unreadable item: {json.dumps(item, default=str)[:80]})"


def _parse(item: Any) -> ModelRecord:
    """The record of a model from the Hub's JSON item (the listing's or `model_info`'s), without its file list.

    Read directly rather than through `ModelInfo`, which costs as much as the rest of a scan's work per
    model; the fields are the ones `ModelInfo` reads, and the fake Hub the tests use is checked against it.
    """
    if not isinstance(item, dict):
        raise RecordUnreadable(f"a listed item is a {type(item).__name__}, not a model")
    key, name, card = item.get("_id"), item.get("id"), item.get("cardData")
    if not isinstance(key, str) or not key:
        raise RecordUnreadable("the Hub sent no `_id` for this model, so it cannot be told from a renamed one")
    if not isinstance(name, str):
        raise RecordUnreadable(f"its id is a {type(name).__name__}, not a name")
    if card is not None and not isinstance(card, dict):
        raise RecordUnreadable(f"cardData is a {type(card).__name__}, not a mapping of card fields")
    tags = item.get("tags") or []
    if not isinstance(tags, list):
        raise RecordUnreadable(f"its tags are a {type(tags).__name__}, not a list")
    # As `ModelCardData.to_dict()` gives them: fields without a value left out.
    meta = {field: value for field, value in (card or {}).items() if value is not None}
    tags = list(map(str, tags))
    try:
        # The listing carries the card's metadata, not its text: the digest covers the metadata only.
        card_data = card_fields(meta, "", from_json=True) if card is not None else None
        model_lineage = _lineage(meta, tags)
    except CardError as exc:
        raise RecordUnreadable(f"model card: {exc}") from exc
    successor = meta.get("new_version")
    return ModelRecord(
        name=name,
        key=key,
        revision=_text(item.get("sha")),
        created_at=_moment(item, "createdAt"),
        last_modified=_moment(item, "lastModified"),
        visibility=_visibility(item),
        downloads=item.get("downloads"),
        likes=item.get("likes"),
        lineage=model_lineage,
        card=card_data,
        successor=None if successor is None else kept_text(str(successor)),
        extra={"tags": tags, "pipeline_tag": item.get("pipeline_tag"), "library_name": item.get("library_name")},
    )


def _readable_namespaces(user: Any) -> frozenset[str]:
    """From `whoami`: the namespaces whose private repos the token reads. A classic (read or write) token reads
    its user's and every organisation's the user belongs to; a fine-grained one only those it was granted
    `repo.content.read` on. An answer of another shape grants nothing, so nothing is concluded from a 404."""
    user = _mapping(user)
    token = _mapping(_mapping(user.get("auth")).get("accessToken"))
    if token.get("role") != "fineGrained":
        orgs = user.get("orgs") if isinstance(user.get("orgs"), list) else []
        names = [user.get("name"), *(_mapping(org).get("name") for org in orgs)]
        return frozenset(name for name in names if isinstance(name, str) and name)
    scoped = _mapping(token.get("fineGrained")).get("scoped")
    return frozenset(
        name for entry in (scoped if isinstance(scoped, list) else [])
        if isinstance(name := _mapping(_mapping(entry).get("entity")).get("name"), str)
        and READS_REPOS in (_mapping(entry).get("permissions") or ()))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _lineage(meta: dict[str, Any], tags: list[str]) -> tuple[Lineage, ...]:
    """The card's base models, with the relation of the Hub's `base_model:<relation>:<X>` tags where one is
    given, then the bases only the tags name."""
    tagged: dict[str, str] = {}
    for tag in tags:
        if tag.startswith("base_model:"):
            relation, _, base = tag[len("base_model:"):].partition(":")
            if relation in RELATIONS and base:
                tagged.setdefault(base, relation)
    from_card = [Lineage(item.base_model, tagged.get(item.base_model, item.relation)) for item in lineage(meta)]
    named = {item.base_model for item in from_card}
    return (*from_card, *(Lineage(base, relation) for base, relation in tagged.items() if base not in named))


def _visibility(item: dict[str, Any]) -> Visibility:
    if item.get("disabled"):
        return Visibility.DISABLED
    if item.get("private"):
        return Visibility.PRIVATE
    if item.get("gated"):  # "auto" or "manual"; False when open
        return Visibility.GATED
    return Visibility.PUBLIC


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _moment(item: dict[str, Any], field: str) -> str | None:
    """An ISO 8601 time, kept as the Hub wrote it once it reads as one."""
    value = item.get(field)
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise RecordUnreadable(f"its {field} {value!r} is not an ISO 8601 time") from exc
    return value


def _repo_asked(url: str) -> str | None:
    """The repo a lookup's URL (`.../api/models/{owner}/{name}`) asks about; None for any other URL."""
    _, found, repo = urlsplit(url).path.partition("/api/models/")
    return unquote(repo) if found and repo else None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _is_json_list(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json(), list)
    except ValueError:
        return False


def _adapter(config: RegistryConfig, opening: Opening) -> HubRegistry:
    return HubRegistry(config.setting("endpoint"), author=config.setting("author"), search=config.setting("search"),
                       filter=config.setting("filter"), files=config.setting("files"), token=opening.token,
                       cache=opening.cache, on_wait=opening.on_wait)


def _archive_source(config: RegistryConfig, record: ModelRecord) -> Any:
    from tools.archive.sources import HubSource, SourceError

    if not record.revision:
        raise SourceError(f"{record.name} was observed without a Hub revision (sha): there is nothing to pin")
    return HubSource(config.setting("endpoint") or DEFAULT_ENDPOINT, record.name, record.revision,
                     token=config.token())


def _location(config: RegistryConfig) -> str:
    scope = "&".join(f"{key}={_joined(config.settings[key])}" for key in (*SCOPE, "authors") if config.settings.get(key))
    return f"{config.setting('endpoint')}/api/models?{scope}"


def _joined(value: str | list[str]) -> str:
    return ",".join(value) if isinstance(value, list) else value


KIND = register_kind(RegistryKind(
    name="hf",
    settings=(
        Setting("endpoint", f"the Hub (default {DEFAULT_ENDPOINT})", metavar="URL", default=DEFAULT_ENDPOINT, url=True),
        Setting("author", "watch this user's or organisation's models", metavar="ORG"),
        Setting("authors", "watch these users' or organisations' models, each scanned as a registry of its own "
                "(NAME/ORG), which workers scan in parallel", metavar="ORG,ORG", many=True, excludes="author"),
        Setting("search", "watch models whose name contains TEXT", metavar="TEXT"),
        Setting("filter", "watch models with this tag, e.g. base_model:finetune:meta-llama/Llama-3.1-8B",
                metavar="TAG"),
        Setting("files", "record file lists (sizes, sha256) of matching models", metavar="GLOB"),
    ),
    adapter=_adapter,
    archive_source=_archive_source,
    files_listed=True,
    one_of=(*SCOPE, "authors"),
    one_of_because="watches a scope",
    location=_location,
    # One registry per author, with the table's search and filter. A model moved from one author to another is
    # a rename the Hub's redirect shows to the shard it left; the other records it as appeared.
    shards=shards_by("authors", into="author"),
))
