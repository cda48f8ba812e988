"""An Ollama server's local models, through its REST API with `httpx`.

`GET /api/tags` lists every tag at once: one page. A tag's key is its manifest digest (so `ollama cp`
then `ollama rm` reads as a rename); `details.parent_model` is its lineage, confirmed through
`POST /api/show` once per digest when the listing leaves it empty. Only Ollama's own 404 "model not
found" makes a tag `Gone`. What Ollama answers, and why it is read so: docs/registries/ollama.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tools.registries.http import CLIENT_ERRORS, RetryPolicy, WaitReporter, json_of, request, tls_context
from weightkeeper.domain import FileEntry, Found, Gone, Lineage, LookupResult, ModelRecord, Page, Visibility
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import AdapterCache, RecordUnreadable, Registry, RegistryKind, Setting, register_kind

if TYPE_CHECKING:  # imported when the adapter is built: the registry kinds are read at every start
    import httpx

DETAIL_FIELDS = ("format", "family", "families", "parameter_size", "quantization_level")
REMOTE_FIELDS = ("remote_host", "remote_model")
# What the file entry stands for: the blobs of one manifest, whose total size /api/tags gives.
BLOBS = "blobs"
DEFAULT_URL = "http://127.0.0.1:11434"


class OllamaRegistry(Registry):
    kind = "ollama"
    unlisted: frozenset[Visibility] = frozenset()  # /api/tags lists every local tag
    stable_keys = False  # a key is a manifest digest, which every new build of a tag replaces
    resumes_see_renames = False  # `ollama cp` then `ollama rm` leaves nothing under the old name

    def __init__(self, url: str, *, cache: AdapterCache, on_wait: WaitReporter | None = None, timeout: float = 30.0,
                 policy: RetryPolicy = RetryPolicy()) -> None:
        self.url = url.rstrip("/")
        self.cache, self.on_wait, self.policy = cache, on_wait, policy
        import httpx

        self.client = httpx.Client(base_url=self.url, timeout=timeout, verify=tls_context())

    def close(self) -> None:
        self.client.close()

    # -- the adapter protocol ---------------------------------------------------------------

    def pages(self, cursor: str | None) -> Iterator[Page]:
        """The whole listing as one page; its cursor is None, so a resumed listing starts over."""
        yield Page(tuple(self._tags()), cursor=None)

    def item_name(self, item: Any) -> str:
        return _name_of(item) or "(unnamed entry)"

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
            return Found(self.record(entry))
        except RecordUnreadable as exc:
            raise RegistryUnavailable(f"{name} is listed, but its entry cannot be read: {exc}") from exc

    def check(self) -> str:
        what = f"checking the Ollama server at {self.url}"
        try:
            response = self._request("GET", "/api/version", what=what, ok_statuses=CLIENT_ERRORS)
        except RegistryUnavailable as exc:
            raise RegistryUnavailable(
                f"{exc}. Is Ollama running there? Start it with `ollama serve`, or fix `url` in this "
                f"registry's table in weightkeeper.toml (Ollama listens on {DEFAULT_URL} by default)"
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

    def record(self, entry: Any) -> ModelRecord:
        if not isinstance(entry, dict):
            raise RecordUnreadable(f"an entry of /api/tags is not an object: {json.dumps(entry)[:120]}")
        name = _name_of(entry)
        if not name:
            raise RecordUnreadable(f"an entry of /api/tags has no name: {json.dumps(entry)[:120]}")
        digest, size = entry.get("digest"), entry.get("size")
        if not isinstance(digest, str) or not digest:
            raise RecordUnreadable(f"{name} has no manifest digest in /api/tags")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RecordUnreadable(f"{name} has no valid size in /api/tags (got {size!r})")
        details = entry.get("details") or {}
        if not isinstance(details, dict):
            raise RecordUnreadable(f"{name}: \"details\" is not an object in /api/tags")
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
            raise RecordUnreadable(f"{name} is listed by /api/tags, but /api/show answers 404 (removed while listing?)")
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
        raise RecordUnreadable(f"{name}: modified_at {value!r} is not an RFC 3339 time with a zone")
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


KIND = register_kind(RegistryKind(
    name="ollama",
    settings=(Setting("url", f"the server (default {DEFAULT_URL})", metavar="URL", default=DEFAULT_URL, url=True),),
    adapter=lambda config, opening: OllamaRegistry(config.setting("url") or DEFAULT_URL, on_wait=opening.on_wait,
                                                   cache=opening.cache),
))
