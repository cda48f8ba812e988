"""A folder of model folders: the embedded default registry.

Layout: `ROOT/ORG/NAME/` (or `ROOT/NAME/`), each with `config.json` or
`adapter_config.json`, weight files, and a `README.md` card whose front
matter uses the Hub's fields plus optional `visibility`, `shutdown_date` and
`new_version` to model what remote registries announce.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tools.registries.model_card import CardError, card_fields, lineage, parse_card
from weightkeeper.domain import CARD_FILE, FileEntry, Found, Gone, LookupResult, ModelRecord, Page, RecordProblem, Visibility
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import DigestCache

CONFIG_FILES = ("config.json", "adapter_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx", ".h5", ".msgpack")
HASH_CHUNK = 1 << 20


class ModelFolderError(Exception):
    """One model folder cannot be read; the message says what and where."""


class LocalFolderRegistry:
    kind = "local"
    unlisted: frozenset[Visibility] = frozenset()  # every folder is listed, whatever its card says

    def __init__(self, root: Path, digests: DigestCache, *, page_size: int = 50) -> None:
        self.root, self.digests, self.page_size = root, digests, page_size

    def pages(self, cursor: str | None) -> Iterator[Page]:
        names = self._model_names()
        start = bisect.bisect_right(names, cursor) if cursor else 0
        for i in range(start, len(names), self.page_size):
            chunk = tuple(names[i : i + self.page_size])
            yield Page(chunk, cursor=chunk[-1])

    def records(self, page: Page) -> list[ModelRecord | RecordProblem]:
        items: list[ModelRecord | RecordProblem] = []
        for name in page.items:
            try:
                items.append(self._read(name))
            except ModelFolderError as exc:
                items.append(RecordProblem(name, str(exc)))
        return items

    def lookup(self, name: str) -> LookupResult:
        self._require_root()
        folder = self.root / name
        if not os.path.lexists(folder):
            return Gone(f"folder {folder} no longer exists")
        try:
            return Found(self._read(name))
        except ModelFolderError as exc:
            raise RegistryUnavailable(f"{folder} exists but cannot be read: {exc}") from exc

    def check(self) -> str:
        return f"folder {self.root} is readable and holds {len(self._model_names())} model folders"

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise RegistryUnavailable(
                f"registry folder {self.root} does not exist or is not a folder; "
                "mount it again or fix its path in weightkeeper.toml"
            )

    def _model_names(self) -> list[str]:
        """Sorted model ids. A top-level folder is a model when it holds a config or weight file itself, or
        no sub-folder at all (an emptied model, reported as a problem); otherwise it is an org, whatever stray
        files (.DS_Store, an org README) lie beside its model folders."""
        self._require_root()
        names: list[str] = []
        try:
            for top in _read_folder(self.root)[0]:
                folder = self.root / top
                if not folder.is_dir():  # a dangling or looping symlink: a broken model, read as a problem
                    names.append(top)
                    continue
                subfolders, holds_model_files = _read_folder(folder)
                if not subfolders or holds_model_files:
                    names.append(top)
                else:
                    names.extend(f"{top}/{sub}" for sub in subfolders)
        except OSError as exc:
            raise RegistryUnavailable(f"cannot list registry folder {self.root}: {exc.strerror or exc}") from exc
        return sorted(names)

    def _read(self, name: str) -> ModelRecord:
        folder = self.root / name
        files, newest = self._files(folder, name)
        paths = {entry.path for entry in files}
        if not paths & set(CONFIG_FILES) and not any(path.endswith(WEIGHT_SUFFIXES) for path in paths):
            raise ModelFolderError(f"{folder} has no config.json, adapter_config.json or weight files")
        meta, body = {}, ""
        if CARD_FILE in paths:
            try:
                meta, body = parse_card((folder / CARD_FILE).read_bytes().decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ModelFolderError(f"{folder / CARD_FILE} is not UTF-8 text (byte {exc.start})") from exc
            except OSError as exc:
                raise ModelFolderError(f"cannot read {folder / CARD_FILE}: {exc.strerror or exc}") from exc
            except CardError as exc:
                raise ModelFolderError(f"{folder / CARD_FILE}: {exc}") from exc
        try:
            visibility = Visibility(str(meta.get("visibility", "public")))
            guess = "adapter" if "adapter_config.json" in paths else (
                "quantized" if any(path.endswith(".gguf") for path in paths) else None
            )
            model_lineage = lineage(meta, inferred_relation=guess)
        except (ValueError, CardError) as exc:
            raise ModelFolderError(f"{folder / CARD_FILE}: {exc}") from exc
        identity = hashlib.blake2b(digest_size=16)
        for entry in files:
            if entry.path != CARD_FILE:
                identity.update(f"{entry.path}\0{entry.sha256}\n".encode())
        return ModelRecord(
            name=name,
            key=identity.hexdigest(),
            last_modified=None if newest is None else datetime.fromtimestamp(newest / 1e9, UTC).isoformat(),
            visibility=visibility,
            lineage=model_lineage,
            card=card_fields(meta, body) if CARD_FILE in paths else None,
            files=files,
            shutdown_date=None if meta.get("shutdown_date") is None else str(meta["shutdown_date"]),
            successor=None if meta.get("new_version") is None else str(meta["new_version"]),
        )

    def _files(self, folder: Path, name: str) -> tuple[tuple[FileEntry, ...], int | None]:
        """Every file below the folder with its size and sha256 (cached while unchanged), and the newest mtime."""
        entries: list[FileEntry] = []
        newest: int | None = None
        for directory, subdirs, filenames in os.walk(folder, onerror=_raise, followlinks=False):
            subdirs.sort()
            for filename in sorted(filenames):
                path = Path(directory) / filename
                relative = path.relative_to(folder).as_posix()
                try:
                    stat = path.stat()
                    cache_key = f"{name}/{relative}"
                    stamp = f"{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"
                    sha256 = self.digests.get(cache_key, stat.st_size, stamp)
                    if sha256 is None:
                        sha256 = _sha256(path)
                        self.digests.put(cache_key, stat.st_size, stamp, sha256)
                except OSError as exc:
                    raise ModelFolderError(f"cannot read {path}: {exc.strerror or exc}") from exc
                entries.append(FileEntry(relative, stat.st_size, sha256))
                newest = max(newest or 0, stat.st_mtime_ns)
        return tuple(entries), newest


def _read_folder(path: Path) -> tuple[list[str], bool]:
    """One listing of a folder: its sub-folders by name, with symlinks that lead nowhere (a loop, an
    unmounted volume) so reading them records what is wrong instead of reporting a model missing; and
    whether it holds a config or weight file itself."""
    names, holds_model_files = [], False
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name in CONFIG_FILES or entry.name.endswith(WEIGHT_SUFFIXES):
                holds_model_files = True
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir() or entry.is_symlink() and not os.path.exists(entry.path):
                    names.append(entry.name)
            except OSError:
                names.append(entry.name)
    return sorted(names), holds_model_files


def _raise(error: OSError) -> None:
    raise ModelFolderError(f"cannot list {error.filename}: {error.strerror or error}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
