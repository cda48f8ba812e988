"""An MLflow Model Registry, through the tracking server's REST API (`/api/2.0/mlflow/...`) with `httpx`.

One record is one *model version*, named `"{registered model}/{version}"`. The listing is
`registered-models/search` by name, then once more newest first for the models updated since it began
(so a rename mid-listing reads as a rename); each page's versions come from `model-versions/search` in
`items()`. Only a 404 `RESOURCE_DOES_NOT_EXIST` makes a version `Gone`. A record's `key` is a digest of
what a rename keeps. The cursor is JSON (`_Position`). What is read, and why: docs/registries/mlflow.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tools.registries.http import RetryPolicy, WaitReporter, json_of, request, tls_context
from tools.registries.model_card import CardError, lineage
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import Found, Gone, Lineage, LookupResult, ModelRecord, Page, Visibility
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import RecordUnreadable, Registry, RegistryKind, Setting, register_kind

if TYPE_CHECKING:  # imported when the adapter is built: the registry kinds are read at every start
    import httpx

API = "/api/2.0/mlflow/"
SEARCH_MODELS = "registered-models/search"
SEARCH_VERSIONS = "model-versions/search"
GET_VERSION = "model-versions/get"
GET_MODEL = "registered-models/get"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
AUTH_STATUSES = frozenset({401, 403})
# Models updated this long (seconds) before the listing's first answer are read again after it: room
# for the clocks of the server that answered and of the one that wrote the database to disagree.
CLOCK_MARGIN = 300.0
NAMES, RECENT, DONE = "names", "recent", "done"
# One version to record: the registered model, the version, and the model's aliases by version number.
_Version = tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]


@dataclass(frozen=True, slots=True)
class _Position:
    """Where a listing stands: the pass, MLflow's page token within it, and when the listing began."""

    phase: str = NAMES
    page_token: str | None = None
    since: int | None = None

    @classmethod
    def parse(cls, cursor: str | None) -> _Position:
        if cursor is None:
            return cls()
        try:
            position = cls(**json.loads(cursor))
        except (ValueError, TypeError):
            position = None
        valid = (position is not None and position.phase in (NAMES, RECENT, DONE)
                 and isinstance(position.since, int) and isinstance(position.page_token, str | None))
        # Not a cursor of this adapter: listing again from the start repeats nothing.
        return position if valid else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class MLflowRegistry(Registry):
    kind = "mlflow"
    # A version's key digests what never changes in it (number, creation time, source, run): a registered model
    # renamed keeps its versions' keys, one deleted and created again under its name has versions of new keys.
    stable_keys = True
    resumes_see_renames = True  # the listing ends by re-reading every model updated since it began: renames too
    unlisted: frozenset[Visibility] = frozenset()  # the search lists every registered model the caller may read

    def __init__(self, url: str | None, *, token: str | None, on_wait: WaitReporter | None = None,
                 page_size: int = 100, versions_page_size: int = 1000, timeout: float = 30.0,
                 policy: RetryPolicy = RetryPolicy(), clock_margin: float = CLOCK_MARGIN) -> None:
        if not url:
            raise RegistryUnavailable(
                "an mlflow registry needs the tracking server's address: set url = \"http://host:5000\" "
                "in its table in weightkeeper.toml"
            )
        self.url = url.rstrip("/")
        self.page_size, self.versions_page_size = page_size, versions_page_size
        self.clock_margin_ms = int(clock_margin * 1000)
        self.on_wait, self.policy, self.has_token = on_wait, policy, bool(token)
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url + API, headers=headers, timeout=timeout, verify=tls_context())

    def close(self) -> None:
        self.client.close()

    # -- the adapter protocol ---------------------------------------------------------------

    def pages(self, cursor: str | None) -> Iterator[Page]:
        """Registered models by name, then those updated since the listing began; versions are read per page."""
        position = _Position.parse(cursor)
        if position.phase == NAMES:
            position = yield from self._by_name(position)
        if position.phase == RECENT:
            yield from self._recently_updated(position)

    def items(self, page: Page) -> Iterable[_Version]:
        """Each version of each listed model (read from the server here), with its model and the model's aliases."""
        for model in page.items:
            aliases = _aliases(model)
            for version in self._versions(model["name"]):
                yield model, version, aliases

    def record(self, item: _Version) -> ModelRecord:
        return _record(*item)

    def item_name(self, item: _Version) -> str:
        model, version, _ = item
        return f"{model['name']}/{version.get('version')}"

    def lookup(self, name: str) -> LookupResult:
        model_name, _, number = name.rpartition("/")
        if not model_name or not number.isdigit():
            raise RegistryUnavailable(
                f"{name!r} is not an MLflow model version name ('<registered model>/<version>'); "
                "was this registry's kind changed in weightkeeper.toml?"
            )
        answer = self._get(GET_VERSION, {"name": model_name, "version": number}, missing_ok=True)
        if answer is None:
            return Gone(self._why_gone(model_name, number))
        version = _field(answer, "model_version", dict, f"{GET_VERSION} for {name}")
        answer = self._get(GET_MODEL, {"name": model_name}, missing_ok=True)
        if answer is None:
            return Gone(f"{GET_MODEL} answers {NOT_FOUND} for registered model {model_name!r} "
                        f"(deleted right after its version {number} was read)")
        model = _field(answer, "registered_model", dict, f"{GET_MODEL} for {model_name}")
        try:
            return Found(_record(model, version, _aliases(model)))
        except RecordUnreadable as exc:
            raise RegistryUnavailable(f"{name} exists, but MLflow's answer about it cannot be read: {exc}") from exc

    def check(self) -> str:
        try:
            answer = self._get(SEARCH_MODELS, {"max_results": 1})
        except RegistryUnavailable as exc:
            raise RegistryUnavailable(
                f"{exc}. Is the MLflow tracking server running there? Start it with `mlflow server`, "
                "or fix `url` in this registry's table in weightkeeper.toml"
            ) from exc
        _field(answer, "registered_models", list, SEARCH_MODELS, default=[])
        token = "the bearer token was accepted" if self.has_token else "no token was sent (none configured)"
        return f"the MLflow model registry at {self.url} answers {SEARCH_MODELS}; {token}"

    # -- the listing ------------------------------------------------------------------------

    def _by_name(self, position: _Position) -> Iterator[Page]:
        """The name-ordered pass; returns the position the `recent` pass starts from."""
        token, since = position.page_token, position.since
        while True:
            response = self._response(SEARCH_MODELS, _without_none(
                {"max_results": self.page_size, "page_token": token}))
            if since is None:
                since = _server_time_ms(response) - self.clock_margin_ms
            answer = _object(response, SEARCH_MODELS)
            models = _models(answer)
            token = _next_token(answer, SEARCH_MODELS)
            after = _Position(NAMES, token, since) if token else _Position(RECENT, None, since)
            if models:  # an empty registry yields no page, as the scan engine expects
                yield Page(models, after.dump())
            if not token:
                return after

    def _recently_updated(self, position: _Position) -> Iterator[Page]:
        """Registered models updated since the listing began, newest first, until an older one."""
        token = position.page_token
        while True:
            answer = self._get(SEARCH_MODELS, _without_none({
                "max_results": self.page_size, "page_token": token, "order_by": ["last_updated_timestamp DESC"]}))
            models = _models(answer)
            recent = tuple(model for model in models if _updated_ms(model) >= position.since)
            token = _next_token(answer, SEARCH_MODELS)
            finished = token is None or len(recent) < len(models)
            after = replace(position, phase=DONE, page_token=None) if finished else replace(position, page_token=token)
            if recent:
                yield Page(recent, after.dump())
            if finished:
                return

    def _versions(self, model_name: str) -> list[dict[str, Any]]:
        """Every version of one registered model, oldest first."""
        if "'" not in model_name:
            condition = f"name = '{model_name}'"
        elif '"' not in model_name:
            condition = f'name = "{model_name}"'
        else:
            # MLflow's filter has no escape for a name holding both quotes: match any character in
            # their place and keep the exact name below.
            condition = "name LIKE '{}'".format(model_name.replace("'", "_").replace('"', "_"))
        versions: list[dict[str, Any]] = []
        token = None
        while True:
            answer = self._get(SEARCH_VERSIONS, _without_none({
                "filter": condition, "max_results": self.versions_page_size, "page_token": token,
                "order_by": ["version_number ASC"]}))
            page = _field(answer, "model_versions", list, SEARCH_VERSIONS, default=[])
            if not all(isinstance(version, dict) for version in page):
                raise RegistryUnavailable(
                    f"MLflow's answer to {SEARCH_VERSIONS} for {model_name!r} lists a version that is not an object "
                    f"({json.dumps(page)[:160]}); nothing was concluded"
                )
            versions += [version for version in page if version.get("name") == model_name]
            token = _next_token(answer, SEARCH_VERSIONS)
            if token is None:
                return versions

    def name_taken(self, name: str, other: ModelRecord) -> Gone:
        """The version last seen as `name`, now answered for by another (`other`, created at {other.created_at})
        and listed nowhere: its registered model was deleted and created again under the same name."""
        return Gone(f"{GET_VERSION} answers for {name} with a version created at {other.created_at}, not the one "
                    "recorded, and the listing shows the recorded one nowhere: its registered model was deleted and "
                    "created again under its name")

    def _why_gone(self, model_name: str, number: str) -> str:
        if self._get(GET_MODEL, {"name": model_name}, missing_ok=True) is not None:
            return (f"{GET_VERSION} answers {NOT_FOUND}: registered model {model_name!r} exists, "
                    f"its version {number} no longer does")
        return (f"{GET_VERSION} and {GET_MODEL} answer {NOT_FOUND}: registered model {model_name!r} no longer exists "
                "(deleted, or renamed with no new name listed by the scan; MLflow keeps no trace of a rename)")

    # -- talking to the server --------------------------------------------------------------

    def _response(self, endpoint: str, params: dict[str, Any], *, missing_ok: bool = False) -> httpx.Response:
        what = f"MLflow at {self.url}: GET {API}{endpoint}"
        response = request(self.client, "GET", endpoint, what=what, params=params, policy=self.policy,
                           on_wait=self.on_wait, ok_statuses=AUTH_STATUSES | {404})
        if response.status_code in AUTH_STATUSES:
            problem = self._auth_problem(response.status_code)
            raise RegistryUnavailable(f"{what}: HTTP {response.status_code}: {problem}")
        if response.status_code == 404 and not (missing_ok and _error_code(response) == NOT_FOUND):
            raise RegistryUnavailable(
                f"{what}: HTTP 404 {response.text[:160]!r}; is {self.url} an MLflow tracking server (url is its "
                "address, without /api/...)? Nothing was concluded"
            )
        return response

    def _auth_problem(self, status: int) -> str:
        if not self.has_token:
            return ("the server asks for credentials and none were sent; name the environment variable holding "
                    "a token with token_env in this registry's table in weightkeeper.toml")
        if status == 401:
            return ("the server rejected the bearer token; check the token in the environment variable this "
                    "registry's token_env names")
        return "the bearer token may not read this model registry; grant it read access or use another token"

    def _get(self, endpoint: str, params: dict[str, Any], *, missing_ok: bool = False) -> dict[str, Any] | None:
        """MLflow's JSON answer; None when `missing_ok` and MLflow says the resource does not exist."""
        response = self._response(endpoint, params, missing_ok=missing_ok)
        return None if response.status_code == 404 else _object(response, endpoint)


# -- reading MLflow's answers -----------------------------------------------------------------


def _object(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    what = f"MLflow's answer to {endpoint}"
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise RegistryUnavailable(
            f"{what} came as {content_type or 'no content type'}, not JSON ({response.text[:120]!r}); "
            "is the url an MLflow tracking server? Nothing was concluded"
        )
    answer = json_of(response, what)
    if not isinstance(answer, dict):
        raise RegistryUnavailable(f"{what} is not a JSON object ({response.text[:120]!r}); nothing was concluded")
    return answer


_MISSING = object()


def _field(answer: dict[str, Any], name: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    """A field of an answer, of the expected JSON type; protobuf JSON leaves empty fields out, hence defaults."""
    if name not in answer and default is not _MISSING:
        return default
    value = answer.get(name)
    if not isinstance(value, kind):
        raise RegistryUnavailable(
            f"MLflow's answer to {where} has no {kind.__name__} {name!r} ({json.dumps(answer)[:160]}); "
            "nothing was concluded"
        )
    return value


def _next_token(answer: dict[str, Any], endpoint: str) -> str | None:
    """The token of the next page; None (or an empty token, which would restart the search) on the last."""
    return _field(answer, "next_page_token", str, endpoint, default=None) or None


def _models(answer: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    models = _field(answer, "registered_models", list, SEARCH_MODELS, default=[])
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            raise RegistryUnavailable(
                f"MLflow's answer to {SEARCH_MODELS} lists a registered model without a name "
                f"({json.dumps(model)[:160]}); nothing was concluded"
            )
    return tuple(models)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


def _without_none(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _server_time_ms(response: httpx.Response) -> int:
    """The server's clock from its Date header, else ours."""
    try:
        import email.utils

        when = email.utils.parsedate_to_datetime(response.headers["date"])
    except (KeyError, TypeError, ValueError):
        when = datetime.now(UTC)
    return int(when.timestamp() * 1000)


def _updated_ms(model: dict[str, Any]) -> int:
    try:
        return int(model.get("last_updated_timestamp", 0))
    except (TypeError, ValueError):
        return 0


# -- turning a version into a record ---------------------------------------------------------


def _record(model: dict[str, Any], version: dict[str, Any], aliases: dict[str, list[str]]) -> ModelRecord:
    number = version.get("version")
    if not isinstance(number, str) or not number.isdigit():
        raise RecordUnreadable(f"version {number!r} of {model['name']!r} is not a version number")
    created = _timestamp(version, "creation_timestamp", required=True)
    source, run_id = _text(version, "source"), _text(version, "run_id")
    tags, model_tags = _tags(version), _tags(model)
    identity = hashlib.blake2b(f"{number}\0{created}\0{source}\0{run_id}".encode(), digest_size=16)
    return ModelRecord(
        name=f"{model['name']}/{number}",
        key=identity.hexdigest(),
        revision=number,
        created_at=created,
        last_modified=_timestamp(version, "last_updated_timestamp", required=False),
        lineage=_lineage(tags if "base_model" in tags else model_tags),
        extra={
            "stage": _text(version, "current_stage"),
            "aliases": aliases.get(number, []),
            "tags": tags,
            "model_tags": model_tags,
            "source": source,
            "run_id": run_id,
            "model_id": _text(version, "model_id"),
            "status": _text(version, "status"),
        },
    )


def _aliases(model: dict[str, Any]) -> dict[str, list[str]]:
    """Version number -> its aliases, from a registered model's `aliases: [{alias, version}]`."""
    by_version: dict[str, list[str]] = {}
    for item in model.get("aliases") or ():
        if isinstance(item, dict) and isinstance(item.get("alias"), str):
            by_version.setdefault(str(item.get("version")), []).append(item["alias"])
    return {number: sorted(names) for number, names in by_version.items()}


def _tags(entity: dict[str, Any]) -> dict[str, str]:
    tags = entity.get("tags") or []
    if not isinstance(tags, list):
        raise RecordUnreadable(f"the tags of {entity.get('name')!r} are not a list")
    return {str(tag["key"]): str(tag.get("value", "")) for tag in tags if isinstance(tag, dict) and "key" in tag}


def _lineage(tags: dict[str, str]) -> tuple[Lineage, ...]:
    bases = [name.strip() for name in tags.get("base_model", "").split(",") if name.strip()]
    try:
        return lineage({"base_model": bases, "base_model_relation": tags.get("base_model_relation")})
    except CardError as exc:
        raise RecordUnreadable(f"tag base_model_relation: {exc}") from exc


def _text(version: dict[str, Any], name: str) -> str | None:
    """A string field; protobuf JSON leaves empty ones out, and an empty one says nothing."""
    value = version.get(name)
    return str(value) if value not in (None, "") else None


def _timestamp(version: dict[str, Any], name: str, *, required: bool) -> str | None:
    """An epoch-milliseconds field (a number, or a string as proto3 JSON allows) as ISO 8601 UTC."""
    value = version.get(name)
    if value is None and not required:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat(timespec="milliseconds")
    except (TypeError, ValueError, OverflowError, OSError):
        raise RecordUnreadable(
            f"{name} {value!r} of version {version.get('version')!r} is not epoch milliseconds") from None


def _archive_source(config: RegistryConfig, record: ModelRecord) -> Any:
    from tools.archive.sources import MlflowSource, SourceError

    model, _, version = record.name.rpartition("/")
    if not model or version != record.revision:
        raise SourceError(f"{record.name} is not an MLflow model version name ('<model>/<version>') of "
                          f"version {record.revision!r}; nothing was archived")
    return MlflowSource(config.settings["url"], model, version, token=config.token())


KIND = register_kind(RegistryKind(
    name="mlflow",
    settings=(Setting("url", "the tracking server", metavar="URL", required=True, url=True),),
    adapter=lambda config, opening: MLflowRegistry(config.setting("url"), token=opening.token,
                                                   on_wait=opening.on_wait),
    archive_source=_archive_source,
))
