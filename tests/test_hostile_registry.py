"""Registry content written by an attacker: cards, file trees and names come from strangers.

Each attack is built for real (an alias-bomb card, a FIFO, symbolic links out of the registry, a folder
named with a newline) or served by the fake Hub over real HTTP, and scanned by the real `Scanner` into a
real ledger in a forked process of its own session, with a deadline and a cap on its address space and
file sizes: a hang or a blow-up fails the test instead of stalling the machine. Each asserts that the scan
completes, that the bad model is a problem whose message says what is wrong, that a neighbour's deletion
is still recorded, and that nothing outside the registry's folder was read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from fake_hub import FakeHub
from ledger_reading import query, scan_events
from test_huggingface_registry import TOKEN, scan as hub_scan
from test_local_registry import card_text, make_model, scan
from tools.archive.sources import LocalSource, SourceError, SourceFile
from tools.registries.local import LocalFolderRegistry
from weightkeeper.domain import Page, RecordProblem
from weightkeeper.scan import ScanResult

T = TypeVar("T")
DEADLINE = 90.0  # seconds: a scan of a few small models takes one or two; more is a hang
MORE_MEMORY = 1 << 30  # what a scan may add to the forked test process's address space: a bomb needs GBs
LARGEST_FILE = 512 << 20  # no file a scan writes (the ledger) may grow past this: /dev/zero never ends
SENTINEL = b"outside the registry: these bytes must never be read by a scan\n"


# -- running a scan that may hang or blow up ------------------------------------------------------


def within_limits(target: Callable[[], T], deadline: float = DEADLINE) -> T:
    """`target()` run in a forked process of its own session, with MORE_MEMORY and LARGEST_FILE as limits: its
    value; what it raised fails the test. A process still running after `deadline` is killed with whatever it
    started (the scan's reading process), and the test fails."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    memory = psutil.Process().memory_info().vms + MORE_MEMORY

    def child() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (LARGEST_FILE, LARGEST_FILE))
        try:
            writer.send(("value", target()))
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the test says it
            writer.send(("raised", (type(exc).__name__, str(exc))))

    process = context.Process(target=child, name="hostile-scan")
    process.start()
    writer.close()
    try:
        if not reader.poll(deadline):
            pytest.fail(f"did not finish within {deadline:.0f} s: a hang")
        try:
            kind, value = reader.recv()
        except EOFError:
            process.join()
            pytest.fail(f"died without an answer (exit code {process.exitcode}): a blow-up")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.join()
        reader.close()
    if kind == "raised":
        raise AssertionError(f"raised {value[0]}: {value[1]}")
    return value


def scan_within_limits(ledger: Path, root: Path) -> ScanResult:
    return within_limits(lambda: scan(ledger, root))


# -- a registry whose next scan must find a deletion ----------------------------------------------


def registry_with_a_deletion(tmp_path: Path) -> tuple[Path, Path]:
    """acme/alpha, acme/beta and acme/target scanned once, then acme/beta deleted: the next scan must record
    that deletion whatever acme/target (or a new model) has become."""
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    for name in ("acme/alpha", "acme/beta", "acme/target"):
        make_model(root, name)
    assert scan(ledger, root).events == {"appeared": 3}
    shutil.rmtree(root / "acme/beta")
    return root, ledger


@pytest.fixture
def hub_with_a_deletion(tmp_path: Path) -> Iterator[tuple[FakeHub, Path]]:
    """The fake Hub with acme/alpha, acme/beta and acme/target, scanned once with a token (which lets a lookup
    tell a deleted repo), then acme/beta deleted; and the ledger."""
    ledger = tmp_path / "ledger.sqlite3"
    with FakeHub(page_size=2, tokens={TOKEN: {"acme"}}) as hub:
        for name in ("acme/alpha", "acme/beta", "acme/target"):
            hub.add(name, card_data={"license": "mit"})
        assert hub_scan(ledger, hub, token=TOKEN, files="*").events == {"appeared": 3}
        hub.delete("acme/beta")
        yield hub, ledger


def hub_scan_within_limits(hub: FakeHub, ledger: Path) -> ScanResult:
    # The Hub tests' 0.3 s read timeout is for hangs; a 50 MB answer on a busy machine needs more between bytes.
    return within_limits(lambda: hub_scan(ledger, hub, token=TOKEN, files="*", timeout=10.0))


def assert_contained(result: ScanResult, ledger: Path, problem_name: str, expected: tuple[str, ...]) -> None:
    """The scan completed, the bad model is its only problem, saying `expected`, and acme/beta's deletion was
    recorded; no name or message in the ledger carries a character that does not show as itself."""
    assert result.status == "complete", result.error
    assert [problem["model"] for problem in result.problems] == [problem_name], result.problems
    message = result.problems[0]["message"]
    for words in expected:
        assert words in message, message
    kinds = [(kind, model) for kind, model, _ in scan_events(ledger, result.scan_id)]
    assert kinds == [("suspected_missing", "acme/beta"), ("deleted", "acme/beta")]
    for row in query(ledger, "SELECT model_name, message FROM problems"):
        assert (row["model_name"] or "").isprintable() and row["message"].isprintable(), tuple(row)
    assert all(row["name"].isprintable() for row in query(ledger, "SELECT name FROM models"))


def ledger_bytes(ledger: Path) -> bytes:
    """The ledger file with its write-ahead log: everything the scan wrote."""
    return b"".join(path.read_bytes() for path in sorted(ledger.parent.glob(ledger.name + "*")))


def assert_never_read(ledger: Path, *names: str) -> None:
    """Neither the outside bytes nor what only the outside folders hold reached the ledger."""
    written = ledger_bytes(ledger)
    assert hashlib.sha256(SENTINEL).hexdigest().encode() not in written
    for name in names:
        assert name.encode() not in written, name


# -- cards ----------------------------------------------------------------------------------------


def alias_bomb() -> str:
    """Nine levels of nine aliases each: 9**9 (387 million) values once expanded, from 700 bytes."""
    lines = ["---", "license: mit", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]" for level in range(1, 10)]
    return "\n".join([*lines, "---", "", "# A model", ""])


def merge_key_bomb() -> str:
    """The same through YAML merge keys (`<<`), which the loader copies into each mapping."""
    lines = ["---", "m0: &m0 {k: v}"]
    lines += [f"m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 9)}]}}" for level in range(1, 10)]
    return "\n".join([*lines, "---", ""])


CARD_ATTACKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "alias_bomb": (alias_bomb(), ("README.md", "more than 100,000 values", "aliases")),
    "merge_key_bomb": (merge_key_bomb(), ("more than 100,000 values",)),
    "deep_nesting": ("---\nx: " + "[" * 5000 + "]" * 5000 + "\n---\n", ("nests deeper than 64 levels", "line 2")),
    "self_reference": ("---\nlicense: mit\ntraining: &loop {again: *loop}\n---\n", ("refers to itself",)),
    "huge_front_matter": ("---\nlicense: mit\nnotes: " + "x" * 300_000 + "\n---\n",
                          ("front matter is longer than 131,072 characters",)),
}


@pytest.mark.parametrize("attack", list(CARD_ATTACKS))
def test_a_card_beyond_the_limits_is_a_problem_and_a_deletion_beside_it_is_found(tmp_path: Path,
                                                                                 attack: str) -> None:
    card, expected = CARD_ATTACKS[attack]
    root, ledger = registry_with_a_deletion(tmp_path)
    before = query(ledger, "SELECT * FROM observations WHERE name = 'acme/target'")
    (root / "acme/target/README.md").write_text(card, encoding="utf-8")

    result = scan_within_limits(ledger, root)

    assert_contained(result, ledger, "acme/target", expected)
    assert [tuple(row) for row in query(ledger, "SELECT * FROM observations WHERE name = 'acme/target'")] == [
        tuple(row) for row in before], "what was recorded of the model stays as it was"


def test_a_hub_card_nested_beyond_the_limit_is_a_problem(hub_with_a_deletion: tuple[FakeHub, Path]) -> None:
    """The Hub sends the card's metadata as JSON: no aliases, but nesting as deep as its sender likes."""
    hub, ledger = hub_with_a_deletion
    nested: dict[str, Any] = {}
    for _ in range(900):  # within what the JSON readers take (orjson: 1024), beyond what a card needs
        nested = {"deeper": nested}
    hub.commit("acme/target", card_data={"license": "mit", "training": nested})

    result = hub_scan_within_limits(hub, ledger)

    assert_contained(result, ledger, "acme/target", ("card", "nests deeper than 64 levels"))


# -- huge cards -----------------------------------------------------------------------------------


def stored_card_values(ledger: Path) -> list[str]:
    return [value for row in query(ledger, "SELECT license, emissions, training, datasets FROM observations")
            for value in row if value is not None]


def test_a_50_mb_card_costs_the_ledger_a_bounded_prefix_and_says_it_was_cut(tmp_path: Path) -> None:
    """Within the front matter's limit, each value weightkeeper keeps is cut to a few KiB, with a note; the
    50 MB body is never kept and never read whole."""
    root, ledger = registry_with_a_deletion(tmp_path)
    front = {"license": "L" * 40_000, "training": {"notes": "t" * 40_000, "steps": 1000},
             "datasets": [f"acme/dataset-{number:05d}" for number in range(1000)]}
    card = card_text(**front) + "b" * (50 << 20)
    (root / "acme/target/README.md").write_text(card, encoding="utf-8")
    before = len(ledger_bytes(ledger))

    result = scan_within_limits(ledger, root)

    assert result.status == "complete" and result.problems == [], (result.error, result.problems)
    assert [(kind, model) for kind, model, _ in scan_events(ledger, result.scan_id)] == [
        ("updated", "acme/target"), ("suspected_missing", "acme/beta"), ("deleted", "acme/beta")]
    assert len(ledger_bytes(ledger)) - before < 1 << 20
    row = query(ledger, "SELECT o.license, o.training, o.datasets FROM models m"
                        " JOIN observations o ON o.id = m.last_observation_id WHERE m.name = 'acme/target'")[0]
    assert row["license"].startswith("L" * 4096) and "cut by weightkeeper" in row["license"]
    assert len(row["license"]) < 4096 + 200
    training = json.loads(row["training"])
    assert "cut by weightkeeper" in training["cut"] and training["kept"].startswith('{"notes":"ttt')
    datasets = json.loads(row["datasets"])
    assert datasets[0] == "acme/dataset-00000" and "cut by weightkeeper" in datasets[-1]
    assert max(map(len, stored_card_values(ledger))) < 4096 + 200


def test_a_50_mb_front_matter_is_a_problem_not_a_50_mb_ledger(tmp_path: Path) -> None:
    root, ledger = registry_with_a_deletion(tmp_path)
    card = card_text(license="mit", training={"notes": "n" * (50 << 20)})
    (root / "acme/target/README.md").write_text(card, encoding="utf-8")
    before = len(ledger_bytes(ledger))

    result = scan_within_limits(ledger, root)

    assert_contained(result, ledger, "acme/target", ("front matter is longer than 131,072 characters",))
    assert len(ledger_bytes(ledger)) - before < 1 << 20


def test_a_hub_card_of_50_mb_is_kept_as_a_bounded_prefix(hub_with_a_deletion: tuple[FakeHub, Path]) -> None:
    hub, ledger = hub_with_a_deletion
    hub.commit("acme/target", card_data={"license": "L" * (50 << 20), "new_version": "acme/" + "n" * 10_000})
    before = len(ledger_bytes(ledger))

    result = hub_scan_within_limits(hub, ledger)

    assert result.status == "complete" and result.problems == [], (result.error, result.problems)
    assert len(ledger_bytes(ledger)) - before < 1 << 20
    row = query(ledger, "SELECT o.license, o.successor FROM models m JOIN observations o"
                        " ON o.id = m.last_observation_id WHERE m.name = 'acme/target'")[0]
    for value in row:
        assert "cut by weightkeeper" in value and len(value) < 4096 + 200, value[-200:]
    assert ("deleted", "acme/beta") in [(kind, model) for kind, model, _ in scan_events(ledger, result.scan_id)]


class _NoDigests:
    def get(self, path: str, size: int, stamp: str) -> str | None:
        return None

    def put(self, path: str, size: int, stamp: str, sha256: str) -> None:
        pass


def test_a_50_mb_card_is_never_read_whole(tmp_path: Path) -> None:
    """Only a bounded prefix of README.md is read into memory; its sha256 is still that of the whole file."""
    root = tmp_path / "registry"
    card = (card_text(license="mit") + "b" * (50 << 20)).encode()
    make_model(root, "acme/big", card=card)
    registry = LocalFolderRegistry(root, _NoDigests())

    tracemalloc.start()
    try:
        [record] = registry.records(Page(("acme/big",), None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert not isinstance(record, RecordProblem), record
    # The card's digest is taken by orjson, which reserves many times what it encodes: of what is read (1 MiB).
    assert peak < 24 << 20, f"reading the model took {peak:,} bytes at its peak"
    assert record.card is not None and record.card.license == "mit"
    assert dict((entry.path, entry.sha256) for entry in record.files)["README.md"] == hashlib.sha256(card).hexdigest()


def test_a_change_past_the_part_of_a_card_that_is_read_is_still_seen(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    head = card_text(license="mit") + "b" * (4 << 20)
    make_model(root, "acme/big", card=head + "first ending\n")
    scan(ledger, root)
    (root / "acme/big/README.md").write_text(head + "another ending\n", encoding="utf-8")
    result = scan(ledger, root)
    assert [(kind, model, detail) for kind, model, detail in scan_events(ledger, result.scan_id)] == [
        ("updated", "acme/big", {"changed": ["card"]})]


# -- links, pipes and devices ---------------------------------------------------------------------


def outside(tmp_path: Path) -> Path:
    """A folder beside the registry: a file of SENTINEL bytes, and a complete model folder of them."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.safetensors").write_bytes(SENTINEL)
    make_model(folder, "model", weights={"model.safetensors": SENTINEL, "leaked-weights.safetensors": SENTINEL})
    (folder / "only-outside").mkdir()
    (folder / "only-outside/leaked-notes.bin").write_bytes(SENTINEL)
    os.mkfifo(folder / "pipe")
    return folder


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    make(path)


# name of the problem, what is replaced (below the registry), how, and what its message says
LINK_ATTACKS: dict[str, tuple[str, str, Callable[[Path, Path], None], tuple[str, ...]]] = {
    "weights_link_out": ("acme/target", "acme/target/model.safetensors",
                         lambda path, out: os.symlink(out / "secret.safetensors", path),
                         ("model.safetensors", "is a symbolic link to", "secret.safetensors")),
    "relative_link_out": ("acme/target", "acme/target/extra.safetensors",
                          lambda path, out: os.symlink("../../../outside/secret.safetensors", path),
                          ("extra.safetensors", "symbolic link", "../../../outside/secret.safetensors")),
    "link_to_an_outside_fifo": ("acme/target", "acme/target/model.safetensors",
                                lambda path, out: os.symlink(out / "pipe", path), ("symbolic link", "pipe")),
    "folder_link_out": ("acme/target", "acme/target/tokenizer",
                        lambda path, out: os.symlink(out / "only-outside", path), ("tokenizer", "symbolic link")),
    "link_to_dotdot": ("acme/target", "acme/target/parent", lambda path, out: os.symlink("..", path),
                       ("parent", "symbolic link to '..'")),
    "model_folder_link_out": ("acme/target", "acme/target", lambda path, out: os.symlink(out / "model", path),
                              ("acme/target", "symbolic link")),
    "top_level_link_out": ("evil", "evil", lambda path, out: os.symlink(out / "model", path),
                           ("evil", "symbolic link")),
    "org_link_out": ("shadow", "shadow", lambda path, out: os.symlink(out, path), ("shadow", "symbolic link")),
}


@pytest.mark.parametrize("attack", list(LINK_ATTACKS))
def test_a_link_out_of_the_registry_is_a_problem_and_never_read(tmp_path: Path, attack: str) -> None:
    problem_name, replaced, link, expected = LINK_ATTACKS[attack]
    root, ledger = registry_with_a_deletion(tmp_path)
    out = outside(tmp_path)
    _replace(root / replaced, lambda path: link(path, out))

    result = scan_within_limits(ledger, root)

    assert_contained(result, ledger, problem_name, (*expected, "never follows symbolic links"))
    assert_never_read(ledger, "leaked-weights.safetensors", "leaked-notes.bin")


def _socket_at(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    # A socket's path is at most 107 bytes, and pytest-xdist's tmp_path can be longer: bind by a relative one.
    with contextlib.chdir(path.parent):
        server.bind(path.name)
    server.close()  # the socket file stays


SPECIAL_FILES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "fifo_as_weights": (os.mkfifo, ("model.safetensors", "is a named pipe (FIFO), not a regular file")),
    "socket_as_weights": (_socket_at, ("model.safetensors", "is a socket, not a regular file")),
    "link_to_dev_zero": (lambda path: os.symlink("/dev/zero", path),
                         ("model.safetensors", "symbolic link to '/dev/zero'")),
}


@pytest.mark.parametrize("attack", list(SPECIAL_FILES))
def test_only_regular_files_are_hashed(tmp_path: Path, attack: str) -> None:
    make, expected = SPECIAL_FILES[attack]
    root, ledger = registry_with_a_deletion(tmp_path)
    _replace(root / "acme/target/model.safetensors", make)

    result = scan_within_limits(ledger, root)

    assert_contained(result, ledger, "acme/target", expected)


ARCHIVE_ATTACKS: dict[str, tuple[str, Callable[[Path, Path], None], tuple[str, ...]]] = {
    "weights_link_out": ("acme/target/model.safetensors",
                         lambda path, out: os.symlink(out / "acme/target/model.safetensors", path),
                         ("acme/target/model.safetensors", "is a symbolic link to")),
    "link_to_dev_zero": ("acme/target/model.safetensors", lambda path, out: os.symlink("/dev/zero", path),
                         ("acme/target/model.safetensors", "symbolic link to '/dev/zero'")),
    "fifo": ("acme/target/model.safetensors", lambda path, out: os.mkfifo(path),
             ("acme/target/model.safetensors", "named pipe")),
    "model_folder_link_out": ("acme/target", lambda path, out: os.symlink(out / "acme/target", path),
                              ("acme/target", "symbolic link")),
    "org_link_out": ("acme", lambda path, out: os.symlink(out / "acme", path), ("acme", "symbolic link")),
}


@pytest.mark.parametrize("attack", list(ARCHIVE_ATTACKS))
def test_the_archive_copies_no_file_that_became_a_link_or_a_pipe_after_the_scan(tmp_path: Path,
                                                                                attack: str) -> None:
    """An approved archive copies the recorded files: it checks them again, as the folder may have changed."""
    replaced, change, expected = ARCHIVE_ATTACKS[attack]
    root = tmp_path / "registry"
    make_model(root, "acme/target", weights={"model.safetensors": SENTINEL})
    out = outside(tmp_path)
    shutil.copytree(root / "acme", out / "acme")  # the same bytes outside: their sha256 would match
    source = LocalSource(root, "acme/target")
    recorded = SourceFile("model.safetensors", len(SENTINEL), hashlib.sha256(SENTINEL).hexdigest())
    _replace(root / replaced, lambda path: change(path, out))
    partial = tmp_path / "partial"

    def fetch() -> str:
        try:
            source.fetch(recorded, partial)
        except SourceError as exc:
            return str(exc)
        return "copied"

    message = within_limits(fetch)

    for words in expected:
        assert words in message, message
    assert not partial.exists() or SENTINEL not in partial.read_bytes()


def test_the_archive_still_copies_a_regular_file(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    make_model(root, "acme/target", weights={"model.safetensors": SENTINEL}, extra={"sub/dir/tok.json": b"{}"})
    partial = tmp_path / "partial"
    source = LocalSource(root, "acme/target")
    source.fetch(SourceFile("model.safetensors", len(SENTINEL), None), partial)
    assert partial.read_bytes() == SENTINEL
    source.fetch(SourceFile("sub/dir/tok.json", 2, None), partial)
    assert partial.read_bytes() == b"{}"


# -- names ----------------------------------------------------------------------------------------

NAMES: dict[str, tuple[bytes, str]] = {
    "newline_header": (b"acme/m\nBcc: attacker@example.com", "acme/m\\nBcc: attacker@example.com"),
    "right_to_left_override": ("acme/\u202egnp.evil".encode(), "acme/\\u202egnp.evil"),
    "tab_and_escape": (b"acme/a\tb\x1b[31m", "acme/a\\tb\\x1b[31m"),
    "not_utf8": (b"acme/caf\xe9", "acme/caf\\udce9"),
}


@pytest.mark.parametrize("attack", list(NAMES))
def test_a_folder_name_with_control_characters_is_a_problem_shown_escaped(tmp_path: Path, attack: str) -> None:
    raw, shown = NAMES[attack]
    root, ledger = registry_with_a_deletion(tmp_path)
    folder = os.fsencode(root) + b"/" + raw
    os.makedirs(folder)
    for filename in (b"config.json", b"model.safetensors"):
        with open(folder + b"/" + filename, "wb") as handle:
            handle.write(b"{}")

    result = scan_within_limits(ledger, root)

    assert_contained(result, ledger, shown, ("control", "rename it"))
    assert shown in result.problems[0]["message"]
    assert [row["name"] for row in query(ledger, "SELECT name FROM models ORDER BY name")] == [
        "acme/alpha", "acme/beta", "acme/target"]


@pytest.mark.parametrize("raw", [b"notes\nBcc: attacker@example.com.txt", b"\xff.bin"], ids=["newline", "not_utf8"])
def test_a_file_named_with_control_characters_makes_its_model_a_problem(tmp_path: Path, raw: bytes) -> None:
    root, ledger = registry_with_a_deletion(tmp_path)
    with open(os.fsencode(root / "acme/target") + b"/" + raw, "wb") as handle:
        handle.write(b"notes")

    result = scan_within_limits(ledger, root)

    assert_contained(result, ledger, "acme/target", ("control",))


def test_a_hub_id_with_a_newline_never_becomes_a_model(hub_with_a_deletion: tuple[FakeHub, Path]) -> None:
    """Nor are its files asked for: the name would make an invalid URL."""
    hub, ledger = hub_with_a_deletion
    hub.add("acme/m\r\nBcc: attacker@example.com", card_data={"license": "mit"})

    result = hub_scan_within_limits(hub, ledger)

    assert_contained(result, ledger, "acme/m\\r\\nBcc: attacker@example.com", ("control",))
    assert sorted(row["name"] for row in query(ledger, "SELECT name FROM models")) == [
        "acme/alpha", "acme/beta", "acme/target"]


def test_the_limits_catch_a_hang_and_a_blow_up() -> None:
    """The limits the tests above rely on are real: a hang or a blow-up fails a test rather than the run."""
    with pytest.raises(pytest.fail.Exception, match="a hang"):
        within_limits(signal.pause, deadline=1.0)
    with pytest.raises(AssertionError, match="MemoryError"):
        within_limits(lambda: bytearray(2 * MORE_MEMORY))
