"""OpenAI fine-tuned models through the `openai` SDK, with their lineage, training evidence and shutdown dates.

One record per model of `models.list` that is a fine-tune (`ft:...`, checkpoints included) or the base of
a fine-tuning job; its key is the id of the job that produced it, which nothing renames. `pages()` reads
`models.list` and every fine-tuning job first, then checkpoints page by page. A lookup concludes `Gone`
only while the job that produced the model is still visible to this key: OpenAI answers 404 alike for a
deleted model and for one of another project. Retries are this adapter's (the SDK's `max_retries=0`),
following the SDK's rules, so each wait reaches `on_wait`; the API key never appears in a message.
With `organization`, every request names that organisation (the `OpenAI-Organization` header); a registry
with `organizations` is one shard per organisation. What is read, and why: docs/registries/openai.md.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK is imported when the adapter is built: the registry kinds are read at every start
    import openai
    from tools.registries.deprecations import Deprecation
    from openai.types import Model
    from openai.types.fine_tuning import FineTuningJob
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from tools.registries.http import RetryPolicy, Transient, WaitReporter, server_wait, with_retries
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import Card, Found, Gone, Lineage, LookupResult, ModelRecord, Page, Visibility
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import (
    Opening,
    RecordUnreadable,
    Registry,
    RegistryKind,
    Setting,
    register_kind,
    shards_by,
)

FINE_TUNED = "ft:"
CHECKPOINT = re.compile(r"^(?P<model>ft:.+):ckpt-step-(?P<step>\d+)$")
QUOTED_KEY = re.compile(r"\bsk-[A-Za-z0-9_*\-]{4,}")
PER_REQUEST = 100
DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_HINT = f"is base_url the API root, ending in /v1 (like {DEFAULT_BASE_URL})?"
KEY_HINT = ("put a valid key in the environment variable this registry's token_env names "
            "(OPENAI_API_KEY unless set)")
ORGANIZATION_ID = r"org-[A-Za-z0-9]+"
ORGANIZATION_RULE = ("an OpenAI organisation id (org- and letters and digits, as platform.openai.com shows under "
                     "Settings > Organization > General)")
# What the API answers (401) a key that does not belong to the organisation the header names.
ORGANIZATION_REFUSED = frozenset({"mismatched_organization", "invalid_organization"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a listing knows of the whole registry: the models, the jobs behind them, the announced shutdowns."""

    models: dict[str, Model]
    jobs: dict[str, FineTuningJob]  # by the fine-tuned model each produced
    job_bases: frozenset[str]  # the models any job fine-tuned, whatever became of the job
    deprecations: dict[str, Deprecation]


@dataclass(frozen=True, slots=True)
class Listed:
    """One model of a page with all its record is built from; `problem` says why it cannot be read."""

    model: Model
    job: FineTuningJob | None
    checkpoints: tuple[FineTuningJobCheckpoint, ...]
    shutdown_date: str | None
    successor: str | None
    problem: str | None = None


class OpenAIRegistry(Registry):
    kind = "openai"
    unlisted: frozenset[Visibility] = frozenset()
    # A model's id is its name and is never reused; its key (the job's id, once the job is listed) may change.
    stable_keys = False
    resumes_see_renames = True  # nothing is renamed: a model id not found is gone

    def __init__(self, base_url: str | None, *, api_key: str | None, deprecations: str | None,
                 organization: str | None = None, on_wait: WaitReporter | None = None,
                 policy: RetryPolicy = RetryPolicy(), timeout: float = 60.0, page_size: int = 50,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not api_key:
            raise RegistryUnavailable(f"an OpenAI registry needs an API key; {KEY_HINT}")
        from openai import OpenAI

        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.deprecations_source = deprecations
        self.on_wait, self.policy, self.timeout, self.page_size, self.sleep = on_wait, policy, timeout, page_size, sleep
        self._api_key = api_key
        self.organization = organization
        self.client = OpenAI(base_url=self.base_url, api_key=api_key, organization=organization, max_retries=0,
                             timeout=timeout)
        # Without one the SDK takes $OPENAI_ORG_ID: the organisation scanned is the table's, never the shell's.
        self.client.organization = organization
        self._snapshot: Snapshot | None = None
        self._deprecations: dict[str, Deprecation] | None = None
        self._checkpoints: dict[str, tuple[FineTuningJobCheckpoint, ...]] = {}

    # -- the adapter protocol -------------------------------------------------------------------

    def pages(self, cursor: str | None) -> Iterator[Page]:
        snapshot = self._snapshot = self._read_snapshot()
        names = listed_names(snapshot)
        start = bisect.bisect_right(names, cursor) if cursor else 0
        for offset in range(start, len(names), self.page_size):
            chunk = names[offset : offset + self.page_size]
            yield Page(tuple(self._listed(name, snapshot) for name in chunk), cursor=chunk[-1])

    def record(self, item: Listed) -> ModelRecord:
        return record_of(item)

    def item_name(self, item: Listed) -> str:
        return item.model.id

    def close(self) -> None:
        self.client.close()

    def lookup(self, name: str) -> LookupResult:
        import openai
        from openai.types import Model

        try:
            model = self._call(f"looking up {name}", lambda: self.client.models.with_raw_response.retrieve(name),
                               passthrough=frozenset({404}))
        except openai.NotFoundError as exc:
            if _error_field(exc, "code") != "model_not_found":
                raise RegistryUnavailable(self._status_message(f"looking up {name}", exc)) from None
            return self._gone(name)
        if not isinstance(model, Model) or model.id != name:
            raise RegistryUnavailable(f"looking up {name}: the answer is not that model; nothing was concluded")
        snapshot = self._current_snapshot()
        listed = self._listed(name, replace(snapshot, models={**snapshot.models, name: model}))
        try:
            return Found(record_of(listed))
        except RecordUnreadable as exc:
            raise RegistryUnavailable(f"{name} exists but cannot be read: {exc}") from exc

    def check(self) -> str:
        models = self._list_models()
        fine_tuned = sum(name.startswith(FINE_TUNED) for name in models)
        self._call("listing fine-tuning jobs (fine_tuning.jobs.list)",
                   lambda: self.client.fine_tuning.jobs.with_raw_response.list(limit=1))
        scope = f" for organisation {self.organization}" if self.organization else ""
        verified = (f"the OpenAI API at {self.base_url} accepted the API key{scope}: models.list answered with "
                    f"{len(models)} models ({fine_tuned} fine-tuned) and fine_tuning.jobs.list answered")
        if self.deprecations_source:
            verified += (f"; the deprecations page {self.deprecations_source} names "
                         f"{len(self._deprecation_index())} models")
        return verified

    # -- reading the registry -------------------------------------------------------------------

    def _read_snapshot(self) -> Snapshot:
        models = self._list_models()
        jobs = list(self._every("listing fine-tuning jobs (fine_tuning.jobs.list)",
                                lambda after: self.client.fine_tuning.jobs.with_raw_response.list(
                                    limit=PER_REQUEST, **after)))
        return Snapshot(models, {job.fine_tuned_model: job for job in jobs if isinstance(job.fine_tuned_model, str)},
                        frozenset(job.model for job in jobs if isinstance(job.model, str)),
                        self._deprecation_index())

    def _current_snapshot(self) -> Snapshot:
        """The snapshot this adapter's listing read, for lookups after it; read now when none was."""
        if self._snapshot is None:
            self._snapshot = self._read_snapshot()
        return self._snapshot

    def _list_models(self) -> dict[str, Model]:
        page = self._call("listing models (models.list)", lambda: self.client.models.with_raw_response.list())
        if not isinstance(page.data, list) or not all(isinstance(model.id, str) for model in page.data):
            raise RegistryUnavailable("listing models (models.list): the answer is not a list of models with ids; "
                                      "nothing was concluded")
        return {model.id: model for model in page.data}

    def _job_checkpoints(self, job_id: str) -> tuple[FineTuningJobCheckpoint, ...]:
        if job_id not in self._checkpoints:
            self._checkpoints[job_id] = tuple(self._every(
                f"listing the checkpoints of {job_id} (fine_tuning.jobs.checkpoints.list)",
                lambda after: self.client.fine_tuning.jobs.checkpoints.with_raw_response.list(
                    job_id, limit=PER_REQUEST, **after)))
        return self._checkpoints[job_id]

    def _every(self, what: str, send: Callable[[dict[str, str]], Any]) -> Iterator[Any]:
        """Every item of a cursor-paged listing: the next page starts `after` the last item's id, while `has_more`."""
        after: dict[str, str] = {}
        while True:
            page = self._call(what, lambda: send(after))
            if not isinstance(page.data, list) or not all(isinstance(item.id, str) for item in page.data):
                raise RegistryUnavailable(f"{what}: the answer is not a list of items with ids; nothing was concluded")
            if page.data and page.data[-1].id == after.get("after"):
                raise RegistryUnavailable(f"{what}: the server ignores `after` and repeats a page; "
                                          f"{BASE_URL_HINT}")
            yield from page.data
            if not page.data or page.has_more is False:
                return
            after = {"after": page.data[-1].id}

    def _listed(self, name: str, snapshot: Snapshot) -> Listed:
        job = snapshot.jobs.get(final_model(name)) if name.startswith(FINE_TUNED) else None
        checkpoints = self._job_checkpoints(job.id) if job is not None else ()
        try:
            shutdown_date, successor = shutdown_of(name, snapshot)
        except ValueError as exc:
            return Listed(snapshot.models[name], job, checkpoints, None, None, f"its shutdown_date: {exc}")
        return Listed(snapshot.models[name], job, checkpoints, shutdown_date, successor)

    def _gone(self, name: str) -> LookupResult:
        if not name.startswith(FINE_TUNED):
            return Gone("models.retrieve answered 404 model_not_found")
        job = self._current_snapshot().jobs.get(final_model(name))
        if job is None:
            raise RegistryUnavailable(
                f"looking up {name}: models.retrieve answered 404 model_not_found, which OpenAI also answers for a "
                "model of another project or organisation, and no fine-tuning job this key can see produced it; "
                "nothing was concluded (was the API key changed?)"
            )
        return Gone(f"models.retrieve answered 404 model_not_found while the fine-tuning job {job.id} that produced "
                    "it is still visible to this key: the model was deleted, not hidden")

    def _deprecation_index(self) -> dict[str, Deprecation]:
        """The deprecations page's entries by model, read once per adapter (one adapter serves one scan)."""
        if self._deprecations is None:
            self._deprecations = self._read_deprecations(self.deprecations_source) if self.deprecations_source else {}
        return self._deprecations

    def _read_deprecations(self, source: str) -> dict[str, Deprecation]:
        from tools.registries.deprecations import (
            DeprecationsPageError,
            by_model,
            parse_deprecations,
            read_deprecations,
        )

        try:
            text = read_deprecations(source, policy=self.policy, on_wait=self.on_wait, sleep=self.sleep,
                                     timeout=self.timeout)
            return by_model(parse_deprecations(text))
        except DeprecationsPageError as exc:
            raise RegistryUnavailable(
                f"the deprecations page {source} cannot be read: {exc}; fix the page, or point `deprecations` "
                "in weightkeeper.toml at the provider's page (markdown or HTML)"
            ) from exc

    # -- one request, retried ---------------------------------------------------------------------

    def _call(self, what: str, send: Callable[[], Any], *, passthrough: frozenset[int] = frozenset()) -> Any:
        """Send one request through the SDK, retrying what is transient; the parsed answer, or RegistryUnavailable.

        An error status in `passthrough` is raised as the SDK's exception, for the caller to read.
        """

        import openai

        def attempt() -> Any:
            try:
                return self._parse(what, send())
            except openai.APIStatusError as exc:
                if exc.status_code in passthrough:
                    raise
                if not _retryable(exc):
                    # `from None`: the SDK's exception text holds the server's message, which may quote the key.
                    raise RegistryUnavailable(self._status_message(what, exc)) from None
                raise Transient(self._describe(exc), server_wait(exc.response)) from None
            except openai.APITimeoutError:
                raise Transient(f"no answer from {self.base_url} within {self.timeout:g} s") from None
            except openai.APIConnectionError as exc:
                raise Transient(f"cannot reach {self.base_url} ({_cause(exc)}); is the server up and base_url "
                                "right?") from None

        return with_retries(attempt, what=what, policy=self.policy, on_wait=self.on_wait, sleep=self.sleep)

    def _parse(self, what: str, raw: Any) -> Any:
        content_type = raw.headers.get("content-type", "")
        if not content_type.split(";")[0].strip().endswith("json"):
            raise RegistryUnavailable(f"{what}: {self.base_url} answered with {content_type or 'no content type'}, "
                                      f"not JSON; {BASE_URL_HINT}")
        try:
            return raw.parse()
        except ValueError as exc:
            raise RegistryUnavailable(
                f"{what}: the answer is not valid JSON ({type(exc).__name__}: {self._redact(str(exc))[:200]}); "
                "it may have been cut off, nothing was concluded"
            ) from None
        except (TypeError, AttributeError):
            # The SDK builds its page types only from a JSON object; a list, string or null fails in it.
            raise RegistryUnavailable(f"{what}: the answer is JSON but not an object of the API; {BASE_URL_HINT}"
                                      ) from None

    def _status_message(self, what: str, exc: openai.APIStatusError) -> str:
        problem = self._describe(exc)
        if exc.status_code == 401 and self.organization and _error_field(exc, "code") in ORGANIZATION_REFUSED:
            return (f"{what}: the OpenAI API at {self.base_url} refused organisation {self.organization} for this API "
                    f"key ({problem}): the key does not belong to it; correct the organisation id in `organization` "
                    "or `organizations` in weightkeeper.toml, or give the registry a key of that organisation")
        if exc.status_code == 401:
            return f"{what}: the OpenAI API at {self.base_url} rejected the API key ({problem}); {KEY_HINT}"
        if exc.status_code == 403:
            return (f"{what}: the API key may not do this ({problem}); a restricted key needs read access to "
                    "Models and Fine-tuning")
        if exc.status_code == 404:
            return f"{what}: {self.base_url} answered {problem}; {BASE_URL_HINT}"
        return f"{what}: {problem}; nothing was concluded"

    def _describe(self, exc: openai.APIStatusError) -> str:
        code, message = _error_field(exc, "code"), _error_field(exc, "message")
        if message is None and isinstance(exc.body, str):
            message = exc.body
        text = f"HTTP {exc.status_code}" + (f" {code}" if code else "")
        if message:
            text += f": {' '.join(self._redact(message).split())[:300]}"
        return text

    def _redact(self, text: str) -> str:
        """The text without our key, or any key a server quotes back (OpenAI's 401 quotes it masked)."""
        return QUOTED_KEY.sub("[API key]", text.replace(self._api_key, "[API key]"))


# -- from what the API says to records --------------------------------------------------------------


def listed_names(snapshot: Snapshot) -> list[str]:
    """The fine-tuned models, and the base models they are built on that `models.list` has.

    A base model is listed while any fine-tuning job names it, even after the last fine-tune on it was
    deleted: jobs are never deleted, so it leaves the listing only when `models.list` drops it, and
    is never suspected missing while it is there.
    """
    fine_tuned = [name for name in snapshot.models if name.startswith(FINE_TUNED)]
    roots = {chain[-1] for name in fine_tuned if (chain := ancestors(name, snapshot))}
    bases = {name for name in roots | snapshot.job_bases if not name.startswith(FINE_TUNED)}
    return sorted({*fine_tuned, *(base for base in bases if base in snapshot.models)})


def ancestors(name: str, snapshot: Snapshot) -> list[str]:
    """The models `name` was built from, nearest first (a base model has none)."""
    chain: list[str] = []
    parent = parent_of(name, snapshot)
    while parent is not None and parent != name and parent not in chain:
        chain.append(parent)
        parent = parent_of(parent, snapshot)
    return chain


def parent_of(name: str, snapshot: Snapshot) -> str | None:
    if not name.startswith(FINE_TUNED):
        return None
    job = snapshot.jobs.get(final_model(name))
    return job.model if job is not None and isinstance(job.model, str) else name.split(":")[1]


def final_model(name: str) -> str:
    """The fine-tuned model a checkpoint belongs to (the name itself for any other model)."""
    checkpoint = CHECKPOINT.match(name)
    return checkpoint.group("model") if checkpoint else name


def shutdown_of(name: str, snapshot: Snapshot) -> tuple[str | None, str | None]:
    """The model's shutdown date and successor: its own, unless a model it was built on stops earlier."""
    date, successor, _ = own_shutdown(name, snapshot)
    inherited = []
    for ancestor in ancestors(name, snapshot):
        try:
            ancestor_date, _, shared = own_shutdown(ancestor, snapshot)
        except ValueError:
            continue  # the ancestor's own record reports its unreadable date
        if ancestor_date and shared:
            inherited.append(ancestor_date)
    earliest = min(inherited, default=None)
    if earliest and (date is None or earliest < date):
        return earliest, None
    return date, successor


def own_shutdown(name: str, snapshot: Snapshot) -> tuple[str | None, str | None, bool]:
    """The shutdown date and successor announced for this model itself, and whether its fine-tunes stop with it.

    The API's `shutdown_date` comes first; the deprecations page adds the replacement, and may say
    fine-tuned models are spared.
    """
    entry = snapshot.deprecations.get(name)
    model = snapshot.models.get(name)
    stated = model.shutdown_date if model is not None else None
    shared = entry is None or entry.fine_tunes_affected
    if stated:
        from tools.registries.deprecations import find_date

        date = find_date(str(stated))
        if date is None:
            raise ValueError(f"the API gives {stated!r}, which is not a date")
        return date, entry.replacement if entry else None, shared
    if entry is not None:
        return entry.shutdown_date, entry.replacement, shared
    return None, None, False


def record_of(listed: Listed) -> ModelRecord:
    if listed.problem:
        raise RecordUnreadable(listed.problem)
    model, job = listed.model, listed.job
    extra: dict[str, Any] = {"owned_by": model.owned_by} if isinstance(model.owned_by, str) else {}
    common = {"name": model.id, "created_at": _iso(model.created), "shutdown_date": listed.shutdown_date,
              "successor": listed.successor}
    if not model.id.startswith(FINE_TUNED):
        return ModelRecord(key=model.id, visibility=Visibility.PUBLIC, extra=extra, **common)
    checkpoint = CHECKPOINT.match(model.id)
    if checkpoint:
        extra |= {"checkpoint_of": checkpoint.group("model"), "step": int(checkpoint.group("step"))}
    if job is None:
        return ModelRecord(key=model.id, visibility=Visibility.PRIVATE, extra=extra,
                           lineage=(Lineage(model.id.split(":")[1], "finetune"),), **common)
    if not isinstance(job.model, str):
        raise RecordUnreadable(f"its fine-tuning job {job.id} names no base model")
    training = training_evidence(job, listed.checkpoints)
    datasets = tuple(file for file in (job.training_file, job.validation_file) if isinstance(file, str))
    card_digest = hashlib.sha256(json.dumps([training, datasets], sort_keys=True).encode()).hexdigest()
    return ModelRecord(
        key=f"{job.id}:ckpt-step-{checkpoint.group('step')}" if checkpoint else job.id,
        last_modified=_iso(job.finished_at),
        visibility=Visibility.PRIVATE,
        lineage=(Lineage(job.model, "finetune"),),
        card=Card(digest=card_digest, training=training, datasets=datasets),
        extra=extra,
        **common,
    )


def training_evidence(job: FineTuningJob, checkpoints: tuple[FineTuningJobCheckpoint, ...]) -> dict[str, Any]:
    """What the job says of the training, with the checkpoints it kept (by step); empty fields left out."""
    evidence = {
        "job": job.id,
        "status": job.status,
        "base_model": job.model,
        "method": _plain(job.method),
        "hyperparameters": _plain(job.hyperparameters),
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "result_files": list(job.result_files or []),
        "trained_tokens": job.trained_tokens,
        "seed": job.seed,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "checkpoints": [
            {"id": point.id, "model": point.fine_tuned_model_checkpoint, "step": point.step_number,
             "created_at": _iso(point.created_at), "metrics": _plain(point.metrics)}
            for point in sorted(checkpoints, key=lambda point: point.step_number or 0)
        ],
    }
    return {key: value for key, value in evidence.items() if value not in (None, [], {})}


def _retryable(exc: openai.APIStatusError) -> bool:
    should_retry = exc.response.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return exc.status_code in (408, 409, 429) or exc.status_code >= 500


def _error_field(exc: openai.APIStatusError, name: str) -> str | None:
    """A field of OpenAI's error body `{"error": {"message", "type", "param", "code"}}` (the SDK unwraps "error")."""
    value = exc.body.get(name) if isinstance(exc.body, dict) else None
    return None if value is None else str(value)


def _cause(exc: openai.APIConnectionError) -> str:
    cause = exc.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)


def _plain(value: Any) -> Any:
    """An SDK object as plain JSON data, its unset and null fields left out."""
    return value.to_dict(exclude_none=True) if hasattr(value, "to_dict") else value


def _iso(timestamp: Any) -> str | None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def fine_tuning_job(record: ModelRecord) -> str | None:
    """The id of the fine-tuning job behind a record, from its training evidence (`training_evidence`); None for
    a base model, or a fine-tune whose job this key cannot see."""
    job = record.card.training.get("job") if record.card is not None and record.card.training else None
    return job if isinstance(job, str) else None


def _pin(record: ModelRecord) -> str | None:
    """A fine-tune has no revision: it is pinned by its key, the id of the job that produced it
    (`<job>:ckpt-step-N` for a checkpoint), which nothing renames or reruns. None when its job is not visible
    (the job is what its archive holds), and for a base model."""
    return record.key if fine_tuning_job(record) is not None else None


def _archive_source(config: RegistryConfig, record: ModelRecord) -> Any:
    from tools.archive.sources import OpenAISource, SourceError

    job_id = fine_tuning_job(record)
    if job_id is None:
        raise SourceError(f"{record.name} has no fine-tuning job visible to this key: there is nothing of it to archive")
    return OpenAISource(OpenAIRegistry(config.setting("base_url"), api_key=config.token(), deprecations=None,
                                       organization=config.setting("organization")), job_id)


def _adapter(config: RegistryConfig, opening: Opening) -> OpenAIRegistry:
    return OpenAIRegistry(config.setting("base_url"), api_key=opening.token, deprecations=config.setting("deprecations"),
                          organization=config.setting("organization"), on_wait=opening.on_wait)


def _location(config: RegistryConfig) -> str:
    """The API, and the organisations watched when the table names any: a change of them is a new listing."""
    base_url = config.setting("base_url") or DEFAULT_BASE_URL
    if organizations := config.settings.get("organizations"):
        return f"{base_url} (organizations {','.join(organizations)})"
    if organization := config.settings.get("organization"):
        return f"{base_url} (organization {organization})"
    return base_url


KIND = register_kind(RegistryKind(
    name="openai",
    settings=(
        Setting("base_url", f"the API (default {DEFAULT_BASE_URL})", metavar="URL", default=DEFAULT_BASE_URL, url=True),
        Setting("deprecations", "the provider's deprecations page", metavar="FILE_OR_URL", file=True),
        Setting("organization", "watch this organisation's fine-tunes (default the key's own)", metavar="ORG_ID",
                pattern=ORGANIZATION_ID, pattern_rule=ORGANIZATION_RULE),
        Setting("organizations", "watch these organisations' fine-tunes, each scanned as a registry of its own "
                "(NAME/ORG_ID), which workers scan in parallel", metavar="ORG_ID,ORG_ID", many=True,
                excludes="organization", pattern=ORGANIZATION_ID, pattern_rule=ORGANIZATION_RULE),
    ),
    adapter=_adapter,
    archive_source=_archive_source,
    pin=_pin,
    token_env="OPENAI_API_KEY",
    location=_location,
    # The shards are separate registries in the ledger, so no model id needs its organisation: one organisation's
    # fine-tunes (`ft:BASE:ORG-NAME::ID`, keyed by their job ids) and its base models are recorded under its shard.
    shards=shards_by("organizations", into="organization"),
))
