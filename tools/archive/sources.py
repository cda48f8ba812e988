"""Where an approved archive's bytes come from: one class per registry kind, with the same three methods.

- `files(record)`: the files of the pinned revision, each with what its bytes are checked by: the
  sha256 recorded when the model was observed, or for a Hub file kept in git rather than LFS, its
  git blob id at that revision; an MLflow artifact has only the size its server lists (MLflow keeps
  no digest of an artifact), and its sha256 is the one computed on download.
- `fetch(file, partial)`: write the file's bytes into `partial`, resuming a partial file where the
  source allows it (HTTP `Range`).
- `documents()`: provenance the source itself gathers, by name under `provenance/` (the MLflow
  artifact location; an OpenAI fine-tune's job, checkpoints and files).

`metadata_only` sources (OpenAI fine-tunes, whose weights cannot be downloaded) have no files; the
archive then holds their provenance alone, labelled metadata-only.

Which source serves a registry is its kind's (`RegistryKind.archive_source`, in the adapter's module);
`source_for` asks it.

Registry text is untrusted: a file path from a listing is checked by the archive store before any
byte is written, and a source never follows a path outside the model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from tools.registries.http import (
    CLIENT_ERRORS,
    RETRY_STATUSES,
    RetryPolicy,
    Transient,
    json_of,
    request,
    server_wait,
    tls_context,
    transport_faults,
    with_retries,
)
from tools.registries.local import Vanished, hex_digest, open_model_file
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import ModelRecord
from weightkeeper.errors import RegistryUnavailable, WeightkeeperError
from weightkeeper.registry import RecordUnreadable, registry_kind

if TYPE_CHECKING:  # the SDK is imported only when an OpenAI fine-tune is archived
    from tools.registries.openai_finetunes import OpenAIRegistry

CHUNK = 8 << 20
MLFLOW_API = "/api/2.0/mlflow/"
MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
# What the OpenAI API answers for a file this key may not read: its training data ("Not allowed to download
# files of purpose: fine-tune"), another project's file, a deleted one. Recorded as a refusal, not retried.
REFUSED = frozenset({400, 403, 404})


class SourceError(WeightkeeperError):
    """The source cannot give the model's files: what went wrong and what to do."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # within the model
    size: int | None
    sha256: str | None  # recorded when the model was observed
    git_sha1: str | None = None  # the Hub's git blob id: checks a file that has no LFS sha256

    def upstream_digest(self) -> dict[str, str] | None:
        """The digest the bytes were checked against, as recorded upstream; None when the registry gives none
        (MLflow): the archived sha256 is then only what was computed on download."""
        if self.sha256 is not None:
            return {"sha256": self.sha256}
        if self.git_sha1 is not None:
            return {"git_sha1": self.git_sha1}
        return None


class Source(Protocol):
    metadata_only: bool

    def files(self, record: ModelRecord) -> list[SourceFile]: ...

    def fetch(self, file: SourceFile, partial: Path) -> None: ...

    def documents(self) -> dict[str, Any]:
        """Provenance this source gathers itself, by name under `provenance/`: bytes are kept as they are,
        anything else as JSON. Most sources have none: their record and files say it all."""
        return {}


def git_blob_sha1(path: Path) -> str:
    """The id git gives a file's bytes (`sha1("blob <size>\\0" + bytes)`): how the Hub names a non-LFS file."""
    with path.open("rb") as handle:
        return hex_digest(handle, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


class LocalSource(Source):
    """A model folder of the local registry: a copy of each recorded file."""

    metadata_only = False

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name

    def files(self, record: ModelRecord) -> list[SourceFile]:
        return [SourceFile(entry.path, entry.size, entry.sha256) for entry in record.files]

    def fetch(self, file: SourceFile, partial: Path) -> None:
        """A copy of the file, opened as a scan opens it: the folder may have changed since the scan, and a link
        out of the registry or a FIFO is never read."""
        source = self.root / self.name / file.path
        try:
            fd = open_model_file(self.root, self.name, file.path)
        except Vanished:
            raise SourceError(f"{source} is gone from the local registry; it can no longer be archived from there"
                              ) from None
        except RecordUnreadable as exc:
            raise SourceError(f"{exc}; nothing was archived") from exc
        with open(fd, "rb") as handle, partial.open("wb") as out:
            shutil.copyfileobj(handle, out, CHUNK)


class HubSource(Source):
    """A Hub model repository at a pinned revision: each file from `/{repo}/resolve/{revision}/{path}`."""

    metadata_only = False

    def __init__(self, endpoint: str, name: str, revision: str, *, token: str | None,
                 policy: RetryPolicy = RetryPolicy(), timeout: float = 60.0) -> None:
        self.endpoint, self.name, self.revision, self.policy = endpoint.rstrip("/"), name, revision, policy
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True, verify=tls_context())

    def files(self, record: ModelRecord) -> list[SourceFile]:
        """The recorded files, each with its LFS sha256 or, for a git-stored file, its blob id read from the
        tree at the pinned revision (a revision's tree never changes)."""
        blob_ids = self._blob_ids()
        files = []
        for entry in record.files:
            git_sha1 = None if entry.sha256 else blob_ids.get(entry.path)
            if entry.sha256 is None and git_sha1 is None:
                raise SourceError(f"{self.name}@{self.revision}: {entry.path} has neither an LFS sha256 nor a git "
                                  "blob id, so its bytes could not be verified; nothing was archived")
            files.append(SourceFile(entry.path, entry.size, entry.sha256, git_sha1))
        return files

    def fetch(self, file: SourceFile, partial: Path) -> None:
        url = f"{self.endpoint}/{self.name}/resolve/{quote(self.revision, safe='')}/{quote(file.path)}"
        download(self.client, url, partial, what=f"downloading {self.name}/{file.path}", policy=self.policy,
                 hint="a private or gated repository needs the registry's token_env")

    def _blob_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        url: str | None = f"{self.endpoint}/api/models/{self.name}/tree/{quote(self.revision, safe='')}"
        params: dict[str, Any] | None = {"recursive": True}
        while url is not None:
            response = get(self.client, url, params, what=f"listing {self.name}@{self.revision}",
                           failure="the revision's files cannot be listed", policy=self.policy)
            for item in response.json():
                if item.get("type") == "file" and isinstance(item.get("oid"), str):
                    ids[item["path"]] = item["oid"]
            url, params = response.links.get("next", {}).get("url"), None
        return ids


class MlflowSource(Source):
    """One MLflow model version's artifacts, from the tracking server that serves them (`mlflow server` with
    artifact serving, its default). `model-versions/get-download-uri` says where they are: a run's artifact
    folder, an MLflow 3 logged model's (`models:/m-...` sources resolve to it), or `runs:/<run>/<path>`,
    resolved through `runs/get`. The artifact proxy lists them a folder at a time
    (`GET mlflow-artifacts/artifacts?path=`, with each file's size) and serves each with `Range`
    (`mlflow-artifacts/artifacts/<path>`). MLflow keeps no digest of an artifact: a file is checked
    against its listed size, and its sha256 is the one computed on download."""

    metadata_only = False

    def __init__(self, url: str, model: str, version: str, *, token: str | None,
                 policy: RetryPolicy = RetryPolicy(), timeout: float = 60.0) -> None:
        self.url, self.model, self.version, self.policy = url.rstrip("/"), model, version, policy
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(headers=headers, timeout=timeout, verify=tls_context())

    def files(self, record: ModelRecord) -> list[SourceFile]:
        found = list(self._listing(""))
        if not found:
            raise SourceError(f"{self.model} version {self.version}: MLflow lists no artifact at "
                              f"{self._location['artifact_uri']}, so there is nothing to archive")
        return found

    def fetch(self, file: SourceFile, partial: Path) -> None:
        url = f"{self.url}{MLFLOW_ARTIFACTS}/{quote(self._location['path'] + '/' + file.path)}"
        download(self.client, url, partial, what=f"downloading {self.model} version {self.version}: {file.path}",
                 policy=self.policy, hint="the server's token_env, or the artifact was deleted from its store")

    def documents(self) -> dict[str, Any]:
        return {"mlflow/artifacts.json": {**self._location, "served_by": f"{self.url}{MLFLOW_ARTIFACTS}",
                                          "upstream_digest": None}}

    @cached_property
    def _location(self) -> dict[str, str]:
        """Where the version's artifacts are, as MLflow says it, and the path its artifact proxy serves them at."""
        answer = self._json(f"{MLFLOW_API}model-versions/get-download-uri",
                            {"name": self.model, "version": self.version})
        download_uri = _text(answer, "artifact_uri", where="model-versions/get-download-uri")
        artifact_uri = download_uri
        if download_uri.startswith("runs:/"):
            run_id, _, path = download_uri.removeprefix("runs:/").partition("/")
            run = self._json(f"{MLFLOW_API}runs/get", {"run_id": run_id}).get("run")
            info = run.get("info") if isinstance(run, dict) else None
            artifact_uri = f"{_text(info, 'artifact_uri', where='runs/get').rstrip('/')}/{path}"
        return {"download_uri": download_uri, "artifact_uri": artifact_uri, "path": self._proxied_path(artifact_uri)}

    def _proxied_path(self, uri: str) -> str:
        """The path of `uri` under this server's artifact proxy; a SourceError for a location it does not serve."""
        parts = urlsplit(uri)
        served = f"{self.url}{MLFLOW_ARTIFACTS}/"
        if parts.scheme == "mlflow-artifacts" and parts.netloc in ("", urlsplit(self.url).netloc):
            path = parts.path
        elif parts.scheme in ("http", "https") and uri.startswith(served):
            path = uri.removeprefix(served)
        else:
            raise SourceError(f"{self.model} version {self.version}: its artifacts are at {uri}, which the tracking "
                              f"server at {self.url} does not serve (it serves mlflow-artifacts:/ locations when "
                              "started with artifact serving, e.g. --artifacts-destination); nothing was archived")
        return path.strip("/")

    def _listing(self, folder: str) -> Iterator[SourceFile]:
        """The files under `folder` (relative to the version's artifacts), depth first."""
        path = f"{self._location['path']}/{folder}".rstrip("/")
        entries = self._json(MLFLOW_ARTIFACTS, {"path": path}).get("files", [])
        if not isinstance(entries, list):
            raise SourceError(f"MLflow's listing of {path} is not a list of files; nothing was archived")
        for entry in entries:
            name = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
                raise SourceError(f"MLflow's listing of {path} has an entry {entry!r} that is not a file or folder "
                                  "name; nothing was archived")
            relative = f"{folder}/{name}" if folder else name
            if entry.get("is_dir"):
                yield from self._listing(relative)
            else:
                yield SourceFile(relative, _listed_size(entry, path), None)

    def _json(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        what = f"MLflow at {self.url}: GET {endpoint}"
        response = get(self.client, f"{self.url}{endpoint}", params, what=what, policy=self.policy, failure=(
            f"{self.model} version {self.version} cannot be archived from there (deleted, or the token in "
            "token_env may not read it)"))
        answer = json_of(response, what)
        if not isinstance(answer, dict):
            raise RegistryUnavailable(f"{what}: the answer is not a JSON object; nothing was archived")
        return answer


class OpenAISource(Source):
    """An OpenAI fine-tune, metadata only: the API never gives its weights. The archive keeps what the API says
    of the job that produced it: the job (base model, method, hyperparameters, files, status, trained
    tokens…), its checkpoints, each result file and, where the API allows, the training and validation
    files; a file it refuses (it refuses files of purpose fine-tune) is recorded with its refusal. Read
    through the registry adapter, its client, retries and redaction, so the API key is in no document."""

    metadata_only = True

    def __init__(self, api: OpenAIRegistry, job_id: str) -> None:
        self.api, self.job_id = api, job_id

    def files(self, record: ModelRecord) -> list[SourceFile]:
        return []

    def fetch(self, file: SourceFile, partial: Path) -> None:
        raise SourceError("an OpenAI fine-tune's weights cannot be downloaded; its archive holds its metadata only")

    def documents(self) -> dict[str, Any]:
        api = self.api
        job = api._call(f"reading the fine-tuning job {self.job_id} (fine_tuning.jobs.retrieve)",
                        lambda: api.client.fine_tuning.jobs.with_raw_response.retrieve(self.job_id))
        if job.id != self.job_id:
            raise SourceError(f"asked for the fine-tuning job {self.job_id}, the API answered with {job.id!r}; "
                              "nothing was archived")
        documents: dict[str, Any] = {
            "openai/job.json": job.to_dict(mode="json"),
            "openai/checkpoints.json": [point.to_dict(mode="json") for point in api._job_checkpoints(self.job_id)],
        }
        roles = [*(("result", file_id) for file_id in job.result_files or ()),
                 ("training", job.training_file), ("validation", job.validation_file)]
        for role, file_id in roles:
            if file_id:
                documents |= self._file(role, file_id)
        return documents

    def _file(self, role: str, file_id: str) -> dict[str, Any]:
        """`openai/files/<id>.json`, the file's metadata, and `<id>.content`, its bytes as the API serves them;
        or what the API answered instead of them."""
        import openai

        api, name = self.api, f"openai/files/{file_id}"
        entry: dict[str, Any] = {"role": role, "id": file_id}
        try:
            entry["file"] = api._call(f"reading the {role} file {file_id} (files.retrieve)",
                                      lambda: api.client.files.with_raw_response.retrieve(file_id),
                                      passthrough=REFUSED).to_dict(mode="json")
            content = self._content(file_id, f"downloading the {role} file {file_id} (files.content)")
        except openai.APIStatusError as exc:
            return {f"{name}.json": {**entry, "refused": api._describe(exc)}}
        return {f"{name}.json": {**entry, "content": f"{file_id}.content"}, f"{name}.content": content}

    def _content(self, file_id: str, what: str) -> bytes:
        """The file's bytes; a refusal (REFUSED) is raised as the SDK's error, anything else makes the archive
        unfinished for a rerun (not retried here: the adapter's retries read JSON answers only)."""
        import openai

        try:
            return self.api.client.files.content(file_id).content
        except openai.APIStatusError as exc:
            if exc.status_code in REFUSED:
                raise
            raise RegistryUnavailable(f"{what}: {self.api._describe(exc)}") from None
        except openai.APIError as exc:
            raise RegistryUnavailable(f"{what}: no answer from {self.api.base_url} ({type(exc).__name__})") from None


def get(client: httpx.Client, url: str, params: dict[str, Any] | None, *, what: str, failure: str,
        policy: RetryPolicy) -> httpx.Response:
    """A GET retried as the adapters retry (`tools.registries.http.request`); a refusal (4xx) is final, a
    SourceError saying `failure`: a rerun would be refused again."""
    response = request(client, "GET", url, what=what, ok_statuses=CLIENT_ERRORS, policy=policy, params=params)
    if not response.is_success:
        raise SourceError(f"{what}: HTTP {response.status_code} {response.text[:200]!r}; {failure}")
    return response


def download(client: httpx.Client, url: str, partial: Path, *, what: str, policy: RetryPolicy, hint: str) -> None:
    """The bytes of `url` into `partial`, retried as the adapters retry, each attempt from where the one before
    stopped (`Range`); what arrives is kept as it arrives, so a broken transfer keeps what came. A refusal is
    a SourceError that says `hint`."""
    with_retries(lambda: _download_once(client, url, partial, hint), what=what, policy=policy)


def _download_once(client: httpx.Client, url: str, partial: Path, hint: str) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with transport_faults(), client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and have:  # the partial file is already complete
            return
        if response.status_code in RETRY_STATUSES:
            raise Transient(f"HTTP {response.status_code}", server_wait(response))
        if not response.is_success:
            raise SourceError(f"{url}: HTTP {response.status_code}; the file cannot be downloaded ({hint})")
        mode = "ab" if response.status_code == 206 else "wb"  # 200: the server ignored the range
        with partial.open(mode) as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())


def source_for(registry: RegistryConfig, record: ModelRecord) -> Source:
    """The source that can give `record`'s files, built by the registry's kind; a token is read from the
    environment variable the registry names, now (unset: RegistryUnavailable, so `act` runs it again once it
    is set), and kept only by the client."""
    kind = registry_kind(registry.kind)
    if kind is None or kind.archive_source is None:
        raise SourceError(f"archiving from a {registry.kind} registry is not supported yet; the approval stays unused")
    source: Source = kind.archive_source(registry, record)
    return source


def _text(answer: Any, name: str, *, where: str) -> str:
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise RegistryUnavailable(f"MLflow's answer to {where} has no {name}; nothing was archived")
    return value


def _listed_size(entry: dict[str, Any], folder: str) -> int | None:
    """A listed file's size; None when the listing gives none (MLflow's JSON also leaves a size of 0 out, and
    some artifact stores report no size), which leaves the size unchecked."""
    size = entry.get("file_size")
    if size is None:
        return None
    try:
        return int(size)  # int64: a number, or a string as proto3 JSON allows
    except (TypeError, ValueError):
        raise SourceError(f"MLflow's listing of {folder} gives {entry['path']!r} the size {size!r}, which is not a "
                          "number; nothing was archived") from None
