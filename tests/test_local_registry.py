"""The local folder registry adapter scanned into a real SQLite ledger.

Every test builds a small registry of model folders on tmp_path and scans it
with the real scan engine; nothing of the project's own code is replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import tools.registries.local as local_module
from ledger_reading import query, scan_events
from registry_fakes import SharedList
from weightkeeper.cli.scanning import open_adapter
from weightkeeper.config import RegistryConfig
from weightkeeper.ledger import Ledger
from weightkeeper.scan import Scanner, ScanResult

REPO = Path(__file__).resolve().parents[1]
REGISTRY = "local"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- building model folders ---------------------------------------------------------------------


def card_text(**front: object) -> str:
    """A Hub-style README.md with the given front matter (written as JSON, which YAML reads)."""
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in front.items()), "---", "", "# A model", ""]
    return "\n".join(lines)


def make_model(
    root: Path,
    name: str,
    *,
    card: str | bytes | None = None,
    config: str | None = "config.json",
    weights: dict[str, bytes] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if config:
        (folder / config).write_text(json.dumps({"model_type": "llama", "name": name}) + "\n", encoding="utf-8")
    for filename, data in (weights if weights is not None else {"model.safetensors": f"w:{name}".encode()}).items():
        (folder / filename).write_bytes(data)
    for relative, data in (extra or {}).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    if card is None:
        card = card_text(license="apache-2.0")
    if isinstance(card, str):
        card = card.encode("utf-8")
    (folder / "README.md").write_bytes(card)
    return folder


def scan(ledger_path: Path, root: Path, name: str = REGISTRY) -> ScanResult:
    """One real scan of the folder `root` into the ledger at `ledger_path`."""
    registry = RegistryConfig(name, "local", {"path": str(root)})
    with Ledger(ledger_path) as ledger:
        return Scanner(ledger, registry, open_adapter(ledger, registry)).run()


def model_row(ledger_path: Path, name: str) -> dict:
    rows = query(ledger_path, "SELECT * FROM models WHERE name = ?", (name,))
    assert len(rows) == 1, f"expected one ledger row for {name}, found {len(rows)}"
    return dict(rows[0])


def snapshot(ledger_path: Path, name: str) -> dict:
    """Everything the ledger holds about a model."""
    row = model_row(ledger_path, name)
    model_id = row.pop("id")
    observations = [dict(r) for r in query(ledger_path, "SELECT * FROM observations WHERE model_id = ? ORDER BY id",
                                           (model_id,))]
    events = [dict(r) for r in query(ledger_path, "SELECT * FROM events WHERE model_id = ? ORDER BY id", (model_id,))]
    return {"model": row, "observations": observations, "events": events}


def last_observation(ledger_path: Path, name: str) -> sqlite3.Row:
    row = model_row(ledger_path, name)
    return query(ledger_path, "SELECT * FROM observations WHERE id = ?", (row["last_observation_id"],))[0]


def lineage_of(ledger_path: Path, name: str) -> list[tuple[str, str | None]]:
    row = model_row(ledger_path, name)
    return [tuple(r) for r in query(
        ledger_path,
        "SELECT base_model, relation FROM observation_lineage WHERE observation_id = ? ORDER BY rowid",
        (row["last_observation_id"],),
    )]


# -- bad inputs: each recorded against the model, never read as a deletion -----------------------


def _rewrite_card(content: bytes) -> Callable[[Path], None]:
    def breaker(folder: Path) -> None:
        (folder / "README.md").write_bytes(content)

    return breaker


def _remove_model_files(folder: Path) -> None:
    (folder / "config.json").unlink()
    (folder / "model.safetensors").unlink()


def _symlink_loop_inside(folder: Path) -> None:
    os.symlink("extra.safetensors", folder / "extra.safetensors")


def _model_folder_is_symlink_loop(folder: Path) -> None:
    shutil.rmtree(folder)
    os.symlink(folder.name, folder)


def _model_folder_on_unmounted_volume(folder: Path) -> None:
    volume = folder.parent.parent.parent / "volume2" / folder.name
    volume.parent.mkdir()
    shutil.move(folder, volume)
    os.symlink(volume, folder)
    volume.parent.rename(volume.parent.with_name("volume2-unmounted"))


def _unreadable_card(folder: Path) -> None:
    card = folder / "README.md"
    if IS_ROOT:
        # Root reads through chmod 000: a dangling symlink is a card that cannot be read.
        card.unlink()
        os.symlink("README.md.gone", card)
    else:
        card.chmod(0)


def _unreadable_model_folder(folder: Path) -> None:
    if IS_ROOT:
        # Root lists through chmod 000: a symlink loop in its place cannot be listed.
        _model_folder_is_symlink_loop(folder)
    else:
        folder.chmod(0)


BREAKERS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "non_utf8_card": (_rewrite_card(b"---\nlicense: mit\n---\n\n# caf\xe9 \xff\xfe\n"), ("not UTF-8", "README.md")),
    "invalid_yaml": (_rewrite_card(b"---\nlicense: mit\ntags: [a, b\n---\n# x\n"), ("not valid YAML", "line")),
    "unclosed_front_matter": (_rewrite_card(b"---\nlicense: mit\n\n# no closing line\n"), ("closing '---'",)),
    "front_matter_not_mapping": (_rewrite_card(b"---\n- a\n- b\n---\n# x\n"), ("mapping",)),
    "invalid_relation": (_rewrite_card(card_text(base_model="x/y", base_model_relation="fork").encode()),
                         ("base_model_relation", "fork")),
    "missing_files": (_remove_model_files, ("no config.json",)),
    "symlink_loop_inside": (_symlink_loop_inside, ("symbolic links", "extra.safetensors")),
    "model_folder_symlink_loop": (_model_folder_is_symlink_loop, ("symbolic links",)),
    "model_folder_dangling_symlink": (_model_folder_on_unmounted_volume, ("symbolic link", "volume2")),
    "unreadable_card": (_unreadable_card, ("cannot read", "README.md")),
    "unreadable_model_folder": (_unreadable_model_folder, ("cannot",)),
}


@pytest.mark.parametrize("breaker", list(BREAKERS))
def test_bad_model_is_a_problem_and_nothing_else_changes(tmp_path: Path, breaker: str) -> None:
    break_it, expected = BREAKERS[breaker]
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")
    target = make_model(root, "acme/target", card=card_text(license="mit", base_model="acme/alpha"))
    make_model(root, "solo")
    pristine = tmp_path / "pristine"
    shutil.copytree(target, pristine, symlinks=True)

    first = scan(ledger, root)
    assert first.status == "complete", first.error
    assert first.events == {"appeared": 4}
    before = snapshot(ledger, "acme/target")

    break_it(target)
    # A change to another model in the same scan must still be recorded.
    (root / "acme/beta/model.safetensors").write_bytes(b"retrained weights, longer than before")

    for attempt in range(2):  # a model still broken at the next scan stays untouched too
        second = scan(ledger, root)
        assert second.status == "complete", second.error
        problems = [p for p in second.problems if p["model"] == "acme/target"]
        assert len(problems) == 1, second.problems
        for word in expected:
            assert word in problems[0]["message"], problems[0]["message"]
        assert second.problems == problems, "only the broken model has a problem"
        kinds = [(kind, model) for kind, model, _ in scan_events(ledger, second.scan_id)]
        assert kinds == ([("updated", "acme/beta")] if attempt == 0 else [])
        assert snapshot(ledger, "acme/target") == before
        assert model_row(ledger, "acme/target")["state"] == "present"
    stored = query(ledger, "SELECT model_name, message FROM problems WHERE scan_id = ?", (second.scan_id,))
    assert [row["model_name"] for row in stored] == ["acme/target"]

    # Mended, the model is read again and nothing is reported about it but what changed (nothing).
    if target.is_symlink():
        target.unlink()
    else:
        target.chmod(0o755)  # undoes the non-root chmod 000
        shutil.rmtree(target)
    shutil.copytree(pristine, target, symlinks=True)
    third = scan(ledger, root)
    assert third.status == "complete" and third.problems == []
    assert [(k, m) for k, m, _ in scan_events(ledger, third.scan_id) if m == "acme/target"] == []
    assert model_row(ledger, "acme/target")["state"] == "present"
    assert query(ledger, "SELECT COUNT(*) FROM events WHERE kind IN ('suspected_missing', 'deleted')")[0][0] == 0


def test_emptied_top_level_model_is_a_problem_not_a_missing_model(tmp_path: Path) -> None:
    """`ROOT/NAME/` models: a model folder whose files all vanished is still that model, broken."""
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "solo")
    make_model(root, "other")
    assert scan(ledger, root).events == {"appeared": 2}
    before = snapshot(ledger, "solo")

    for child in (root / "solo").iterdir():
        child.unlink()
    (root / "other/model.safetensors").write_bytes(b"new weights for other, longer")
    result = scan(ledger, root)

    assert result.status == "complete", result.error
    assert [(k, m) for k, m, _ in scan_events(ledger, result.scan_id)] == [("updated", "other")]
    assert [p["model"] for p in result.problems] == ["solo"]
    assert "no config.json" in result.problems[0]["message"]
    assert snapshot(ledger, "solo") == before


@pytest.mark.parametrize("stray", [".DS_Store", "README.md", "notes.txt"])
def test_stray_file_in_an_org_folder_keeps_it_an_org(tmp_path: Path, stray: str) -> None:
    """`ROOT/ORG/NAME/`: a file beside the model folders (Finder's .DS_Store, an org card) makes no org a model."""
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")
    make_model(root, "solo")
    scan(ledger, root)

    (root / "acme" / stray).write_bytes(b"\0\0\0\1Bud1" if stray == ".DS_Store" else b"# Acme models\n")
    for _ in range(2):
        result = scan(ledger, root)
        assert result.status == "complete"
        assert scan_events(ledger, result.scan_id) == []
        assert result.problems == []
    names = {row["name"]: row["state"] for row in query(ledger, "SELECT name, state FROM models")}
    assert names == {"acme/alpha": "present", "acme/beta": "present", "solo": "present"}


def test_vanished_registry_folder_fails_the_scan_and_concludes_nothing(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    for name in ("acme/alpha", "acme/beta", "solo"):
        make_model(root, name)
    assert scan(ledger, root).status == "complete"
    before = {name: snapshot(ledger, name) for name in ("acme/alpha", "acme/beta", "solo")}

    moved = tmp_path / "unmounted"
    root.rename(moved)
    result = scan(ledger, root)
    assert result.status == "failed"
    assert str(root) in result.error
    assert not result.ok
    assert query(ledger, "SELECT COUNT(*) FROM events WHERE kind IN ('suspected_missing', 'deleted')")[0][0] == 0
    assert {name: snapshot(ledger, name) for name in before} == before

    # Mounted again: the next scan completes and still reports nothing missing.
    moved.rename(root)
    again = scan(ledger, root)
    assert again.status == "complete", again.error
    assert again.events == {}
    assert query(ledger, "SELECT COUNT(*) FROM events WHERE kind IN ('suspected_missing', 'deleted')")[0][0] == 0


def test_vanished_registry_folder_through_the_cli(tmp_path: Path) -> None:
    root, home = tmp_path / "registry", tmp_path / "home"
    home.mkdir()  # only `init` and `demo` create a home
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")
    env = {key: value for key, value in os.environ.items() if key != "WEIGHTKEEPER_HOME"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), *args],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=60)

    assert cli("registry", "add", "lab", "--kind", "local", "--path", str(root)).returncode == 0
    assert cli("scan").returncode == 0
    shutil.rmtree(root)
    failed = cli("scan")
    assert failed.returncode == 1, failed.stderr
    assert str(root) in failed.stdout + failed.stderr
    assert "failed" in failed.stdout
    rows = [json.loads(line) for line in cli("ledger", "--format", "jsonl").stdout.splitlines()]
    assert [row["event"] for row in rows] == ["appeared", "appeared"]
    stats = json.loads(cli("stats", "--json").stdout)["models"]
    assert (stats["persist"], stats["suspected_missing"], stats["deleted"]) == (2, 0, 0)


# -- file digests --------------------------------------------------------------------------------


def test_sha256_of_every_file_is_recorded(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    big = os.urandom(local_module.HASH_CHUNK * 2 + 123)  # more than one read chunk
    folder = make_model(root, "acme/alpha", weights={"model-00001.safetensors": big, "model-00002.safetensors": b""},
                        extra={"tokenizer/tokenizer.json": b'{"vocab": {}}'})
    scan(ledger, root)

    observation = last_observation(ledger, "acme/alpha")
    files = {row["path"]: (row["size"], row["sha256"]) for row in query(
        ledger, "SELECT path, size, sha256 FROM observation_files WHERE observation_id = ?", (observation["id"],))}
    on_disk = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert set(files) == set(on_disk) == {"README.md", "config.json", "model-00001.safetensors",
                                          "model-00002.safetensors", "tokenizer/tokenizer.json"}
    for path, data in on_disk.items():
        assert files[path] == (len(data), hashlib.sha256(data).hexdigest()), path


def test_sha256_is_computed_once_per_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = SharedList()  # files are hashed in the process that reads the listing
    real = local_module._sha256

    def counting(path: Path, *how: object) -> str:
        hashed.append(path.name)
        return real(path, *how)

    monkeypatch.setattr(local_module, "_sha256", counting)
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")

    scan(ledger, root)
    assert sorted(hashed.items()) == sorted(["README.md", "config.json", "model.safetensors"] * 2)
    assert query(ledger, "SELECT COUNT(*) FROM file_digests")[0][0] == 6

    hashed.clear()
    unchanged = scan(ledger, root)
    assert hashed.items() == [] and unchanged.events == {}

    weights = root / "acme/beta/model.safetensors"
    weights.write_bytes(b"new weights of another size")
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = scan(ledger, root)
    assert hashed.items() == ["model.safetensors"]
    assert changed.events == {"updated": 1}
    cached = query(ledger, "SELECT size, stamp, sha256 FROM file_digests WHERE path = ?",
                   ("acme/beta/model.safetensors",))
    assert [tuple(row) for row in cached] == [(len(b"new weights of another size"),
                                               f"{weights.stat().st_mtime_ns}:{weights.stat().st_ctime_ns}:"
                                               f"{weights.stat().st_ino}",
                                               hashlib.sha256(b"new weights of another size").hexdigest())]

    hashed.clear()
    scan(ledger, root)
    assert hashed.items() == []

    # Same size, mtime set back: the ctime still moved, so the file is hashed again.
    before = weights.stat()
    weights.write_bytes(b"NEW weights of another size")
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_mtime_ns == before.st_mtime_ns and weights.stat().st_size == before.st_size
    rewritten = scan(ledger, root)
    assert hashed.items() == ["model.safetensors"] and rewritten.events == {"updated": 1}


# -- renames and copies --------------------------------------------------------------------------


def test_renamed_folder_is_a_rename(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha", card=card_text(license="mit", base_model="meta/llama"))
    make_model(root, "acme/beta")
    scan(ledger, root)
    model_id = model_row(ledger, "acme/alpha")["id"]

    os.rename(root / "acme/alpha", root / "acme/alpha-v2")
    result = scan(ledger, root)

    assert result.status == "complete"
    events = scan_events(ledger, result.scan_id)
    assert events == [("renamed", "acme/alpha-v2", {"from": "acme/alpha", "to": "acme/alpha-v2"})]
    renamed = model_row(ledger, "acme/alpha-v2")
    assert (renamed["id"], renamed["state"]) == (model_id, "present")
    assert query(ledger, "SELECT COUNT(*) FROM models")[0][0] == 2
    assert lineage_of(ledger, "acme/alpha-v2") == [("meta/llama", "finetune")]


def test_renamed_folder_to_another_org_with_an_edited_card(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")
    scan(ledger, root)

    (root / "newco").mkdir()
    os.rename(root / "acme/alpha", root / "newco/alpha")
    (root / "newco/alpha/README.md").write_text(card_text(license="mit"), encoding="utf-8")
    result = scan(ledger, root)

    kinds = [(kind, model) for kind, model, _ in scan_events(ledger, result.scan_id)]
    assert kinds == [("renamed", "newco/alpha"), ("updated", "newco/alpha")]


def test_copied_folder_is_a_new_model(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha")
    scan(ledger, root)

    shutil.copytree(root / "acme/alpha", root / "acme/alpha-copy")
    result = scan(ledger, root)

    assert [(k, m) for k, m, _ in scan_events(ledger, result.scan_id)] == [("appeared", "acme/alpha-copy")]
    assert model_row(ledger, "acme/alpha")["state"] == "present"
    assert model_row(ledger, "acme/alpha-copy")["state"] == "present"


def test_deleted_folder_is_deleted(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha")
    make_model(root, "acme/beta")
    scan(ledger, root)

    shutil.rmtree(root / "acme/alpha")
    result = scan(ledger, root)

    assert [(k, m) for k, m, _ in scan_events(ledger, result.scan_id)] == [
        ("suspected_missing", "acme/alpha"), ("deleted", "acme/alpha")]
    assert model_row(ledger, "acme/alpha")["state"] == "deleted"
    assert model_row(ledger, "acme/beta")["state"] == "present"


# -- what the card says --------------------------------------------------------------------------


def test_lineage_is_recorded_and_inferred(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/finetune", card=card_text(base_model="meta/llama"))
    make_model(root, "acme/lora", config="adapter_config.json", weights={"adapter_model.safetensors": b"lora"},
               card=card_text(base_model="meta/llama"))
    make_model(root, "acme/quant-GGUF", config=None, weights={"quant.Q4_K_M.gguf": b"GGUF...."},
               card=card_text(base_model="acme/finetune"))
    make_model(root, "acme/merged", card=card_text(base_model=["meta/llama", "mistral/mistral"]))
    make_model(root, "acme/explicit", config="adapter_config.json", weights={"adapter_model.safetensors": b"x"},
               card=card_text(base_model="meta/llama", base_model_relation="finetune"))
    make_model(root, "acme/explicit-merge", card=card_text(base_model=["a/one", "b/two"],
                                                          base_model_relation="merge"))
    make_model(root, "acme/scratch", card=card_text(license="mit"))
    make_model(root, "acme/no-card", card=b"# just markdown, no front matter\n")

    result = scan(ledger, root)
    assert result.status == "complete" and result.problems == []

    assert lineage_of(ledger, "acme/finetune") == [("meta/llama", "finetune")]
    assert lineage_of(ledger, "acme/lora") == [("meta/llama", "adapter")]
    assert lineage_of(ledger, "acme/quant-GGUF") == [("acme/finetune", "quantized")]
    assert lineage_of(ledger, "acme/merged") == [("meta/llama", "merge"), ("mistral/mistral", "merge")]
    assert lineage_of(ledger, "acme/explicit") == [("meta/llama", "finetune")]
    assert lineage_of(ledger, "acme/explicit-merge") == [("a/one", "merge"), ("b/two", "merge")]
    assert lineage_of(ledger, "acme/scratch") == []
    assert lineage_of(ledger, "acme/no-card") == []


def test_lineage_change_is_an_update(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/ft", card=card_text(base_model="meta/llama"))
    scan(ledger, root)
    (root / "acme/ft/README.md").write_text(card_text(base_model="meta/llama-3.1"), encoding="utf-8")
    result = scan(ledger, root)
    ((kind, _, detail),) = scan_events(ledger, result.scan_id)
    assert kind == "updated" and "lineage" in detail["changed"]
    assert lineage_of(ledger, "acme/ft") == [("meta/llama-3.1", "finetune")]


def test_visibility_comes_from_the_card(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    for value in ("public", "private", "gated", "disabled"):
        make_model(root, f"acme/{value}", card=card_text(visibility=value))
    make_model(root, "acme/unsaid", card=card_text(license="mit"))
    make_model(root, "acme/invalid", card=card_text(visibility="secret"))

    result = scan(ledger, root)
    assert result.status == "complete"
    for value in ("public", "private", "gated", "disabled"):
        assert model_row(ledger, f"acme/{value}")["visibility"] == value
        assert last_observation(ledger, f"acme/{value}")["visibility"] == value
    assert model_row(ledger, "acme/unsaid")["visibility"] == "public"
    assert [p["model"] for p in result.problems] == ["acme/invalid"]
    assert "secret" in result.problems[0]["message"]
    assert "visibility" in result.problems[0]["message"].lower()
    assert query(ledger, "SELECT COUNT(*) FROM models WHERE name = 'acme/invalid'")[0][0] == 0

    # A visibility change is its own event, not an update.
    (root / "acme/public/README.md").write_text(card_text(visibility="gated"), encoding="utf-8")
    changed = scan(ledger, root)
    assert [(k, m, d) for k, m, d in scan_events(ledger, changed.scan_id)] == [
        ("visibility_changed", "acme/public", {"from": "public", "to": "gated"})]


def test_invalid_visibility_on_a_known_model_changes_nothing(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/alpha", card=card_text(visibility="private"))
    scan(ledger, root)
    before = snapshot(ledger, "acme/alpha")
    (root / "acme/alpha/README.md").write_text(card_text(visibility="Hidden!"), encoding="utf-8")

    result = scan(ledger, root)
    assert result.status == "complete" and [p["model"] for p in result.problems] == ["acme/alpha"]
    assert snapshot(ledger, "acme/alpha") == before


def test_deprecation_fields_from_the_card(tmp_path: Path) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/old")
    scan(ledger, root)
    (root / "acme/old/README.md").write_text(
        "---\nlicense: apache-2.0\nshutdown_date: 2027-02-01\nnew_version: acme/new\n---\n\n# A model\n",
        encoding="utf-8")
    result = scan(ledger, root)
    assert scan_events(ledger, result.scan_id) == [
        ("deprecation_announced", "acme/old", {"shutdown_date": "2027-02-01", "successor": "acme/new"})]
    observation = last_observation(ledger, "acme/old")
    assert (observation["shutdown_date"], observation["successor"]) == ("2027-02-01", "acme/new")


def test_a_model_first_seen_with_a_shutdown_date_in_its_card_is_announced_once(tmp_path: Path) -> None:
    """The card announced the shutdown before the first scan. A fine-tune of that model in the folder holds its
    own weights, which the base's shutdown does not take away: it inherits no shutdown date."""
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/old", card=card_text(license="apache-2.0", shutdown_date="2027-02-01",
                                                new_version="acme/new"))
    make_model(root, "acme/old-tuned", card=card_text(license="apache-2.0", base_model="acme/old"))
    first = scan(ledger, root)
    assert first.events == {"appeared": 2, "deprecation_announced": 1}
    assert [event for event in scan_events(ledger, first.scan_id) if event[0] != "appeared"] == [
        ("deprecation_announced", "acme/old",
         {"shutdown_date": "2027-02-01", "successor": "acme/new", "first_seen": True})]
    assert last_observation(ledger, "acme/old-tuned")["shutdown_date"] is None
    assert scan(ledger, root).events == {}


@pytest.mark.parametrize(
    ("front_matter", "expected"),
    [
        ("co2_eq_emissions: 12.5\n", {"emissions": 12.5}),
        ("co2_eq_emissions: 7\n", {"emissions": 7}),
        (
            "co2_eq_emissions:\n  emissions: 1200\n  source: CodeCarbon\n  training_type: fine-tuning\n"
            "  geographical_location: Oregon, USA\n  hardware_used: 8 x A100\n  measured_on: 2026-03-01\n",
            {"emissions": 1200, "source": "CodeCarbon", "training_type": "fine-tuning",
             "geographical_location": "Oregon, USA", "hardware_used": "8 x A100", "measured_on": "2026-03-01"},
        ),
        ("license: mit\n", None),
    ],
    ids=["float", "int", "mapping", "absent"],
)
def test_co2_emissions_from_the_card(tmp_path: Path, front_matter: str, expected: dict | None) -> None:
    root, ledger = tmp_path / "registry", tmp_path / "ledger.sqlite3"
    make_model(root, "acme/green", card=f"---\n{front_matter}datasets: squad\n---\n# Green\n")
    result = scan(ledger, root)
    assert result.status == "complete" and result.problems == []
    observation = last_observation(ledger, "acme/green")
    stored = None if observation["emissions"] is None else json.loads(observation["emissions"])
    assert stored == expected
    assert json.loads(observation["datasets"]) == ["squad"]
