"""What one ingest gathers before it becomes an OCFL version, and the one pass over its bytes.

A staging directory is `ROOT/.staging/<key>/`, the key derived from (object id, revision), so a rerun after a
crash finds the partial files it left and a source resumes its downloads:

    files/<logical path>          the bytes a source writes or appends (`partial`)
    staged/<hash of path>.json    one record per finished file; a file without a record is still partial

`finish` hashes a complete file once: sha256 (the content digest, equal to the Hub's LFS oid) and the fixity
digests together, at the speed of the slowest of them. Logical paths come from registries, so they are
checked before any byte is written.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from weightkeeper.errors import WeightkeeperError

CONTENT_DIGEST = "sha256"
CHUNK = 8 << 20
FILES, STAGED = "files", "staged"


class ArchiveError(WeightkeeperError):
    """The archive cannot do what was asked; the message says why and what to do."""


class DigestMismatch(ArchiveError):
    """Bytes that are not the ones recorded: never archived, never restored."""

    def __init__(self, logical_path: str, expected: str, actual: str, *, algorithm: str = CONTENT_DIGEST,
                 outcome: str = "these bytes were not archived (the file was deleted from staging, so a rerun "
                                "fetches it again)") -> None:
        self.logical_path, self.expected, self.actual, self.algorithm = logical_path, expected, actual, algorithm
        super().__init__(f"{logical_path}: {algorithm} is {actual}, expected {expected}; {outcome}")


@dataclass(frozen=True)
class StagedFile:
    logical_path: str
    size: int
    sha256: str
    fixity: dict[str, str]  # algorithm -> digest, e.g. {"sha1": ...}


def safe_logical_path(path: str) -> str:
    """`path` if it names a file inside the object; an ArchiveError for anything that could escape or collide."""
    problem = None
    if not isinstance(path, str) or not path:
        problem = "is empty"
    elif "\0" in path:
        problem = "contains a NUL character"
    elif "\\" in path:
        problem = "contains a backslash"
    elif path.startswith("/"):
        problem = "is absolute"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "has an empty, '.' or '..' component"
    if problem is not None:
        raise ArchiveError(f"refusing the file path {path!r}: it {problem}; a file path from a registry must be "
                           "relative, with non-empty names between single '/'")
    return path


def staging_key(object_id: str, revision: str) -> str:
    """A directory name for (object id, revision): readable, and unique through its hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{object_id}@{revision}")[:60].strip("._")
    unique = hashlib.sha256(f"{object_id}\n{revision}".encode()).hexdigest()[:16]
    return f"{readable}-{unique}"


def hash_stream(reader: BinaryIO, algorithms: Sequence[str], sink: BinaryIO | None = None, *,
                size_hint: int | None = None) -> tuple[dict[str, str], int]:
    """One pass over `reader`: each algorithm's hex digest and the byte count; the bytes also go to `sink`.

    The first algorithm runs in this thread and every other one in a thread of its own (hashlib releases the
    GIL on large buffers), over two alternating buffers, so the pass lasts as long as the slowest digest, not
    the sum of them. `size_hint` (the size, when known) keeps the buffers of a small file small."""
    hashers = [hashlib.new(name) for name in algorithms]
    first, others = hashers[0], hashers[1:]
    chunk = CHUNK if size_hint is None else min(CHUNK, size_hint + 1)
    buffers = (bytearray(chunk), bytearray(chunk))
    in_flight: list[list[Future[None]]] = [[], []]
    size = 0
    with ExitStack() as stack:
        workers = [stack.enter_context(ThreadPoolExecutor(1)) for _ in others]  # one each: updates stay in order
        for turn in itertools.count():
            slot = turn % 2
            for future in in_flight[slot]:  # the buffer is free once the threads hashing it are done
                future.result()
            count = reader.readinto(buffers[slot])
            if not count:
                break
            view = memoryview(buffers[slot])[:count]
            in_flight[slot] = [worker.submit(hasher.update, view) for worker, hasher in zip(workers, others)]
            first.update(view)
            if sink is not None:
                sink.write(view)
            size += count
        for future in itertools.chain(*in_flight):
            future.result()
    return {name: hasher.hexdigest() for name, hasher in zip(algorithms, hashers)}, size


def hash_file(path: Path, algorithms: Sequence[str] = (CONTENT_DIGEST,)) -> tuple[dict[str, str], int]:
    with open(path, "rb", buffering=0) as reader:
        return hash_stream(reader, algorithms, size_hint=os.fstat(reader.fileno()).st_size)


class Staging:
    """ROOT/.staging/<key>/: what one ingest gathers. Made by `ArchiveStore.staging`; its path is deterministic,
    so a rerun after a crash finds the partial files it left and a source can resume a download."""

    def __init__(self, path: Path, object_id: str, revision: str, fixity: tuple[str, ...]) -> None:
        self.path, self.object_id, self.revision, self.fixity = path, object_id, revision, fixity
        (path / FILES).mkdir(parents=True, exist_ok=True)
        (path / STAGED).mkdir(exist_ok=True)

    def file(self, logical_path: str) -> Path:
        """Where the bytes of `logical_path` are (nothing is created)."""
        return self.path / FILES / safe_logical_path(logical_path)

    def partial(self, logical_path: str) -> Path:
        """Where a source writes or appends the bytes of `logical_path`; it is not staged until `finish`."""
        target = self.file(logical_path)
        self._record(logical_path).unlink(missing_ok=True)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ArchiveError(f"{logical_path} cannot be staged: part of its path is already a staged file") from None
        if target.is_dir():
            raise ArchiveError(f"{logical_path} cannot be staged: it is already a folder of staged files")
        if target.exists() and target.stat().st_nlink > 1:
            # Hardlinked into an object by an ingest killed before it removed this staging: writing to it would
            # change archived bytes, so the source starts this file afresh.
            target.unlink()
        return target

    def finish(self, logical_path: str, *, sha256: str | None, size: int | None = None) -> StagedFile:
        """Hash the complete partial file once and stage it; DigestMismatch (the file deleted) when its size or
        sha256 is not the expected one."""
        target = self.file(logical_path)
        if not target.is_file():
            raise ArchiveError(f"{logical_path}: nothing was written to {target}; write it through "
                               "Staging.partial() first")
        actual_size = target.stat().st_size
        if size is not None and actual_size != size:
            target.unlink()
            raise DigestMismatch(logical_path, f"{size} bytes", f"{actual_size} bytes", algorithm="size")
        digests, counted = hash_file(target, (CONTENT_DIGEST, *self.fixity))
        actual = digests.pop(CONTENT_DIGEST)
        if sha256 is not None and actual != sha256.lower():
            target.unlink()
            raise DigestMismatch(logical_path, sha256.lower(), actual)
        staged = StagedFile(logical_path, counted, actual, digests)
        record = self._record(logical_path)
        scratch = record.with_suffix(".tmp")
        scratch.write_text(json.dumps({**asdict(staged), "mtime_ns": target.stat().st_mtime_ns}))
        os.replace(scratch, record)
        return staged

    def add_bytes(self, logical_path: str, data: bytes) -> StagedFile:
        """Stage a small document (provenance/*.json), replacing what an earlier run staged there."""
        self.partial(logical_path).write_bytes(data)
        return self.finish(logical_path, sha256=None)

    def files(self) -> list[StagedFile]:
        """The finished files, by logical path. A record whose file changed since `finish` is dropped, so the
        file counts as partial again."""
        staged = []
        for record in (self.path / STAGED).glob("*.json"):
            fields = json.loads(record.read_text())
            mtime_ns = fields.pop("mtime_ns")
            found = StagedFile(**fields)
            try:
                stat = self.file(found.logical_path).stat()
            except FileNotFoundError:
                stat = None
            if stat is None or (stat.st_size, stat.st_mtime_ns) != (found.size, mtime_ns):
                record.unlink()
                continue
            staged.append(found)
        return sorted(staged, key=lambda found: found.logical_path)

    def pending(self) -> list[str]:
        """Logical paths written but not finished."""
        finished = {found.logical_path for found in self.files()}
        root = self.path / FILES
        written = (Path(folder, name).relative_to(root).as_posix()
                   for folder, _, names in os.walk(root) for name in names)
        return sorted(set(written) - finished)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the staging for one ingest: two archives of one revision (two approvals of it, run at once) would
        write the same partial files. BlockingIOError when another process holds it; the lock goes with its
        holder, even killed."""
        with open(self.path.with_name(f"{self.path.name}.lock"), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BlockingIOError(errno.EWOULDBLOCK, f"another executor is archiving {self.object_id}@"
                                      f"{self.revision} into {self.path}") from None
            yield

    def _record(self, logical_path: str) -> Path:
        return self.path / STAGED / f"{hashlib.sha256(logical_path.encode()).hexdigest()[:32]}.json"
