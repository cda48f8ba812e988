"""A folder of model folders: the embedded default registry.

Layout: `ROOT/ORG/NAME/` (or `ROOT/NAME/`), each with `config.json` or
`adapter_config.json`, weight files, and a `README.md` card whose front
matter uses the Hub's fields plus optional `visibility`, `shutdown_date` and
`new_version` to model what remote registries announce.

What is below ROOT is untrusted: only regular files and folders inside it are read, each opened
relative to its folder without following a symbolic link (a link could lead out of ROOT, to a file
the reviewer never sees and an approved archive would copy), and a file is opened only once it is
known to be regular (a FIFO blocks its reader, /dev/zero never ends). A model holding anything else
is a problem of the scan, named with the path. Of a card, the first CARD_READ_BYTES are read.
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from tools.registries.model_card import CardError, card_fields, kept_text, lineage, parse_card
from weightkeeper.domain import CARD_FILE, FileEntry, Found, Gone, LookupResult, ModelRecord, Page, RecordProblem, Visibility
from weightkeeper.config import RegistryConfig
from weightkeeper.errors import RegistryUnavailable
from weightkeeper.registry import DigestCache, RecordUnreadable, Registry, RegistryKind, Setting, register_kind
from weightkeeper.untrusted import has_hidden, name_problem, shown
from weightkeeper.words import counted

CONFIG_FILES = ("config.json", "adapter_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx", ".h5", ".msgpack")
HASH_CHUNK = 1 << 20
# Of a card, what holds the longest front matter `parse_card` takes; past it only the file's sha256 counts.
CARD_READ_BYTES = 1 << 20
# No symbolic link is followed, a FIFO is opened without waiting for a writer, a terminal never becomes ours.
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
KINDS = {stat.S_IFREG: "a regular file", stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)",
         stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


class Vanished(RecordUnreadable):
    """The model's folder, or what was asked for in it, does not exist."""


class LocalFolderRegistry(Registry):
    kind = "local"
    unlisted: frozenset[Visibility] = frozenset()  # every folder is listed, whatever its card says
    stable_keys = False  # a key digests the files: a folder is its name, and a rename is found by its files
    resumes_see_renames = False  # a renamed folder leaves nothing under its old name

    def __init__(self, root: Path, digests: DigestCache, *, page_size: int = 50) -> None:
        self.root, self.digests, self.page_size = root, digests, page_size

    def pages(self, cursor: str | None) -> Iterator[Page]:
        names = self._model_names()
        start = bisect.bisect_right(names, cursor) if cursor else 0
        for i in range(start, len(names), self.page_size):
            chunk = tuple(names[i : i + self.page_size])
            yield Page(chunk, cursor=chunk[-1])

    def record(self, item: str) -> ModelRecord | RecordProblem:
        if has_hidden(item):  # never read: its files would be cached under a name the ledger cannot hold
            return name_problem(item)
        return self._read(item)

    def item_name(self, item: str) -> str:
        return item

    def lookup(self, name: str) -> LookupResult:
        self._require_root()
        folder = self.root / name
        try:
            return Found(self._read(name))
        except Vanished:
            return Gone(f"folder {folder} no longer exists")
        except RecordUnreadable as exc:
            raise RegistryUnavailable(f"{folder} exists but cannot be read: {exc}") from exc

    def check(self) -> str:
        return f"folder {self.root} is readable and holds {counted(len(self._model_names()), 'model folder')}"

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
                if folder.is_symlink() or not folder.is_dir():  # never listed through: read as a problem
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
        folder_fd = _open_below(self.root, name, folder=True)
        try:
            files, newest = self._files(folder_fd, folder, name)
            card_file = next((entry for entry in files if entry.path == CARD_FILE), None)
            paths = {entry.path for entry in files}
            if not paths & set(CONFIG_FILES) and not any(path.endswith(WEIGHT_SUFFIXES) for path in paths):
                raise RecordUnreadable(f"{folder} has no config.json, adapter_config.json or weight files")
            meta, body = {}, ""
            if card_file is not None:
                meta, body = _read_card(folder_fd, folder, card_file)
        finally:
            os.close(folder_fd)
        try:
            visibility = Visibility(str(meta.get("visibility", "public")))
            guess = "adapter" if "adapter_config.json" in paths else (
                "quantized" if any(path.endswith(".gguf") for path in paths) else None
            )
            model_lineage = lineage(meta, inferred_relation=guess)
            card = card_fields(meta, body) if card_file is not None else None
        except (ValueError, CardError) as exc:
            raise RecordUnreadable(f"{folder / CARD_FILE}: {exc}") from exc
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
            card=card,
            files=files,
            shutdown_date=None if meta.get("shutdown_date") is None else kept_text(str(meta["shutdown_date"])),
            successor=None if meta.get("new_version") is None else kept_text(str(meta["new_version"])),
        )

    def _files(self, folder_fd: int, folder: Path, name: str) -> tuple[tuple[FileEntry, ...], int | None]:
        """Every file below the open folder with its size and sha256 (cached while unchanged), and the newest
        mtime. Each is checked before anything else: a link or anything but a regular file is an error."""
        entries: list[FileEntry] = []
        newest: int | None = None
        path = folder
        try:
            for directory, subdirs, filenames, directory_fd in os.fwalk(".", dir_fd=folder_fd, onerror=_raise):
                subdirs.sort()
                for subdir in subdirs:  # fwalk would pass over a link silently
                    path = folder / directory / subdir
                    _checked_stat(subdir, directory_fd, path, folder=True)
                for filename in sorted(filenames):
                    relative = PurePosixPath(directory, filename).as_posix()
                    path = folder / relative
                    if has_hidden(relative):
                        raise RecordUnreadable(f"cannot read {folder}/{shown(relative)}: its name holds control, "
                                               "format or line-separator characters (escaped here); rename it")
                    stat_result = _checked_stat(filename, directory_fd, path, folder=False)
                    cache_key = f"{name}/{relative}"
                    stamp = f"{stat_result.st_mtime_ns}:{stat_result.st_ctime_ns}:{stat_result.st_ino}"
                    sha256 = self.digests.get(cache_key, stat_result.st_size, stamp)
                    if sha256 is None:
                        sha256 = _sha256(path, directory_fd, stat_result)
                        self.digests.put(cache_key, stat_result.st_size, stamp, sha256)
                    entries.append(FileEntry(relative, stat_result.st_size, sha256))
                    newest = max(newest or 0, stat_result.st_mtime_ns)
        except OSError as exc:  # `path`: the file being read, or last read before a folder's listing failed
            raise RecordUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
        return tuple(entries), newest


def open_model_file(root: Path, name: str, path: str) -> int:
    """A descriptor of the regular file `path` of the model `name` in the registry at `root`, opened as a scan
    reads it: a RecordUnreadable when anything on the way is a symbolic link, or the file is not regular."""
    return _open_below(root, f"{name}/{path}", folder=False)


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
    """For `os.fwalk`, which would pass over a folder it cannot list as if it were empty."""
    raise error


def _open_below(root: Path, relative: str, *, folder: bool) -> int:
    """A descriptor of `root/relative`, each part opened within the one before it, none through a link.
    Vanished when a part does not exist; RecordUnreadable when one is a link or of the wrong kind."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise RecordUnreadable(f"{relative!r} is not a path inside {root}")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the configured folder, link or not
    except OSError as exc:
        raise RecordUnreadable(f"cannot open {root}: {exc.strerror or exc}") from exc
    try:
        for depth, part in enumerate(parts, start=1):
            path = root.joinpath(*parts[:depth])
            try:
                inner = _open_checked(part, fd, path, folder=folder or depth < len(parts))
            except FileNotFoundError as exc:
                raise Vanished(f"{path} does not exist") from exc
            except OSError as exc:
                raise RecordUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
            os.close(fd)
            fd = inner
        return fd
    except BaseException:
        os.close(fd)
        raise


def _checked_stat(name: str, dir_fd: int, path: Path, *, folder: bool) -> os.stat_result:
    """The status of `name` in the folder `dir_fd`, not following a link; a RecordUnreadable for a link, or for
    anything but a folder (`folder`) or a regular file."""
    found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(found.st_mode):
        raise RecordUnreadable(f"cannot read {path}: it is a symbolic link to {os.readlink(name, dir_fd=dir_fd)!r}, "
                               "and a local registry never follows symbolic links (one may lead out of its "
                               "folder); put the file or folder itself in its place")
    if folder and not stat.S_ISDIR(found.st_mode):
        raise RecordUnreadable(f"cannot read {path}: it is {_kind(found)}, not a folder")
    if not folder and not stat.S_ISREG(found.st_mode):
        raise RecordUnreadable(f"cannot read {path}: it is {_kind(found)}, not a regular file, and a local registry "
                               "reads only regular files; remove it or put the file itself in its place")
    return found


def _open_checked(name: str, dir_fd: int, path: Path, *, folder: bool,
                  seen: os.stat_result | None = None) -> int:
    """`name` in the folder `dir_fd`, opened once `_checked_stat` (or `seen`, its answer) says it may be; an error
    when what was opened is not what was checked (the folder changed meanwhile)."""
    seen = seen or _checked_stat(name, dir_fd, path, folder=folder)
    fd = os.open(name, OPEN_FLAGS | (os.O_DIRECTORY if folder else 0), dir_fd=dir_fd)
    if not os.path.samestat(seen, os.fstat(fd)):
        os.close(fd)
        raise RecordUnreadable(f"{path} changed while it was read; the next scan reads it again")
    return fd


def _kind(found: os.stat_result) -> str:
    return KINDS.get(stat.S_IFMT(found.st_mode), "a file of an unknown kind")


def _sha256(path: Path, dir_fd: int, seen: os.stat_result) -> str:
    """The sha256 of the regular file `path` (named `path.name` in the folder `dir_fd`), checked as `seen`."""
    with open(_open_checked(path.name, dir_fd, path, folder=False, seen=seen), "rb") as handle:
        return hex_digest(handle, hashlib.sha256())


def hex_digest(handle: BinaryIO, digest: Any) -> str:
    """The hex digest of what is left to read of `handle`, fed to `digest` (a hashlib object) a chunk at a time."""
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return str(digest.hexdigest())


def _read_card(folder_fd: int, folder: Path, card: FileEntry) -> tuple[dict, str]:
    """The card's metadata and body from its first CARD_READ_BYTES; the body of a longer card ends with the
    whole file's sha256, so a change past what is read still changes the card."""
    path = folder / CARD_FILE
    try:
        with open(_open_checked(CARD_FILE, folder_fd, path, folder=False), "rb") as handle:
            head = handle.read(CARD_READ_BYTES)
            cut = bool(handle.read(1))
        # A cut may split a character: the decoder keeps its first bytes back instead of failing on them.
        meta, body = parse_card(codecs.getincrementaldecoder("utf-8")().decode(head, final=not cut))
    except UnicodeDecodeError as exc:
        raise RecordUnreadable(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise RecordUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
    except CardError as exc:
        raise RecordUnreadable(f"{path}: {exc}") from exc
    if cut:
        body += f"\n[{card.size:,} bytes, of which the first {CARD_READ_BYTES:,} were read; sha256 {card.sha256}]"
    return meta, body


def _archive_source(config: RegistryConfig, record: ModelRecord) -> Any:
    from tools.archive.sources import LocalSource

    return LocalSource(Path(config.settings["path"]), record.name)


KIND = register_kind(RegistryKind(
    name="local",
    settings=(Setting("path", "the folder of model folders", metavar="DIR", required=True, file=True),),
    adapter=lambda config, opening: LocalFolderRegistry(Path(config.settings["path"]), opening.digests),
    archive_source=_archive_source,
    files_listed=True,
))
