"""Where an approved archive's bytes come from: one class per registry kind, with the same two methods.

- `files(record)`: the files of the pinned revision, each with what its bytes are checked by: the
  sha256 recorded when the model was observed, or for a Hub file kept in git rather than LFS, its
  git blob id at that revision.
- `fetch(file, partial)`: write the file's bytes into `partial`, resuming a partial file where the
  source allows it (HTTP `Range`).

`metadata_only` sources (OpenAI fine-tunes, whose weights cannot be downloaded) have no files; the
archive then holds their provenance alone, labelled metadata-only.

Registry text is untrusted: a file path from a listing is checked by the archive store before any
byte is written, and a source never follows a path outside the model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from tools.registries.http import RETRY_STATUSES, RetryPolicy, Transient, server_wait, tls_context, with_retries
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import ModelRecord
from weightkeeper.errors import WeightkeeperError

CHUNK = 8 << 20


class SourceError(WeightkeeperError):
    """The source cannot give the model's files: what went wrong and what to do."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # within the model
    size: int | None
    sha256: str | None  # recorded when the model was observed
    git_sha1: str | None = None  # the Hub's git blob id: checks a file that has no LFS sha256

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "git_sha1": self.git_sha1}


class Source(Protocol):
    metadata_only: bool

    def files(self, record: ModelRecord) -> list[SourceFile]: ...

    def fetch(self, file: SourceFile, partial: Path) -> None: ...


def git_blob_sha1(path: Path) -> str:
    """The id git gives a file's bytes (`sha1("blob <size>\\0" + bytes)`): how the Hub names a non-LFS file."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalSource:
    """A model folder of the local registry: a copy of each recorded file."""

    metadata_only = False

    def __init__(self, root: Path, name: str) -> None:
        self.folder = root / name

    def files(self, record: ModelRecord) -> list[SourceFile]:
        return [SourceFile(entry.path, entry.size, entry.sha256) for entry in record.files]

    def fetch(self, file: SourceFile, partial: Path) -> None:
        source = self.folder / file.path
        if not source.is_file():
            raise SourceError(f"{source} is gone from the local registry; it can no longer be archived from there")
        shutil.copyfile(source, partial)  # copy_file_range on Linux: the kernel copies, the store then hashes once


class HubSource:
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
        with_retries(lambda: self._download(url, partial), what=f"downloading {self.name}/{file.path}",
                     policy=self.policy)

    def _download(self, url: str, partial: Path) -> None:
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 416 and have:  # the partial file is already complete
                    return
                if response.status_code in RETRY_STATUSES:
                    raise Transient(f"HTTP {response.status_code}", server_wait(response))
                if not response.is_success:
                    raise SourceError(f"{url}: HTTP {response.status_code}; the file cannot be downloaded (a private "
                                      "or gated repository needs the registry's token_env)")
                mode = "ab" if response.status_code == 206 else "wb"  # 200: the server ignored the range
                with partial.open(mode) as out:
                    for chunk in response.iter_bytes():  # as it arrives: a broken transfer keeps what came
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
        except httpx.TimeoutException as exc:
            raise Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise Transient(f"connection failed ({type(exc).__name__}: {exc})") from exc

    def _blob_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        url: str | None = f"{self.endpoint}/api/models/{self.name}/tree/{quote(self.revision, safe='')}"
        params: dict[str, Any] | None = {"recursive": True}
        while url is not None:
            response = with_retries(lambda: self._get(url, params), what=f"listing {self.name}@{self.revision}",
                                    policy=self.policy)
            for item in response.json():
                if item.get("type") == "file" and isinstance(item.get("oid"), str):
                    ids[item["path"]] = item["oid"]
            url, params = response.links.get("next", {}).get("url"), None
        return ids

    def _get(self, url: str, params: dict[str, Any] | None) -> httpx.Response:
        try:
            response = self.client.get(url, params=params)
        except httpx.TransportError as exc:
            raise Transient(f"connection failed ({type(exc).__name__}: {exc})") from exc
        if response.status_code in RETRY_STATUSES:
            raise Transient(f"HTTP {response.status_code}", server_wait(response))
        if not response.is_success:
            raise SourceError(f"{url}: HTTP {response.status_code}; the revision's files cannot be listed")
        return response


def source_for(registry: RegistryConfig, record: ModelRecord) -> Source:
    """The source that can give `record`'s files, from the registry's config; the token is read from the
    environment variable the registry names, now, and kept only by the client."""
    if registry.kind == "local":
        return LocalSource(Path(registry.settings["path"]), record.name)
    if registry.kind == "hf":
        if not record.revision:
            raise SourceError(f"{record.name} was observed without a Hub revision (sha): there is nothing to pin")
        token = os.environ.get(registry.token_env) if registry.token_env else None
        return HubSource(registry.setting("endpoint") or "https://huggingface.co", record.name, record.revision,
                         token=token)
    raise SourceError(f"archiving from a {registry.kind} registry is not supported yet; the approval stays unused")
