"""The archive store: OCFL v1.1 objects written with ocfl-py, one per model, one version per archived revision.

ROOT/ocfl/ is the OCFL storage root (layout 0003-hash-and-id-n-tuple), holding objects only, so it validates as
a whole; beside it, on the same filesystem, `.staging/` holds what ingests gather, `.work/` what an ingest or a
repair builds, `.locks/` one lock per object. Content enters an object by hardlink and rename, never by copy.

Atomicity: a version is built and validated beside the object (the shadow: the object hardlinked, plus vN),
then enters by one rename, of the whole object when new, else of vN, after which the root inventory and sidecar
are replaced from vN's. Whoever takes an object's lock first settles it: rolls the root inventory forward to the
newest vN and deletes unfinished builds. So a SIGKILL leaves the old head or the new one, and rerunning the same
staging completes (a staged state equal to the head's returns the head instead of adding a version).
"""

from __future__ import annotations

import fcntl
import filecmp
import hashlib
import json
import logging
import os
import posixpath
import random
import re
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fsspec.core import url_to_fs

# pairtree, which ocfl-py imports, calls logging.basicConfig(level=INFO) on import: every command would print
# ocfl-py's INFO lines. With a handler present during the import, that call does nothing.
# ocfl-py also imports s3fs (and aiobotocore: 0.45 s, most of an archive command's start) for S3 storage roots,
# which this archive never opens: its root is a local folder, and an s3:// mirror goes through fsspec, which imports
# s3fs itself when one is used. A placeholder stands in during the import only, unless s3fs is loaded already.
_import_guard = logging.NullHandler()
logging.getLogger().addHandler(_import_guard)
_s3fs_placeholder = types.ModuleType("s3fs")
_s3fs_placeholder.S3FileSystem = None  # type: ignore[attr-defined]
_placed = sys.modules.setdefault("s3fs", _s3fs_placeholder) is _s3fs_placeholder
try:
    import ocfl
finally:
    logging.getLogger().removeHandler(_import_guard)
    if _placed:
        del sys.modules["s3fs"]

from tools.archive.staging import (CONTENT_DIGEST, ArchiveError, DigestMismatch, StagedFile, Staging, hash_file,
                                   hash_stream, safe_logical_path, staging_key)

if TYPE_CHECKING:
    from weightkeeper.config import Config

__all__ = ["ArchiveError", "ArchiveStore", "ArchivedFile", "DigestMismatch", "FixityFailure", "IngestResult",
           "ObjectDetail", "ObjectSummary", "StagedFile", "Staging", "VerifyReport", "VersionDetail"]

STORAGE_ROOT, STAGING, WORK, LOCKS = "ocfl", ".staging", ".work", ".locks"
LAYOUT = "0003-hash-and-id-n-tuple-storage-layout"
SPEC_VERSION = "1.1"
INVENTORY = "inventory.json"
SIDECAR = f"{INVENTORY}.{CONTENT_DIGEST}"
LOGS, FIXITY_LOG = "logs", "logs/fixity.jsonl"
FIXITY_DIGESTS = ("md5", "sha1", "sha512")
FREE_MARGIN = 1 << 30
MISSING = "missing"
REPAIRED = "repaired from the mirror"
VERSION_DIR = re.compile(r"v(\d+)$")


@dataclass(frozen=True)
class IngestResult:
    """`stored_bytes` is the size of the version's files; `new_bytes` what its content directory added (a file
    already stored by an earlier version is referenced, not stored again)."""

    object_id: str
    version: str
    path: Path
    files: int
    stored_bytes: int
    new_bytes: int


@dataclass(frozen=True)
class ObjectSummary:
    object_id: str
    path: Path
    head: str
    versions: int
    files: int  # of the head version
    bytes: int  # of the head version's files


@dataclass(frozen=True)
class ArchivedFile:
    logical_path: str
    size: int  # 0 when the content file is missing (then `missing`; `verify` says more)
    sha256: str
    content_path: str
    missing: bool = False


@dataclass(frozen=True)
class VersionDetail:
    version: str
    created: str
    message: str
    user_name: str
    user_address: str | None
    files: list[ArchivedFile]


@dataclass(frozen=True)
class ObjectDetail:
    object_id: str
    path: Path
    head: str
    versions: list[VersionDetail]


@dataclass(frozen=True)
class FixityFailure:
    content_path: str  # within the object, e.g. v1/content/model/weights.safetensors
    logical_paths: list[str]  # the files of any version with these bytes
    expected: str
    actual: str  # MISSING when the content file is gone
    algorithm: str = CONTENT_DIGEST
    repair: str | None = None  # what `verify --repair` did about it

    def __str__(self) -> str:
        found = "is missing" if self.actual == MISSING else f"has {self.algorithm} {self.actual}"
        done = f"; {self.repair}" if self.repair else ""
        return (f"{', '.join(self.logical_paths)} ({self.content_path}) {found}, expected "
                f"{self.algorithm} {self.expected}{done}")


@dataclass(frozen=True)
class VerifyReport:
    object_id: str
    ok: bool  # every failure was repaired (or there was none)
    checked_files: int
    checked_bytes: int
    seconds: float
    failures: list[FixityFailure]
    repaired: list[str]  # content paths restored from the mirror and verified again


class ArchiveStore:
    """OCFL objects under `root`, an optional mirror holding a second copy, and the checks around them."""

    def __init__(self, root: Path, *, mirror: str | None = None, fixity: tuple[str, ...] = ("sha1",),
                 max_object_bytes: int | None = None, free_margin_bytes: int = FREE_MARGIN,
                 read_only: bool = False) -> None:
        """With `read_only`, an existing archive is opened to be listed and verified only: nothing is created,
        and an ingest a crash left half-done is left for a writer to settle."""
        unknown = sorted(set(fixity) - set(FIXITY_DIGESTS))
        if unknown:
            raise ArchiveError(f"unknown fixity digest {', '.join(unknown)}; use some of {', '.join(FIXITY_DIGESTS)}")
        self.root = Path(root)
        self.storage_root = self.root / STORAGE_ROOT
        self.fixity, self.max_object_bytes, self.free_margin_bytes = tuple(fixity), max_object_bytes, free_margin_bytes
        self.mirror = None if mirror is None else _Mirror(mirror)
        if not read_only:
            for folder in (STAGING, WORK, LOCKS):
                (self.root / folder).mkdir(parents=True, exist_ok=True)
        if not self.exists(self.root):
            if read_only:
                raise ArchiveError(f"there is no archive at {self.root}")
            self._initialize()
        self._ocfl = ocfl.StorageRoot(str(self.storage_root))
        try:
            self._ocfl.open_root_fs()
            self._ocfl.check_root_structure()
        except ocfl.StorageRootException as exc:
            raise ArchiveError(f"{self.storage_root} is not a usable OCFL storage root ({exc}); point `path` in "
                               "[archive] of weightkeeper.toml at another folder") from exc
        if not read_only:
            self._recover()

    @staticmethod
    def exists(root: Path) -> bool:
        """Whether an archive was ever created at `root`."""
        return (root / STORAGE_ROOT / f"0=ocfl_{SPEC_VERSION}").exists()

    # -- ingest ---------------------------------------------------------------------------------------------

    def staging(self, object_id: str, revision: str) -> Staging:
        if not object_id or "\0" in object_id:
            raise ArchiveError(f"refusing the object id {object_id!r}: it must be a non-empty string without NUL")
        return Staging(self.root / STAGING / staging_key(object_id, revision), object_id, revision, self.fixity)

    def check_space(self, object_id: str, needed_bytes: int) -> None:
        """ArchiveError, before any byte is fetched, when `needed_bytes` is over the per-object limit or more than
        the disk holding the archive has free (less a margin)."""
        self._check_limit(object_id, needed_bytes)
        free = shutil.disk_usage(self.root).free
        if free < needed_bytes + self.free_margin_bytes:
            raise ArchiveError(f"archiving {object_id} needs {_size(needed_bytes)} plus a {_size(self.free_margin_bytes)} "
                               f"margin, but only {_size(free)} is free at {self.root}; free space there, or move the "
                               "archive with `path` in [archive] of weightkeeper.toml")

    def ingest(self, staging: Staging, *, message: str, user_name: str,
               user_address: str | None = None) -> IngestResult:
        """A new OCFL version of the staging's object whose state is exactly `staging.files()`, validated, then
        copied to the mirror; the staging directory is removed. A state equal to the head's adds no version:
        that is how a rerun after a crash completes."""
        object_id = staging.object_id
        with self._exclusive(object_id) as work:
            files = self._ingestible(staging)
            obj = self._object_dir(object_id)
            inventory = self._inventory(obj) if obj.exists() else None
            if inventory is not None and _state(inventory, inventory.head) == _staged_state(files):
                result = IngestResult(object_id, inventory.head, obj, len(files), sum(f.size for f in files), 0)
            else:
                result = self._commit(work, staging, files, inventory, message=message, user_name=user_name,
                                      user_address=user_address)
            if self.mirror is not None:
                self.mirror.push_object(self.storage_root, obj)
        staging.discard()
        return result

    def _ingestible(self, staging: Staging) -> list[StagedFile]:
        pending = staging.pending()
        if pending:
            raise ArchiveError(f"{staging.object_id}: {', '.join(pending[:3])}{' and more' if len(pending) > 3 else ''} "
                               "written but never finished; call Staging.finish() for each (or start over with "
                               "Staging.discard())")
        files = staging.files()
        if not files:
            raise ArchiveError(f"nothing is staged for {staging.object_id}@{staging.revision}; stage files first")
        self._check_limit(staging.object_id, sum(f.size for f in files))
        return files

    def _commit(self, work: Path, staging: Staging, files: list[StagedFile], inventory: ocfl.Inventory | None, *,
                message: str, user_name: str, user_address: str | None) -> IngestResult:
        object_id = staging.object_id
        obj, shadow = self._object_dir(object_id), work / "object"
        if inventory is None:
            new = ocfl.NewVersion.first_version(srcdir=str(staging.path), identifier=object_id,
                                                spec_version=SPEC_VERSION, digest_algorithm=CONTENT_DIGEST,
                                                fixity=list(self.fixity))
            shadow.mkdir()
        else:
            new = ocfl.NewVersion.next_version(inventory=inventory, srcdir=str(staging.path))
            shutil.copytree(obj, shadow, copy_function=os.link, ignore=_root_inventory_and_logs(obj))
        new.created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        new.message, new.user_name = message, user_name
        if user_address is not None:
            new.user_address = user_address
        inv, head = new.inventory, new.inventory.head
        new_bytes = 0
        for staged in files:
            content_path = inv.current_version.add_file(digest=staged.sha256, logical_path=staged.logical_path)
            if content_path is None:  # these bytes are already stored: forward delta
                continue
            (shadow / content_path).parent.mkdir(parents=True, exist_ok=True)
            os.link(staging.file(staged.logical_path), shadow / content_path)
            new_bytes += staged.size
            for algorithm, digest in staged.fixity.items():
                if algorithm not in inv.fixity:
                    inv.add_fixity_type(algorithm)
                inv.add_fixity_data(algorithm, digest, content_path)
        writer = ocfl.Object(identifier=object_id, digest_algorithm=CONTENT_DIGEST, path=str(shadow))
        if inventory is None:
            writer.write_object_declaration()
        writer.write_inventory_and_sidecar(inv, head)
        writer.write_inventory_and_sidecar(inv)
        # Structure only: Staging.finish hashed these very inodes, and hashing them again would halve the speed.
        passed, validator = ocfl.Object().validate(objdir=str(shadow), check_digests=False, log_warnings=False)
        if not passed:
            raise ArchiveError(f"the new version of {object_id} failed OCFL validation, so nothing was archived: "
                               f"{validator.status_str()}")
        if inventory is None:
            obj.parent.mkdir(parents=True, exist_ok=True)
            os.rename(shadow, obj)
        else:
            os.rename(shadow / head, obj / head)  # the commit point; the root inventory follows
            _roll_forward(obj, work)
        return IngestResult(object_id, head, obj, len(files), sum(f.size for f in files), new_bytes)

    # -- reading --------------------------------------------------------------------------------------------

    def objects(self) -> list[ObjectSummary]:
        summaries = []
        for relative in self._ocfl.object_paths():
            obj = self.storage_root / relative
            inventory = self._inventory(obj)
            files = _version_files(obj, inventory, inventory.head)
            summaries.append(ObjectSummary(inventory.id, obj, inventory.head, len(inventory.version_directories),
                                           len(files), sum(f.size for f in files)))
        return sorted(summaries, key=lambda summary: summary.object_id)

    def describe(self, object_id: str) -> ObjectDetail:
        obj, inventory = self._open(object_id)
        versions = [VersionDetail(vdir, version.created, version.message, version.user_name, version.user_address,
                                  _version_files(obj, inventory, vdir))
                    for vdir, version in ((v, inventory.version(v)) for v in inventory.version_directories)]
        return ObjectDetail(object_id, obj, inventory.head, versions)

    def restore(self, object_id: str, dest: Path, version: str | None = None) -> list[Path]:
        """The version's files under `dest` (by default the head's), each checked against its sha256 while it is
        copied; `dest` appears complete or not at all."""
        obj, inventory = self._open(object_id)
        vdir = inventory.head if version is None else f"v{version.removeprefix('v')}"
        if vdir not in inventory.version_directories:
            raise ArchiveError(f"{object_id} has no version {version}; it has {', '.join(inventory.version_directories)}")
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ArchiveError(f"{dest} is not an empty folder; restore into a new or empty one")
        dest.parent.mkdir(parents=True, exist_ok=True)
        files = _version_files(obj, inventory, vdir)
        repair = f"`weightkeeper archive verify {object_id} --repair` restores it from the mirror"
        building = Path(tempfile.mkdtemp(prefix=f".{dest.name}.restoring-", dir=dest.parent))
        try:
            for file in files:
                if file.missing:
                    raise ArchiveError(f"{file.logical_path} ({file.content_path}) is missing from the archive, so "
                                       f"nothing was restored; {repair}")
                target = building / safe_logical_path(file.logical_path)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(obj / file.content_path, "rb", buffering=0) as src, open(target, "wb") as out:
                    digest = hash_stream(src, (CONTENT_DIGEST,), out, size_hint=file.size)[0][CONTENT_DIGEST]
                if digest != file.sha256:
                    raise DigestMismatch(file.logical_path, file.sha256, digest,
                                         outcome=f"the archived copy is damaged, so nothing was restored; {repair}")
            if dest.exists():
                dest.rmdir()
            os.rename(building, dest)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        return sorted(dest / file.logical_path for file in files)

    # -- verification ---------------------------------------------------------------------------------------

    def verify(self, object_id: str, *, sample: int | None = None, repair: bool = False,
               fixity: bool = False) -> VerifyReport:
        """Recompute the sha256 of every content file (or of `sample` random ones), and with `fixity` the fixity
        digests too; with `repair`, restore a failing file from the mirror once the mirror's copy checks out.
        Each run is appended to the object's logs/fixity.jsonl."""
        mirror = self.mirror
        if repair and mirror is None:
            raise ArchiveError("repairing needs a mirror holding a second copy; set `mirror` in [archive] of "
                               "weightkeeper.toml")
        started = time.perf_counter()
        obj, inventory = self._open(object_id)
        manifest = inventory.content  # content path -> sha256
        paths = sorted(manifest)
        if sample is not None and sample < len(paths):
            paths = sorted(random.sample(paths, sample))
        recorded = _fixity_by_path(inventory) if fixity else {}
        logical = _logical_paths(inventory)
        failures: list[FixityFailure] = []
        checked_bytes = 0
        for content_path in paths:
            wanted = {CONTENT_DIGEST: manifest[content_path], **recorded.get(content_path, {})}
            wrong, size = _check(obj / content_path, wanted)
            checked_bytes += size
            if not wrong:
                continue
            note = self._repair(mirror, object_id, obj, content_path, wanted) if mirror and repair else None
            failures += [FixityFailure(content_path, logical[manifest[content_path]], wanted[algorithm], actual,
                                       algorithm, note) for algorithm, actual in wrong.items()]
        repaired = sorted({f.content_path for f in failures if f.repair == REPAIRED})
        report = VerifyReport(object_id, all(f.repair == REPAIRED for f in failures), len(paths), checked_bytes,
                              time.perf_counter() - started, failures, repaired)
        _log(obj, report, sample)
        return report

    def _repair(self, mirror: _Mirror, object_id: str, obj: Path, content_path: str, wanted: dict[str, str]) -> str:
        """Copy `content_path` back from the mirror if the mirror's copy has the wanted digests; what was done."""
        relative = f"{obj.relative_to(self.storage_root).as_posix()}/{content_path}"
        with self._exclusive(object_id) as work:
            fetched = work / "repair"
            try:
                digests = mirror.fetch(relative, fetched, tuple(wanted))
            except FileNotFoundError:
                return "the mirror has no copy of it"
            if any(digests[algorithm] != digest for algorithm, digest in wanted.items()):
                return "the mirror's copy is damaged too"
            (obj / content_path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(fetched, obj / content_path)
        return REPAIRED if not _check(obj / content_path, wanted)[0] else "still wrong after copying it from the mirror"

    # -- the object's place, lock and recovery ------------------------------------------------------------

    def _object_dir(self, object_id: str) -> Path:
        return self.storage_root / self._ocfl.object_path(object_id)

    def holds(self, object_id: str) -> bool:
        """Whether the archive has an object of this id, without reading every inventory as `objects` does."""
        return (self._object_dir(object_id) / INVENTORY).exists()

    def _open(self, object_id: str) -> tuple[Path, ocfl.Inventory]:
        obj = self._object_dir(object_id)
        if not self.holds(object_id):
            raise ArchiveError(f"no archived object {object_id!r}; `weightkeeper archive list` shows the archived ones")
        return obj, self._inventory(obj)

    @staticmethod
    def _inventory(obj: Path) -> ocfl.Inventory:
        try:
            return ocfl.Object(path=str(obj)).parse_inventory()
        except (ocfl.ObjectException, OSError, ValueError) as exc:
            raise ArchiveError(f"the inventory of the OCFL object at {obj} cannot be read ({exc}); restore the "
                               "object folder from the mirror or a backup") from exc

    def _check_limit(self, object_id: str, needed_bytes: int) -> None:
        if self.max_object_bytes is not None and needed_bytes > self.max_object_bytes:
            raise ArchiveError(f"{object_id} needs {_size(needed_bytes)}, more than the {_size(self.max_object_bytes)} "
                               "allowed per object; raise `max_object_gb` in [archive] of weightkeeper.toml to archive it")

    @contextmanager
    def _locked(self, key: str, *, wait: bool = True) -> Iterator[bool]:
        with open(self.root / LOCKS / f"{key}.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    @contextmanager
    def _exclusive(self, object_id: str) -> Iterator[Path]:
        """Hold the object's lock, with the object settled and an empty work directory beside it."""
        key = _object_key(object_id)
        with self._locked(key):
            self._settle(key)
            work = self.root / WORK / key
            work.mkdir()
            (work / "object_id").write_text(object_id)
            try:
                yield work
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def _settle(self, key: str) -> None:
        """Finish or undo what a killed ingest or repair of this object left (its lock is held)."""
        work = self.root / WORK / key
        if not work.exists():
            return
        named = work / "object_id"
        object_id = named.read_text() if named.exists() else ""
        if object_id:
            obj = self._object_dir(object_id)
            if obj.is_dir():
                _roll_forward(obj, work)
            else:
                _prune(obj.parent, self.storage_root)
        shutil.rmtree(work)

    def _recover(self) -> None:
        for work in (self.root / WORK).iterdir():
            with self._locked(work.name, wait=False) as mine:
                if mine:  # otherwise another process is ingesting this object right now
                    self._settle(work.name)

    def _initialize(self) -> None:
        if self.storage_root.exists() and any(self.storage_root.iterdir()):
            raise ArchiveError(f"{self.storage_root} exists but is not an OCFL storage root; move it away or point "
                               "`path` in [archive] of weightkeeper.toml at another folder")
        building = Path(tempfile.mkdtemp(prefix=".init-", dir=self.root))
        try:
            ocfl.StorageRoot(str(building / STORAGE_ROOT), layout_name=LAYOUT).initialize(spec_version=SPEC_VERSION)
            if self.storage_root.exists():
                self.storage_root.rmdir()
            os.rename(building / STORAGE_ROOT, self.storage_root)
        except OSError:
            if not (self.storage_root / f"0=ocfl_{SPEC_VERSION}").exists():  # else another process made it first
                raise
        finally:
            shutil.rmtree(building, ignore_errors=True)


class _Mirror:
    """A second copy of the storage root, with the same relative layout: a folder or any fsspec URL."""

    def __init__(self, url: str) -> None:
        self.fs, base = url_to_fs(url)
        self.base = base.rstrip("/")

    def push_object(self, storage_root: Path, obj: Path) -> None:
        """Copy what the mirror lacks: the storage root's declarations, then the object's files with its root
        inventory last, so the mirror never names a file it does not hold yet."""
        declarations = [p for p in storage_root.iterdir() if p.is_file()]
        declarations += [p for p in (storage_root / "extensions").rglob("*") if p.is_file()]
        for path in declarations:
            self.push(path, path.relative_to(storage_root).as_posix(), replace=False)
        roots = {obj / INVENTORY, obj / SIDECAR}
        files = sorted(p for p in obj.rglob("*") if p.is_file() and p not in roots and p.parts[len(obj.parts)] != LOGS)
        for path in [*files, *sorted(roots)]:
            self.push(path, path.relative_to(storage_root).as_posix(), replace=path in roots)

    def push(self, local: Path, relative: str, *, replace: bool) -> None:
        remote = f"{self.base}/{relative}"
        if not replace and self.fs.exists(remote) and self.fs.size(remote) == local.stat().st_size:
            return
        self.fs.makedirs(posixpath.dirname(remote), exist_ok=True)
        self.fs.put_file(str(local), remote)

    def fetch(self, relative: str, dest: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
        """Copy the mirror's file to `dest`, returning its digests."""
        with self.fs.open(f"{self.base}/{relative}", "rb") as src, open(dest, "wb") as out:
            return hash_stream(src, algorithms, out)[0]


# -- helpers ----------------------------------------------------------------------------------------------------


def _object_key(object_id: str) -> str:
    return hashlib.sha256(object_id.encode()).hexdigest()[:32]


def _roll_forward(obj: Path, scratch: Path) -> None:
    """Make the root inventory and sidecar those of the newest version directory, as OCFL requires."""
    versions = [entry for entry in obj.iterdir() if entry.is_dir() and VERSION_DIR.match(entry.name)]
    if not versions:
        return
    newest = max(versions, key=lambda entry: int(entry.name[1:]))
    for name in (INVENTORY, SIDECAR):
        if (obj / name).exists() and filecmp.cmp(newest / name, obj / name, shallow=False):
            continue
        shutil.copyfile(newest / name, scratch / name)
        os.replace(scratch / name, obj / name)


def _prune(folder: Path, top: Path) -> None:
    """Remove `folder` and its parents up to `top` while they are empty (OCFL forbids empty directories)."""
    while folder != top and folder.is_relative_to(top):
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        except OSError:  # not empty
            return
        folder = folder.parent


def _root_inventory_and_logs(obj: Path) -> Callable[[str, list[str]], set[str]]:
    """For copytree: leave out what the shadow rewrites (hardlinked, rewriting would change the object's) or
    does not need."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n == LOGS or n.startswith(INVENTORY)} if Path(folder) == obj else set()
    return ignore


def _state(inventory: ocfl.Inventory, vdir: str) -> set[tuple[str, str]]:
    return {(digest, path) for digest, paths in inventory.version(vdir).state.items() for path in paths}


def _staged_state(files: list[StagedFile]) -> set[tuple[str, str]]:
    return {(f.sha256, f.logical_path) for f in files}


def _version_files(obj: Path, inventory: ocfl.Inventory, vdir: str) -> list[ArchivedFile]:
    files = []
    for digest, path in sorted(_state(inventory, vdir), key=lambda pair: pair[1]):
        content_path = inventory.content_path_for_digest(digest)
        try:
            files.append(ArchivedFile(path, (obj / content_path).stat().st_size, digest, content_path))
        except FileNotFoundError:
            files.append(ArchivedFile(path, 0, digest, content_path, missing=True))
    return files


def _logical_paths(inventory: ocfl.Inventory) -> dict[str, list[str]]:
    """sha256 -> the logical paths that have these bytes in any version."""
    found: dict[str, set[str]] = {}
    for vdir in inventory.version_directories:
        for digest, path in _state(inventory, vdir):
            found.setdefault(digest, set()).add(path)
    return {digest: sorted(paths) for digest, paths in found.items()}


def _fixity_by_path(inventory: ocfl.Inventory) -> dict[str, dict[str, str]]:
    """content path -> algorithm -> digest, from the fixity block."""
    found: dict[str, dict[str, str]] = {}
    for algorithm, digests in inventory.fixity.items():
        for digest, paths in digests.items():
            for path in paths:
                found.setdefault(path, {})[algorithm] = digest.lower()
    return found


def _check(path: Path, wanted: dict[str, str]) -> tuple[dict[str, str], int]:
    """The digests of `path` that differ from `wanted` (algorithm -> actual), and the bytes read."""
    if not path.is_file():
        return {CONTENT_DIGEST: MISSING}, 0
    digests, size = hash_file(path, tuple(wanted))
    return {algorithm: digests[algorithm] for algorithm, digest in wanted.items() if digests[algorithm] != digest}, size


def _log(obj: Path, report: VerifyReport, sample: int | None) -> None:
    """One JSON line per verification in the object's logs/ (which OCFL 1.1 leaves to the implementation)."""
    entry = {"verified_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "ok": report.ok, "sample": sample,
             "checked_files": report.checked_files, "checked_bytes": report.checked_bytes,
             "seconds": round(report.seconds, 3), "failures": [asdict(f) for f in report.failures],
             "repaired": report.repaired}
    (obj / LOGS).mkdir(exist_ok=True)
    with open(obj / FIXITY_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def _size(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 10**8 else f"{count:,} bytes"


def open_store(settings: Config, *, read_only: bool = False) -> ArchiveStore:
    """The archive the config describes."""
    return ArchiveStore(settings.archive_path(), mirror=settings.archive.mirror, fixity=settings.archive.fixity,
                        max_object_bytes=int(settings.archive.max_object_gb * 1e9), read_only=read_only)


def store_to_read(settings: Config) -> ArchiveStore | None:
    """The archive for a command that only reads it: None when none was ever made (reading creates nothing),
    read-only when the user may not write it (a mounted backup, another user's home)."""
    root = settings.archive_path()
    if not ArchiveStore.exists(root):
        return None
    return open_store(settings, read_only=not os.access(root, os.W_OK | os.X_OK))
