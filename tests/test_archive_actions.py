"""Approved archive actions end to end: a real local registry, a fake Hub over real HTTP, a real MLflow
tracking server serving its artifacts and a fake OpenAI API over real HTTP; the proposal graph, a human
approval, the executor, the OCFL store (validated by ocfl-py), and what the ledger records. Without an
approval of the exact revision, nothing is downloaded."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import ocfl
import pytest
from fake_hub import FakeHub
from fake_openai import API_KEY, FakeOpenAI
from http_fakes import Fault, FakeServer
from mlflow_server import MLflowServer
from proposal_world import reviewer, run_propose

from agents.executor import execute
from tools.archive.archiving import object_id, open_store
from tools.archive.sources import HubSource, MlflowSource, SourceFile, git_blob_sha1
from weightkeeper import config
from weightkeeper.cli.scanning import scan_registries
from weightkeeper.ledger import Ledger
from weightkeeper.review import ApprovalRefused, Review, ReviewQueue

WEIGHTS = os.urandom(3 << 20)
CARD = "---\nbase_model: meta-llama/Llama-3.1-8B\nlicense: apache-2.0\n{extra}---\n# med-ft\nClinical notes.\n"


def write_model(root: Path, name: str, *, shutdown: str | None = None, weights: bytes = WEIGHTS) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "README.md").write_text(CARD.format(extra=f"shutdown_date: '{shutdown}'\n" if shutdown else ""))
    return folder


@pytest.fixture
def deprecated(proposal_home: Path) -> Path:
    """A local registry whose acme/med-ft announced a shutdown date, scanned, and proposed for."""
    root = proposal_home / "registry"
    write_model(root, "acme/med-ft")
    config.add_registry(proposal_home, config.RegistryConfig("team", "local", {"path": str(root)}))
    scan_registries(proposal_home, ["team"], log=None)
    write_model(root, "acme/med-ft", shutdown="2027-03-01")
    scan_registries(proposal_home, ["team"], log=None)
    run_propose(proposal_home)
    return proposal_home


def the_review(home: Path) -> Review:
    with Ledger(config.load(home).store) as ledger:
        (review,) = ReviewQueue(ledger).list()
    return review


def approve_archive(home: Path, review: Review) -> int:
    index = next(i for i, action in enumerate(review.draft.actions) if action.kind == "archive")
    with Ledger(config.load(home).store) as ledger:
        reviewer(ledger, home).approve(
            ReviewQueue(ledger), review.id, version=review.version, payload_sha256s={index: review.payload_sha256(index)})
    return index


def run_executor(home: Path, review_id: int) -> list[dict]:
    with Ledger(config.load(home).store) as ledger:
        return execute(ledger, home, review_id)


def events(home: Path, *kinds: str) -> list[dict]:
    marks = ", ".join("?" * len(kinds))
    with Ledger(config.load(home).store) as ledger:
        return [{**json.loads(row["detail"]), "kind": row["kind"]} for row in ledger.conn.execute(
            f"SELECT kind, detail FROM events WHERE kind IN ({marks}) ORDER BY id", kinds)]


def test_an_approved_archive_is_verified_restorable_and_carries_its_provenance(deprecated: Path,
                                                                               tmp_path: Path) -> None:
    review = the_review(deprecated)
    (archive_action,) = [action for action in review.draft.actions if action.kind == "archive"]
    assert archive_action.parameters["revision"].startswith("files-")  # a local folder: pinned by its files' sha256
    approve_archive(deprecated, review)

    (done,) = run_executor(deprecated, review.id)

    assert done["object_id"] == "team/acme/med-ft" and done["version"] == "v1", done
    assert [e["kind"] for e in events(deprecated, "archive_requested", "archive_started", "archive_verified",
                                      "action_executed")] == ["archive_requested", "archive_started",
                                                              "archive_verified", "action_executed"]
    store = open_store(config.load(deprecated))
    (summary,) = store.objects()
    assert ocfl.Object(path=str(summary.path)).validate()[0]
    restored = tmp_path / "restored"
    store.restore("team/acme/med-ft", restored)
    source = deprecated / "registry" / "acme" / "med-ft"
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (restored / "model" / name).read_bytes() == (source / name).read_bytes()
    approval = json.loads((restored / "provenance" / "approval.json").read_text())
    assert approval["reviewer"] == "ada" and approval["payload_sha256"] == review.payload_sha256(1)
    files = json.loads((restored / "provenance" / "files.json").read_text())
    assert {f["path"]: f["sha256"] for f in files}["model.safetensors"] == __import__("hashlib").sha256(
        WEIGHTS).hexdigest()
    assert json.loads((restored / "provenance" / "evidence.json").read_text())["model"] == "acme/med-ft"
    with Ledger(config.load(deprecated).store) as ledger:
        assert ReviewQueue(ledger).get(review.id).status == "executed"
    assert run_executor(deprecated, review.id) == []  # once: a second run finds nothing to do


def test_without_an_approval_nothing_is_downloaded(deprecated: Path) -> None:
    review = the_review(deprecated)
    with pytest.raises(ApprovalRefused, match="latest signed decision is none"):
        run_executor(deprecated, review.id)
    assert open_store(config.load(deprecated)).objects() == []
    assert not list((deprecated / "archive").glob(".staging/*/*"))


def test_an_approval_for_another_revision_downloads_nothing(deprecated: Path) -> None:
    review = the_review(deprecated)
    approve_archive(deprecated, review)
    with Ledger(config.load(deprecated).store) as ledger:  # the stored action now names another revision
        draft = json.loads(ledger.conn.execute("SELECT draft FROM reviews WHERE id = ?", (review.id,)).fetchone()[0])
        draft["actions"][1]["parameters"]["revision"] = "files-" + "0" * 32
        with ledger.transaction() as conn:
            conn.execute("UPDATE reviews SET draft = ? WHERE id = ?", (json.dumps(draft), review.id))
    with pytest.raises(ApprovalRefused, match="another payload"):
        run_executor(deprecated, review.id)
    assert open_store(config.load(deprecated)).objects() == []
    assert events(deprecated, "archive_requested", "archive_started") == []


def test_bytes_that_differ_from_the_recorded_sha256_are_not_archived(deprecated: Path) -> None:
    review = the_review(deprecated)
    approve_archive(deprecated, review)
    (deprecated / "registry" / "acme" / "med-ft" / "model.safetensors").write_bytes(b"tampered" + WEIGHTS[8:])

    (done,) = run_executor(deprecated, review.id)

    assert "DigestMismatch" in done["error"] and "model/model.safetensors" in done["error"]
    assert open_store(config.load(deprecated)).objects() == []
    (failed,) = events(deprecated, "archive_failed")
    assert failed["resumable"] is False and "model.safetensors" in failed["reason"]
    assert [e["kind"] for e in events(deprecated, "archive_verified", "action_failed")] == ["action_failed"]


# -- the Hub: a pinned revision over HTTP, resumed, checked by LFS sha256 or git blob id ----------------------


def test_each_reachable_model_of_a_letter_keeps_its_own_archive_and_only_the_approved_one_runs(
        proposal_home: Path) -> None:
    """One letter to acme covers both deprecated models (issue 14); a reviewer approves archiving one of them."""
    root = proposal_home / "registry"
    for name, weights in (("acme/med-ft", WEIGHTS), ("acme/law-ft", WEIGHTS[::-1])):
        write_model(root, name, weights=weights)
    config.add_registry(proposal_home, config.RegistryConfig("team", "local", {"path": str(root)}))
    scan_registries(proposal_home, ["team"], log=None)
    for name, weights in (("acme/med-ft", WEIGHTS), ("acme/law-ft", WEIGHTS[::-1])):
        write_model(root, name, shutdown="2027-03-01", weights=weights)
    scan_registries(proposal_home, ["team"], log=None)
    run_propose(proposal_home)
    review = the_review(proposal_home)
    archives = {action.parameters["model"]: index for index, action in enumerate(review.draft.actions)
                if action.kind == "archive"}
    assert sorted(archives) == ["acme/law-ft", "acme/med-ft"]
    with Ledger(config.load(proposal_home).store) as ledger:
        index = archives["acme/law-ft"]
        reviewer(ledger, proposal_home).approve(ReviewQueue(ledger), review.id, version=review.version,
                                                payload_sha256s={index: review.payload_sha256(index)})
    (done,) = run_executor(proposal_home, review.id)
    assert done["object_id"] == "team/acme/law-ft"
    assert [summary.object_id for summary in open_store(config.load(proposal_home)).objects()] == ["team/acme/law-ft"]


@pytest.fixture
def hub():
    with FakeHub() as served:
        yield served


def test_a_hub_download_resumes_after_a_broken_transfer(hub: FakeHub, tmp_path: Path) -> None:
    repo = hub.add("acme/med-ft", files={"config.json": b'{"a": 1}', "model.safetensors": WEIGHTS})
    hub.server.faults.append(Fault.truncated(path_prefix="/cdn-lfs/"))
    source = HubSource(hub.url, "acme/med-ft", repo.sha, token=None)
    partial = tmp_path / "model.safetensors.partial"

    source.fetch(SourceFile("model.safetensors", len(WEIGHTS), None), partial)

    assert partial.read_bytes() == WEIGHTS
    ranges = [r.headers.get("range") for r in hub.server.requests if r.path.startswith("/cdn-lfs/")]
    assert ranges[0] is None and ranges[-1].startswith("bytes=") and ranges[-1] != "bytes=0-", ranges


def test_a_hub_file_without_an_lfs_sha256_is_checked_by_its_git_blob_id(hub: FakeHub, tmp_path: Path) -> None:
    repo = hub.add("acme/med-ft", files={"config.json": b'{"a": 1}', "model.safetensors": WEIGHTS})
    from weightkeeper.domain import FileEntry, ModelRecord

    record = ModelRecord("acme/med-ft", repo.key, repo.sha, files=(
        FileEntry("config.json", 8, None), FileEntry("model.safetensors", len(WEIGHTS), "f" * 64)))
    files = {file.path: file for file in HubSource(hub.url, "acme/med-ft", repo.sha, token=None).files(record)}
    partial = tmp_path / "config.json"
    HubSource(hub.url, "acme/med-ft", repo.sha, token=None).fetch(files["config.json"], partial)
    assert files["config.json"].git_sha1 == git_blob_sha1(partial)
    assert files["model.safetensors"].git_sha1 is None  # an LFS file is checked by its sha256


def test_a_private_hub_model_is_archived_with_the_registrys_token(hub: FakeHub, proposal_home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hub.tokens["hf_secret"] = {"acme"}
    monkeypatch.setenv("ACME_HF_TOKEN", "hf_secret")
    hub.add("acme/med-ft", files={"config.json": b'{"a": 1}', "model.safetensors": WEIGHTS})
    hub.add("acme/med-ft-v2", card_data={"base_model": "acme/med-ft"}, tags=["base_model:finetune:acme/med-ft"])
    config.add_registry(proposal_home, config.RegistryConfig(
        "hub", "hf", {"endpoint": hub.url, "author": "acme", "files": "acme/*"}, token_env="ACME_HF_TOKEN"))
    scan_registries(proposal_home, ["hub"], log=None)
    hub.update("acme/med-ft", private=True)
    scan_registries(proposal_home, ["hub"], log=None)
    run_propose(proposal_home)
    review = the_review(proposal_home)
    assert review.event == "visibility_changed"
    approve_archive(proposal_home, review)

    (done,) = run_executor(proposal_home, review.id)

    assert done.get("object_id") == "hub/acme/med-ft", done
    store = open_store(config.load(proposal_home))
    detail = store.describe("hub/acme/med-ft")
    assert {f.logical_path for f in detail.versions[0].files} >= {"model/config.json", "model/model.safetensors"}
    assert "hf_secret" not in (Path(store.objects()[0].path) / "inventory.json").read_text()
    for path in (proposal_home / "archive").rglob("*.json"):
        assert "hf_secret" not in path.read_text(errors="replace")



def test_verify_names_a_corrupted_file_records_it_and_repairs_it_from_the_mirror(
        deprecated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from weightkeeper.cli.main import main

    path = config.config_path(deprecated)
    path.write_text(path.read_text().replace('# mirror = "/mnt/second-disk/weightkeeper-archive"',
                                             f'mirror = "{tmp_path / "mirror"}"'))
    review = the_review(deprecated)
    approve_archive(deprecated, review)
    run_executor(deprecated, review.id)
    store = open_store(config.load(deprecated))
    (stored,) = [f for f in store.describe("team/acme/med-ft").versions[0].files
                 if f.logical_path == "model/model.safetensors"]
    content = store.objects()[0].path / stored.content_path
    flipped = bytearray(content.read_bytes())
    flipped[1000] ^= 0xFF
    content.write_bytes(bytes(flipped))
    home = ["--home", str(deprecated)]

    assert main(["archive", "verify", "team/acme/med-ft", *home]) == 1
    assert "model/model.safetensors" in capsys.readouterr().out
    assert main(["archive", "verify", "--all", "--repair", *home]) == 0
    assert main(["archive", "verify", "team/acme/med-ft", *home]) == 0
    assert content.read_bytes() == WEIGHTS
    kinds = [e["kind"] for e in events(deprecated, "fixity_ok", "fixity_failed", "repaired")]
    assert kinds == ["fixity_failed", "repaired", "fixity_ok", "fixity_ok"], kinds
    capsys.readouterr()
    assert main(["archive", "list", "--json", *home]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["versions"], listed["files"]) == ("team/acme/med-ft", 1, 9)


def test_verify_records_its_fixity_on_the_archived_model_after_a_rename_and_a_new_model_under_its_old_name(
        on_each_store: str | Path, deprecated: Path) -> None:
    from weightkeeper.cli.main import main

    review = the_review(deprecated)
    approve_archive(deprecated, review)
    run_executor(deprecated, review.id)
    root = deprecated / "registry"
    (root / "acme/med-ft").rename(root / "acme/med-ft-2026")
    scan_registries(deprecated, ["team"], log=None)
    write_model(root, "acme/med-ft", weights=WEIGHTS[::-1])  # another model now holds the archived one's old name
    scan_registries(deprecated, ["team"], log=None)

    assert main(["archive", "verify", "team/acme/med-ft", "--home", str(deprecated)]) == 0

    with Ledger(config.load(deprecated).store) as ledger:
        (model,) = ledger.conn.execute(
            "SELECT m.name FROM events e JOIN models m ON m.id = e.model_id WHERE e.kind = 'fixity_ok'").fetchall()
    assert model["name"] == "acme/med-ft-2026"


# -- MLflow: a model version's artifacts, through the tracking server's artifact proxy -------------------------


@pytest.fixture
def tracking(mlflow_server: MLflowServer) -> MLflowServer:
    """The process's real `mlflow server` (tests/conftest.py), which serves its artifacts, its registry empty."""
    return mlflow_server


def mlflow_model(folder: Path) -> dict[str, bytes]:
    """A small model folder as MLflow logs one; returns its files by path."""
    files = {"MLmodel": b"flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n",
             "requirements.txt": b"mlflow\n", "data/model.bin": WEIGHTS[: 1 << 20], "data/empty.txt": b""}
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return files


def retired(home: Path, tracking: MLflowServer, name: str, version: str) -> Review:
    """The proposal drafted when an MLflow version is moved to the Archived stage (retired, still served)."""
    tracking.transition_stage(name, version, "Archived")
    scan_registries(home, ["tracking"], log=None)
    run_propose(home)
    with Ledger(config.load(home).store) as ledger:
        (review,) = [review for review in ReviewQueue(ledger).list() if review.model == f"{name}/{version}"]
    assert review.event == "stage_changed"
    return review


def scanned_mlflow(home: Path, tracking: MLflowServer) -> None:
    config.add_registry(home, config.RegistryConfig("tracking", "mlflow", {"url": tracking.url}))
    scan_registries(home, ["tracking"], log=None)


@pytest.mark.slow
def test_an_mlflow_version_is_archived_byte_for_byte_with_where_it_came_from(
        tracking: MLflowServer, proposal_home: Path, tmp_path: Path) -> None:
    files = mlflow_model(tmp_path / "model")
    version = tracking.log_model_version("acme-med", tmp_path / "model")  # an MLflow 3 logged model
    scanned_mlflow(proposal_home, tracking)
    review = retired(proposal_home, tracking, "acme-med", version)
    (action,) = [action for action in review.draft.actions if action.kind == "archive"]
    assert action.parameters["revision"] == version and action.target == f"acme-med/{version}@{version}"
    approve_archive(proposal_home, review)

    (done,) = run_executor(proposal_home, review.id)

    assert done.get("object_id") == f"tracking/acme-med/{version}" and done["metadata_only"] is False, done
    store = open_store(config.load(proposal_home))
    (summary,) = store.objects()
    assert ocfl.Object(path=str(summary.path)).validate()[0]
    restored = tmp_path / "restored"
    store.restore(f"tracking/acme-med/{version}", restored)
    assert {path: (restored / "model" / path).read_bytes() for path in files} == files
    tree = json.loads((restored / "provenance" / "files.json").read_text())
    assert {entry["path"]: (entry["size"], entry["sha256"], entry["upstream_digest"]) for entry in tree} == {
        path: (None if not data else len(data), hashlib.sha256(data).hexdigest(), None)  # MLflow lists no 0 size
        for path, data in files.items()}
    where = json.loads((restored / "provenance" / "mlflow" / "artifacts.json").read_text())
    registry = json.loads((restored / "provenance" / "registry.json").read_text())
    assert registry["metadata_only"] is False and registry["record"]["revision"] == version
    logged_model = registry["record"]["extra"]["source"].removeprefix("models:/")  # MLflow resolves the source
    assert where["download_uri"] == where["artifact_uri"] == f"mlflow-artifacts:/0/models/{logged_model}/artifacts"
    assert [e["kind"] for e in events(proposal_home, "archive_started", "archive_verified")] == [
        "archive_started", "archive_verified"]


def test_an_mlflow_artifact_that_changed_after_it_was_listed_is_not_archived(
        tracking: MLflowServer, proposal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow_model(tmp_path / "model")
    (tmp_path / "model" / "drifting.bin").write_bytes(b"v1" * 1000)
    version = tracking.log_model_version("acme-drift", tmp_path / "model", logged_model=False)  # runs:/ source
    scanned_mlflow(proposal_home, tracking)
    review = retired(proposal_home, tracking, "acme-drift", version)
    approve_archive(proposal_home, review)
    (stored,) = (tracking.root / "artifacts").rglob("drifting.bin")
    listed = MlflowSource.files

    def listed_then_changed(source: MlflowSource, record: object) -> list[SourceFile]:
        found = listed(source, record)
        stored.write_bytes(b"v2" * 1500)  # the server's artifact store changes between listing and download
        return found

    monkeypatch.setattr(MlflowSource, "files", listed_then_changed)

    (done,) = run_executor(proposal_home, review.id)

    assert "DigestMismatch" in done["error"] and "model/drifting.bin" in done["error"], done
    assert "3000 bytes, expected 2000 bytes" in done["error"]
    assert open_store(config.load(proposal_home)).objects() == []
    (failed,) = events(proposal_home, "archive_failed")
    assert failed["resumable"] is False and "drifting.bin" in failed["reason"]
    assert events(proposal_home, "archive_verified") == []


# -- OpenAI: a fine-tune's metadata, since its weights cannot be downloaded ------------------------------------


def test_an_openai_fine_tune_is_archived_metadata_only_without_its_key(
        proposal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOpenAI()
    fake.add_base("gpt-4o-mini-2024-07-18")
    job = fake.fine_tune("gpt-4o-mini-2024-07-18", suffix="med", checkpoints=2)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with FakeServer(fake.route) as server:
        config.add_registry(proposal_home, config.RegistryConfig(
            "openai-acme", "openai", {"base_url": f"{server.url}/v1"}, token_env="OPENAI_API_KEY"))
        scan_registries(proposal_home, ["openai-acme"], log=None)
        fake.models["gpt-4o-mini-2024-07-18"]["shutdown_date"] = "2027-01-15"
        scan_registries(proposal_home, ["openai-acme"], log=None)
        run_propose(proposal_home, model=job["fine_tuned_model"])
        review = the_review(proposal_home)
        assert review.event == "deprecation_announced"
        (action,) = [action for action in review.draft.actions if action.kind == "archive"]
        assert action.parameters["revision"] == job["id"]  # a fine-tune is pinned by the job that produced it
        approve_archive(proposal_home, review)

        (done,) = run_executor(proposal_home, review.id)

    object_id = f"openai-acme/{job['fine_tuned_model']}"
    assert done.get("object_id") == object_id and done["metadata_only"] is True, done
    store = open_store(config.load(proposal_home))
    (summary,) = store.objects()
    assert ocfl.Object(path=str(summary.path)).validate()[0]
    (stored,) = store.describe(object_id).versions
    assert "metadata only" in stored.message
    restored = tmp_path / "restored"
    store.restore(object_id, restored)
    assert not (restored / "model").exists()
    provenance = restored / "provenance"
    assert json.loads((provenance / "registry.json").read_text())["metadata_only"] is True
    assert json.loads((provenance / "files.json").read_text()) == []
    archived_job = json.loads((provenance / "openai" / "job.json").read_text())
    assert {key: archived_job[key] for key in ("id", "model", "hyperparameters", "trained_tokens", "status")} == {
        key: job[key] for key in ("id", "model", "hyperparameters", "trained_tokens", "status")}
    checkpoints = json.loads((provenance / "openai" / "checkpoints.json").read_text())
    assert [point["step_number"] for point in checkpoints] == [200, 100]
    result_id, training_id = job["result_files"][0], job["training_file"]
    result = json.loads((provenance / "openai" / "files" / f"{result_id}.json").read_text())
    assert result["role"] == "result" and result["file"]["purpose"] == "fine-tune-results"
    assert (provenance / "openai" / "files" / result["content"]).read_bytes() == fake.contents[result_id]
    training = json.loads((provenance / "openai" / "files" / f"{training_id}.json").read_text())
    assert training["file"]["purpose"] == "fine-tune" and "content" not in training
    assert training["refused"] == "HTTP 400: Not allowed to download files of purpose: fine-tune"
    for path in [*(proposal_home / "archive").rglob("*"), config.load(proposal_home).ledger_path]:
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_two_archives_of_one_revision_never_share_its_staging(deprecated: Path) -> None:
    review = the_review(deprecated)
    action = review.draft.actions[approve_archive(deprecated, review)]
    store = open_store(config.load(deprecated))
    with store.staging(object_id("team", "acme/med-ft"), action.parameters["revision"]).exclusive():
        (held,) = run_executor(deprecated, review.id)  # another executor's archive of this revision is staging
        assert held["resumable"] and "another executor is archiving team/acme/med-ft" in held["error"]
        assert store.objects() == []
    (done,) = run_executor(deprecated, review.id)
    assert (done["object_id"], done["version"]) == ("team/acme/med-ft", "v1")


def test_only_the_approvals_in_force_run_and_complete_a_review(deprecated: Path) -> None:
    """Both actions approved, then deferred, then only the archive approved again: the publish does not run,
    and the archive alone executes the review."""
    review = the_review(deprecated)
    with Ledger(config.load(deprecated).store) as ledger:
        reviews, ada = ReviewQueue(ledger), reviewer(ledger, deprecated)
        ada.approve(reviews, review.id, version=1, payload_sha256s={0: review.payload_sha256(0)})
        ada.defer(reviews, review.id, version=1)
    approve_archive(deprecated, review)
    (done,) = run_executor(deprecated, review.id)
    assert done["channel"] == "archive" and not (deprecated / "outbox").exists()
    assert the_review(deprecated).status == "executed"
