"""An Ollama server's local models, through its REST API with `httpx`.

What Ollama answers (its `server/routes.go`, `api/types.go` and `docs/api.md`):

- `GET /api/tags` lists every tag at once (it is not paginated), so a listing is one page:
  `{"models": [{"name", "model", "modified_at", "size", "digest", "details": {"parent_model",
  "format", "family", "families", "parameter_size", "quantization_level"}}]}`.
- A tag's `digest` is the hex sha256 of its *manifest file*, not of any weights blob.
  `ollama cp a b` copies the manifest byte for byte, so the copy has the same digest and
  `ollama cp a b && ollama rm a` reads as a rename. Any change to a layer (a new pull, a new
  `ollama create`) gives a new digest. The listing does not give the weights blob's sha256,
  so the one file entry has none. Its `size` is the manifest's total: every layer plus the config.
- `details.parent_model` is the name the model layer was created `FROM`. Servers with the
  model-list cache fill it in `/api/tags`. Older servers always send `""` there and fill it only
  in `POST /api/show`, so an empty value is confirmed there. The manifest holds it, so it is
  asked once per digest and remembered in the adapter cache.
- `POST /api/show {"model": name}` (older servers read `"name"`) answers 404
  `{"error": "model '<name>' not found"}` for a tag that is not there: that is the only answer
  that makes a tag `Gone`. Every other failure concludes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from tools.registries.http import RetryPolicy, WaitReporter, json_of, request, tls_context
from weightkeeper.domain import (
    FileEntry, Found, Gone, Lineage, LookupResult, ModelRecord, Page, RecordProblem, Visibility,
)
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import AdapterCache

DETAIL_FIELDS = ("format", "family", "families", "parameter_size", "quantization_level")
REMOTE_FIELDS = ("remote_host", "remote_model")
# What the file entry stands for: the blobs of one manifest, whose total size /api/tags gives.
BLOBS = "blobs"
# Answers to GET /api/version that tell "something answers here, but not Ollama" (429 is retried instead).
NOT_OLLAMA_STATUSES = frozenset(range(400, 500)) - {429}


class EntryError(Exception):
    """One entry of /api/tags cannot be read; the message says which and why."""


class OllamaRegistry:
    kind = "ollama"
    unlisted: frozenset[Visibility] = frozenset()  # /api/tags lists every local tag
    stable_keys = False  # a key is a manifest digest, which every new build of a tag replaces
    resumes_see_renames = False  # `ollama cp` then `ollama rm` leaves nothing under the old name

    def __init__(self, url: str, *, cache: AdapterCache, on_wait: WaitReporter | None = None, timeout: float = 30.0,
                 policy: RetryPolicy = RetryPolicy()) -> None:
        self.url = url.rstrip("/")
        self.cache, self.on_wait, self.policy = cache, on_wait, policy
        self.client = httpx.Client(base_url=self.url, timeout=timeout, verify=tls_context())

    def close(self) -> None:
        self.client.close()

    # -- the adapter protocol ---------------------------------------------------------------

    def pages(self, cursor: str | None) -> Iterator[Page]:
        """The whole listing as one page; its cursor is None, so a resumed listing starts over."""
        yield Page(tuple(self._tags()), cursor=None)

    def records(self, page: Page) -> list[ModelRecord | RecordProblem]:
        items: list[ModelRecord | RecordProblem] = []
        for entry in page.items:
            try:
                items.append(self._record(entry))
            except EntryError as exc:
                items.append(RecordProblem(_name_of(entry) or "(unnamed entry)", str(exc)))
        return items

    def lookup(self, name: str) -> LookupResult:
        show = self._show(name)
        if show is None:
            return Gone(f"Ollama at {self.url} answers 404 for {name}: model not found")
        # /api/show has no digest or size: the listing's entry is the model as a record.
        entry = next((entry for entry in self._tags() if _name_of(entry) == name), None)
        if entry is None:
            raise RegistryUnavailable(
                f"Ollama at {self.url} shows {name} but /api/tags does not list it (a pull or removal in "
                "progress?); nothing was concluded, the next scan asks again"
            )
        try:
            return Found(self._record(entry))
        except EntryError as exc:
            raise RegistryUnavailable(f"{name} is listed, but its entry cannot be read: {exc}") from exc

    def check(self) -> str:
        what = f"checking the Ollama server at {self.url}"
        try:
            response = self._request("GET", "/api/version", what=what, ok_statuses=NOT_OLLAMA_STATUSES)
        except RegistryUnavailable as exc:
            raise RegistryUnavailable(
                f"{exc}. Is Ollama running there? Start it with `ollama serve`, or fix `url` in this "
                "registry's table in weightkeeper.toml (Ollama listens on http://127.0.0.1:11434 by default)"
            ) from exc
        version = _version(response)
        if version is None:
            raise RegistryUnavailable(
                f"{self.url} answers, but not like an Ollama server: GET /api/version gave HTTP "
                f"{response.status_code} {response.text[:120]!r} instead of {{\"version\": ...}}; "
                "point `url` in weightkeeper.toml at the Ollama server itself"
            )
        count = len(self._tags())
        return f"Ollama {version} at {self.url} answers; /api/tags lists {count} model{'s' * (count != 1)}"

    # -- talking to the server --------------------------------------------------------------

    def _request(self, method: str, path: str, *, what: str,
                 ok_statuses: frozenset[int] = frozenset(), **kwargs: Any) -> httpx.Response:
        return request(self.client, method, path, what=what, ok_statuses=ok_statuses, policy=self.policy,
                       on_wait=self.on_wait, **kwargs)

    def _tags(self) -> list[Any]:
        what = f"listing the models of Ollama at {self.url} (GET /api/tags)"
        answer = json_of(self._request("GET", "/api/tags", what=what), what)
        models = answer.get("models") if isinstance(answer, dict) else None
        if not isinstance(models, list):
            raise RegistryUnavailable(
                f"{what}: the answer has no \"models\" list ({json.dumps(answer)[:120]}); "
                "is `url` an Ollama server? Nothing was concluded"
            )
        return models

    def _show(self, name: str) -> dict[str, Any] | None:
        """What POST /api/show says about a tag, or None when Ollama says it is not there."""
        what = f"asking Ollama at {self.url} about {name} (POST /api/show)"
        response = self._request("POST", "/api/show", what=what, ok_statuses=frozenset({404}), json={"model": name})
        if response.status_code == 404:
            # A proxy or another server may answer 404 for the path itself: only Ollama's own error means gone.
            if not _says_model_not_found(response):
                raise RegistryUnavailable(
                    f"{what}: HTTP 404 without Ollama's \"model not found\" error ({response.text[:120]!r}); "
                    "is something other than Ollama answering at this url? Nothing was concluded"
                )
            return None
        answer = json_of(response, what)
        if not isinstance(answer, dict):
            raise RegistryUnavailable(f"{what}: the answer is not a JSON object ({response.text[:120]!r})")
        return answer

    # -- turning a listing entry into a record ------------------------------------------------

    def _record(self, entry: Any) -> ModelRecord:
        if not isinstance(entry, dict):
            raise EntryError(f"an entry of /api/tags is not an object: {json.dumps(entry)[:120]}")
        name = _name_of(entry)
        if not name:
            raise EntryError(f"an entry of /api/tags has no name: {json.dumps(entry)[:120]}")
        digest, size = entry.get("digest"), entry.get("size")
        if not isinstance(digest, str) or not digest:
            raise EntryError(f"{name} has no manifest digest in /api/tags")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise EntryError(f"{name} has no valid size in /api/tags (got {size!r})")
        details = entry.get("details") or {}
        if not isinstance(details, dict):
            raise EntryError(f"{name}: \"details\" is not an object in /api/tags")
        parent = self._parent_model(name, digest, details)
        return ModelRecord(
            name=name,
            key=digest,
            revision=digest,
            last_modified=_utc_iso(name, entry.get("modified_at")),
            # Which relation (adapter, quantisation, a new system prompt…) Ollama does not say.
            lineage=(Lineage(parent, None),) if parent else (),
            files=(FileEntry(BLOBS, size),),
            extra=_extra(details, entry),
        )

    def _parent_model(self, name: str, digest: str, details: dict[str, Any]) -> str:
        listed = details.get("parent_model")
        if isinstance(listed, str) and listed:
            return listed
        key = f"ollama:parent_model:{digest}"
        known = self.cache.get(key)
        if known is not None:
            return known
        show = self._show(name)
        if show is None:
            raise EntryError(f"{name} is listed by /api/tags, but /api/show answers 404 (removed while listing?)")
        shown = show.get("details") or {}
        parent = shown.get("parent_model") if isinstance(shown, dict) else None
        parent = parent if isinstance(parent, str) else ""
        self.cache.put(key, parent)
        return parent




def _name_of(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    name = entry.get("name") or entry.get("model")
    return name if isinstance(name, str) else None


def _utc_iso(name: str, value: Any) -> str | None:
    """Go's RFC 3339 time (nanoseconds, a zone offset) as ISO 8601 in UTC; Go's zero time means unknown."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise EntryError(f"{name}: modified_at {value!r} is not an RFC 3339 time with a zone")
    if when.year == 1:
        return None
    return when.astimezone(UTC).isoformat()


def _extra(details: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The details worth keeping; empty values are left out, as newer servers omit them and older ones send ""."""
    fields = {key: details.get(key) for key in DETAIL_FIELDS} | {key: entry.get(key) for key in REMOTE_FIELDS}
    return {key: list(value) if isinstance(value, (list, tuple)) else value
            for key, value in fields.items() if value not in (None, "", [])}


def _says_model_not_found(response: httpx.Response) -> bool:
    """Whether a 404 carries Ollama's own `{"error": "model '<name>' not found"}`."""
    try:
        answer = response.json()
    except ValueError:
        return False
    error = answer.get("error") if isinstance(answer, dict) else None
    return isinstance(error, str) and "not found" in error


def _version(response: httpx.Response) -> str | None:
    if not response.is_success:
        return None
    try:
        answer = response.json()
    except ValueError:
        return None
    version = answer.get("version") if isinstance(answer, dict) else None
    return version if isinstance(version, str) and version else None
