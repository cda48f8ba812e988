"""The OCFL archive store on real files: every object is checked with ocfl-py's own validator (digests too).

The crash tests kill real processes with SIGKILL: a forked child that kills itself just before its n-th
filesystem change, for every n until the ingest runs through (so every step of an ingest is a kill point), and
a `python -c` process killed from outside while it hashes and while it ingests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import ocfl
import pytest

from tools.archive.store import ArchiveError, ArchiveStore, DigestMismatch, Staging

REPO = Path(__file__).resolve().parents[1]
MODEL = "hub/acme/med-ft"


def blob(seed: str, size: int) -> bytes:
    """`size` reproducible, incompressible bytes."""
    block = hashlib.sha512(seed.encode()).digest() * 2048  # 128 KiB
    return (block * (size // len(block) + 1))[:size - 8] + hashlib.sha256(seed.encode()).digest()[:8]


def revision_files(weights: bytes) -> dict[str, bytes]:
    return {"model/model.safetensors": weights, "model/config.json": b'{"model_type": "llama"}\n'}


def stage(store: ArchiveStore, revision: str, files: dict[str, bytes], object_id: str = MODEL) -> Staging:
    """Stage like a source does: bytes into `partial`, then `finish` with the recorded sha256 and size; and
    the provenance documents through `add_bytes`."""
    staging = store.staging(object_id, revision)
    for path, data in files.items():
        staging.partial(path).write_bytes(data)
        staging.finish(path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    staging.add_bytes("provenance/registry.json", json.dumps({"revision": revision}).encode())
    return staging


def expected_state(revision: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, "provenance/registry.json": json.dumps({"revision": revision}).encode()}


def assert_valid(store: ArchiveStore) -> None:
    """ocfl-py validates the whole storage root, every object and every content digest."""
    root = ocfl.StorageRoot(str(store.storage_root))
    assert root.validate(), (str(root.log), root.errors)
    assert root.good_objects == root.num_objects == len(store.objects()), root.errors
    for summary in store.objects():
        passed, validator = ocfl.Object().validate(objdir=str(summary.path))
        assert passed, str(validator)


def restored(store: ArchiveStore, dest: Path, version: str | None = None, object_id: str = MODEL) -> dict[str, bytes]:
    paths = store.restore(object_id, dest, version)
    return {path.relative_to(dest).as_posix(): path.read_bytes() for path in paths}


def content_file(store: ArchiveStore, logical_path: str, object_id: str = MODEL) -> Path:
    detail = store.describe(object_id)
    file = next(f for f in detail.versions[-1].files if f.logical_path == logical_path)
    return detail.path / file.content_path


def log_lines(store: ArchiveStore, object_id: str = MODEL) -> list[dict]:
    path = store.describe(object_id).path / "logs" / "fixity.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- round trip, versions ----------------------------------------------------------------------------------


def test_round_trip_restores_identical_bytes_and_validates(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    files = {**revision_files(blob("weights", 3 << 20)), "model/.gitattributes": b"*.safetensors filter=lfs\n",
             "model/tokénizer 2.json": b"{}"}
    result = store.ingest(stage(store, "r1", files), message="acme/med-ft@r1", user_name="reviewer",
                          user_address="mailto:reviewer@example.org")

    state = expected_state("r1", files)
    assert (result.object_id, result.version, result.files) == (MODEL, "v1", 5)
    assert result.stored_bytes == result.new_bytes == sum(map(len, state.values()))
    assert restored(store, tmp_path / "out") == state
    assert_valid(store)
    [summary] = store.objects()
    assert (summary.object_id, summary.head, summary.versions, summary.files) == (MODEL, "v1", 1, 5)
    [v1] = store.describe(MODEL).versions
    assert (v1.message, v1.user_name, v1.user_address) == ("acme/med-ft@r1", "reviewer", "mailto:reviewer@example.org")
    assert {f.logical_path: (f.size, f.sha256) for f in v1.files} == {
        path: (len(data), hashlib.sha256(data).hexdigest()) for path, data in state.items()}
    inventory = json.loads((summary.path / "inventory.json").read_text())
    assert inventory["digestAlgorithm"] == "sha256"
    sha1 = {paths[0]: digest for digest, paths in inventory["fixity"]["sha1"].items()}
    assert {path: sha1[f"v1/content/{path}"] for path in state} == {
        path: hashlib.sha1(data).hexdigest() for path, data in state.items()}
    assert not any((tmp_path / "archive" / ".staging").iterdir())  # the staging is gone once archived


def test_second_revision_stores_only_the_changed_file(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive", fixity=("sha1", "sha512"))
    first = revision_files(blob("weights-1", 2 << 20))
    second = revision_files(blob("weights-2", 2 << 20))  # same config.json
    store.ingest(stage(store, "r1", first), message="r1", user_name="reviewer")
    result = store.ingest(stage(store, "r2", second), message="r2", user_name="reviewer")

    assert result.version == "v2"
    provenance = len(json.dumps({"revision": "r2"}))
    assert result.new_bytes == len(second["model/model.safetensors"]) + provenance
    assert result.stored_bytes == sum(map(len, expected_state("r2", second).values()))
    obj = result.path
    assert sorted(p.relative_to(obj / "v2/content").as_posix() for p in (obj / "v2/content").rglob("*") if p.is_file()) \
        == ["model/model.safetensors", "provenance/registry.json"]
    assert content_file(store, "model/config.json").parts[-4] == "v1"  # referenced, not stored again
    assert restored(store, tmp_path / "v1", "v1") == expected_state("r1", first)
    assert restored(store, tmp_path / "v2", "2") == expected_state("r2", second)
    assert restored(store, tmp_path / "head") == expected_state("r2", second)
    assert [s.versions for s in store.objects()] == [2]
    assert "sha512" in json.loads((obj / "inventory.json").read_text())["fixity"]
    assert_valid(store)


def test_ingesting_the_head_state_again_adds_no_version(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    files = revision_files(blob("weights", 1 << 20))
    store.ingest(stage(store, "r1", files), message="r1", user_name="reviewer")
    again = store.ingest(stage(store, "r1", files), message="r1", user_name="reviewer")
    assert (again.version, again.new_bytes) == ("v1", 0)
    assert [s.versions for s in store.objects()] == [1]


# -- what is refused ---------------------------------------------------------------------------------------


def test_bytes_that_do_not_match_their_sha256_are_never_archived(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    staging = store.staging(MODEL, "r1")
    partial = staging.partial("model/model.safetensors")
    partial.write_bytes(b"tampered upstream")
    with pytest.raises(DigestMismatch) as raised:
        staging.finish("model/model.safetensors", sha256=hashlib.sha256(b"the recorded bytes").hexdigest())
    assert raised.value.logical_path == "model/model.safetensors"
    assert raised.value.expected == hashlib.sha256(b"the recorded bytes").hexdigest()
    assert raised.value.actual == hashlib.sha256(b"tampered upstream").hexdigest()
    assert "model/model.safetensors" in str(raised.value)
    assert not partial.exists() and staging.files() == []

    staging.partial("model/config.json").write_bytes(b"{}")
    with pytest.raises(DigestMismatch, match="size"):
        staging.finish("model/config.json", sha256=None, size=3)
    with pytest.raises(ArchiveError, match="nothing is staged"):
        store.ingest(staging, message="r1", user_name="reviewer")
    assert store.objects() == []


def test_a_file_written_but_not_finished_blocks_the_ingest(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    staging = stage(store, "r1", revision_files(b"weights"))
    staging.partial("model/extra.bin").write_bytes(b"half a download")
    with pytest.raises(ArchiveError, match="model/extra.bin"):
        store.ingest(staging, message="r1", user_name="reviewer")
    assert store.objects() == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "model/../../outside", "model//a", "model/./a",
                                  "model\\a", "model/a\0b", "", "model/"])
def test_unsafe_logical_paths_are_refused(tmp_path: Path, path: str) -> None:
    store = ArchiveStore(tmp_path / "archive")
    staging = store.staging(MODEL, "r1")
    with pytest.raises(ArchiveError, match="refusing the file path"):
        staging.partial(path)
    with pytest.raises(ArchiveError, match="refusing the file path"):
        staging.add_bytes(path, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]
    assert staging.files() == [] and staging.pending() == []


def test_check_space_refuses_before_any_byte_is_written(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive", max_object_bytes=1000)
    with pytest.raises(ArchiveError, match="max_object_gb"):
        store.check_space(MODEL, 1001)
    store.check_space(MODEL, 1000)
    assert not any((tmp_path / "archive" / ".staging").iterdir())
    with pytest.raises(ArchiveError, match="max_object_gb"):  # ingest enforces the limit too
        store.ingest(stage(store, "r1", revision_files(b"w" * 2000)), message="r1", user_name="reviewer")
    assert store.objects() == []

    tight = ArchiveStore(tmp_path / "archive", free_margin_bytes=1 << 60)
    with pytest.raises(ArchiveError, match="is free at"):
        tight.check_space(MODEL, 1)


def test_restore_refuses_a_non_empty_destination_and_unknown_ids(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    store.ingest(stage(store, "r1", revision_files(b"weights")), message="r1", user_name="reviewer")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="not an empty folder"):
        store.restore(MODEL, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    with pytest.raises(ArchiveError, match="has no version v7"):
        store.restore(MODEL, tmp_path / "new", "v7")
    with pytest.raises(ArchiveError, match="weightkeeper archive list"):
        store.describe("hub/nobody/nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert set(restored(store, empty)) == {"model/model.safetensors", "model/config.json", "provenance/registry.json"}


def test_restore_refuses_bytes_that_changed_in_the_archive(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    store.ingest(stage(store, "r1", revision_files(blob("w", 1 << 20))), message="r1", user_name="reviewer")
    flip_byte(content_file(store, "model/model.safetensors"), 12345)
    with pytest.raises(DigestMismatch, match="model/model.safetensors.*--repair"):
        store.restore(MODEL, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]  # nothing half restored
    content_file(store, "model/config.json").unlink()
    with pytest.raises(ArchiveError, match="model/config.json .* is missing"):
        store.restore(MODEL, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]


# -- verify and repair -------------------------------------------------------------------------------------


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("mirror_kind", ["folder", "memory"])
def test_a_flipped_byte_fails_verify_and_repair_restores_it_from_the_mirror(tmp_path: Path, mirror_kind: str) -> None:
    mirror = str(tmp_path / "mirror") if mirror_kind == "folder" else f"memory://{tmp_path.name}/mirror"
    store = ArchiveStore(tmp_path / "archive", mirror=mirror)
    files = revision_files(blob("weights", 2 << 20))
    store.ingest(stage(store, "r1", files), message="r1", user_name="reviewer")
    assert store.verify(MODEL).ok
    damaged = content_file(store, "model/model.safetensors")
    flip_byte(damaged, 1 << 20)

    report = store.verify(MODEL, fixity=True)
    assert not report.ok and report.repaired == []
    assert {(f.content_path, f.algorithm) for f in report.failures} == {
        ("v1/content/model/model.safetensors", "sha256"), ("v1/content/model/model.safetensors", "sha1")}
    failure = next(f for f in report.failures if f.algorithm == "sha256")
    assert failure.logical_paths == ["model/model.safetensors"]
    assert failure.expected == hashlib.sha256(files["model/model.safetensors"]).hexdigest()
    assert failure.actual == hashlib.sha256(damaged.read_bytes()).hexdigest()
    assert "model/model.safetensors" in str(failure)
    assert (report.checked_files, report.checked_bytes) == (3, sum(map(len, expected_state("r1", files).values())))

    repair = store.verify(MODEL, repair=True)
    assert repair.ok and repair.repaired == ["v1/content/model/model.safetensors"]
    assert [f.repair for f in repair.failures] == ["repaired from the mirror"]
    assert store.verify(MODEL).ok
    assert restored(store, tmp_path / "out") == expected_state("r1", files)
    assert [line["ok"] for line in log_lines(store)] == [True, False, True, True]
    assert log_lines(store)[1]["failures"][0]["logical_paths"] == ["model/model.safetensors"]
    assert_valid(store)
    if mirror_kind == "folder":  # the mirror is itself a valid OCFL storage root
        assert ocfl.StorageRoot(mirror).validate()


def test_a_missing_file_is_named_and_repaired(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive", mirror=str(tmp_path / "mirror"))
    store.ingest(stage(store, "r1", revision_files(b"weights")), message="r1", user_name="reviewer")
    content_file(store, "model/config.json").unlink()
    [failure] = store.verify(MODEL).failures
    assert (failure.logical_paths, failure.actual) == (["model/config.json"], "missing")
    assert "model/config.json" in str(failure) and "missing" in str(failure)
    assert store.verify(MODEL, repair=True).ok
    assert store.verify(MODEL).ok
    assert_valid(store)


def test_repair_needs_a_mirror_and_a_good_copy_there(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    store.ingest(stage(store, "r1", revision_files(b"weights")), message="r1", user_name="reviewer")
    with pytest.raises(ArchiveError, match="mirror"):
        store.verify(MODEL, repair=True)

    mirrored = ArchiveStore(tmp_path / "archive2", mirror=str(tmp_path / "mirror"))
    result = mirrored.ingest(stage(mirrored, "r1", revision_files(b"weights")), message="r1", user_name="reviewer")
    flip_byte(content_file(mirrored, "model/model.safetensors"), 0)
    relative = result.path.relative_to(mirrored.storage_root) / "v1/content/model/model.safetensors"
    flip_byte(tmp_path / "mirror" / relative, 1)
    report = mirrored.verify(MODEL, repair=True)
    assert not report.ok and report.repaired == []
    assert report.failures[0].repair == "the mirror's copy is damaged too"


def test_a_sample_checks_that_many_files(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    store.ingest(stage(store, "r1", revision_files(b"weights")), message="r1", user_name="reviewer")
    report = store.verify(MODEL, sample=1)
    assert report.ok and report.checked_files == 1
    assert log_lines(store)[-1]["sample"] == 1
    assert store.verify(MODEL, sample=50).checked_files == 3


def test_partial_never_lets_a_source_write_into_archived_bytes(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archive")
    staging = store.staging(MODEL, "r1")
    staging.add_bytes("model/config.json", b"archived")
    archived = tmp_path / "archived-link"
    os.link(staging.file("model/config.json"), archived)  # what an ingest killed before its cleanup leaves
    staging.partial("model/config.json").write_bytes(b"overwritten")
    assert archived.read_bytes() == b"archived"


# -- SIGKILL -----------------------------------------------------------------------------------------------

MUTATIONS = ("mkdir", "rename", "replace", "link", "unlink", "rmdir")


def killed_before_mutation(step: int, work: Callable[[Callable[[], None]], None]) -> bool:
    """Run `work` in a forked child that SIGKILLs itself just before the `step`-th filesystem change made after
    `work` calls its argument (arm); whether it was killed (False: it finished first)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        try:
            count = itertools.count(1)

            def wrap(name: str) -> Callable[..., object]:
                change = getattr(os, name)

                def changing(path: object, *args: object, **kwargs: object) -> object:
                    no_op = name == "mkdir" and os.path.isdir(path)  # type: ignore[arg-type]
                    if not no_op and next(count) == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return change(path, *args, **kwargs)
                return changing

            def arm() -> None:
                for name in MUTATIONS:
                    setattr(os, name, wrap(name))

            work(arm)
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the ingest failed in the child (see its traceback above)"
    return False


def assert_settled(store: ArchiveStore, states: dict[str, dict[str, bytes]]) -> None:
    """No half object or version is visible: each listed head holds exactly one of `states` (head -> files)."""
    assert_valid(store)
    for summary in store.objects():
        head = store.describe(summary.object_id).versions[-1]
        assert head.version in states
        assert {f.logical_path: f.sha256 for f in head.files} == {
            path: hashlib.sha256(data).hexdigest() for path, data in states[head.version].items()}
    assert not any((store.root / ".work").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("existing", [False, True], ids=["new-object", "new-version"])
def test_sigkill_at_every_step_of_an_ingest_leaves_no_half_object(tmp_path: Path, existing: bool) -> None:
    first, second = revision_files(blob("weights-1", 1 << 16)), revision_files(blob("weights-2", 1 << 16))
    revision, files = ("r2", second) if existing else ("r1", first)
    final = "v2" if existing else "v1"
    states = {"v1": expected_state("r1", first), "v2": expected_state("r2", second)}
    steps = 0
    for step in itertools.count(1):
        root, mirror = tmp_path / f"s{step}" / "archive", str(tmp_path / f"s{step}" / "mirror")
        if existing:
            before = ArchiveStore(root, mirror=mirror)
            before.ingest(stage(before, "r1", first), message="r1", user_name="reviewer")

        def ingest(arm: Callable[[], None] = lambda: None) -> None:
            store = ArchiveStore(root, mirror=mirror)
            staging = stage(store, revision, files)
            arm()
            store.ingest(staging, message=revision, user_name="reviewer")

        if not killed_before_mutation(step, ingest):
            break
        steps += 1
        store = ArchiveStore(root, mirror=mirror)
        assert_settled(store, states)
        ingest()  # the rerun, with the same staging, completes
        store = ArchiveStore(root, mirror=mirror)
        assert [(s.head, s.versions) for s in store.objects()] == [(final, int(final[1:]))]
        assert restored(store, root.parent / "out") == states[final]
        assert_settled(store, states)
        assert ocfl.StorageRoot(mirror).validate()
    assert steps > 15  # every filesystem change of the ingest was a kill point


KILLED_SCRIPT = """
import hashlib, sys
from pathlib import Path
from tools.archive.store import ArchiveStore
root, size = Path(sys.argv[1]), int(sys.argv[2])
data = (hashlib.sha512(b"big").digest() * 4096)[: 1 << 18] * (size >> 18)
store = ArchiveStore(root)
staging = store.staging("hub/acme/big", "r1")
staged = {f.logical_path for f in staging.files()}
for name in ("model/a.bin", "model/b.bin"):
    if name in staged:
        continue
    with open(staging.partial(name), "wb") as out:
        out.write(data + name.encode())
    print("finishing", flush=True)
    staging.finish(name, sha256=hashlib.sha256(data + name.encode()).hexdigest())
print("ingesting", flush=True)
store.ingest(staging, message="r1", user_name="reviewer")
print("done", flush=True)
"""


@pytest.mark.parametrize("kill_on", ["finishing", "ingesting"])
def test_sigkill_from_outside_during_an_ingest(tmp_path: Path, kill_on: str) -> None:
    root, size = tmp_path / "archive", 32 << 20

    def run(kill_on: str | None) -> int:
        process = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT, str(root), str(size)], cwd=REPO,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == kill_on:
                process.send_signal(signal.SIGKILL)
                break
        return process.wait(timeout=60)

    # Hashing 32 MB outlasts the signal; an ingest of hardlinks can be over before it lands.
    assert run(kill_on) in ((-signal.SIGKILL,) if kill_on == "finishing" else (-signal.SIGKILL, 0))
    store = ArchiveStore(root)
    assert [s.object_id for s in store.objects()] in ([], ["hub/acme/big"])
    assert_valid(store)
    assert run(None) == 0
    store = ArchiveStore(root)
    [summary] = store.objects()
    assert (summary.head, summary.versions, summary.files) == ("v1", 1, 2)
    assert store.verify("hub/acme/big").ok
    data = (hashlib.sha512(b"big").digest() * 4096)[: 1 << 18] * (size >> 18)
    assert restored(store, tmp_path / "out", object_id="hub/acme/big") == {
        name: data + name.encode() for name in ("model/a.bin", "model/b.bin")}
