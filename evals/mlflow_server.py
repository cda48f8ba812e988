"""A real `mlflow server` for the tests and the detection suite, and helpers that change its model registry
through its REST API.

The server runs as a subprocess of this interpreter's `mlflow` (SQLite backend store and a local
artifact root under a temporary folder, one worker, on a free port of 127.0.0.1) in a process group
of its own, so stopping it stops its uvicorn worker too. Starting one takes 10-30 s: start it once.

With `serve_artifacts=True` it stores artifacts under `root/artifacts` as `--artifacts-destination`
and hands out `mlflow-artifacts:/` URIs, served by its `/api/2.0/mlflow-artifacts/artifacts` API, as a
tracking server that serves its artifacts to clients does (`mlflow server`'s default artifact root).
"""

from __future__ import annotations

import email.utils
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

API = "/api/2.0/mlflow/"
START_TIMEOUT = 120.0


class MLflowServer:
    def __init__(self, root: Path, *, serve_artifacts: bool = False) -> None:
        self.root, self.serve_artifacts = root, serve_artifacts
        self.port = _free_port()
        self.log_path = root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"{self.url}{API}", timeout=30.0)
        self._run: tuple[str, str] | None = None  # (run_id, artifact_uri) of the run that holds the sources
        self._sources = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the process --------------------------------------------------------------------------

    def start(self) -> float:
        """Start the server and wait until its registry answers; returns the seconds it took."""
        (self.root / "artifacts").mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            *(("--artifacts-destination", str(self.root / "artifacts")) if self.serve_artifacts
              else ("--default-artifact-root", str(self.root / "artifacts"))),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        # The job runner (huey consumers) is for GenAI jobs; on two cores it only slows the start.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        while time.monotonic() - started < START_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{self._log_tail()}")
            try:
                if self.client.get("registered-models/search").status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {START_TIMEOUT:.0f} s:\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server and its worker (their process group); the database stays for a restart."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server at once, as a crash would (a graceful stop takes seconds)."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)  # the group: the CLI and the uvicorn worker it started
        except ProcessLookupError:
            return  # the whole group is gone already
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        # The worker may outlive the parent by a moment: wait until the port is free for a restart.
        deadline = time.monotonic() + 15
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    # -- the registry, through the REST API -----------------------------------------------------

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.request(method, endpoint, json=body)
        if response.status_code != 200:
            raise AssertionError(f"{method} {endpoint} {body}: HTTP {response.status_code} {response.text}")
        return response.json()

    def wait_until_older(self, names: list[str], seconds: float) -> None:
        """Until the server's clock, as its Date header tells it (whole seconds, refreshed by the server's
        own tick, which lags under load), is `seconds` past the last update of every model in `names`."""
        updated = max(self.call("GET", f"registered-models/get?name={name}")["registered_model"]
                      ["last_updated_timestamp"] for name in names)
        while True:
            date = email.utils.parsedate_to_datetime(self.client.get("registered-models/search").headers["date"])
            if date.timestamp() * 1000 > updated + seconds * 1000:
                return
            time.sleep(0.1)

    def create_model(self, name: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"name": name, "tags": _tag_list(tags)}
        return self.call("POST", "registered-models/create", body)["registered_model"]

    def create_version(self, model: str, tags: dict[str, str] | None = None) -> str:
        """A new version of `model` whose source is a folder of this server's run; returns its number."""
        run_id, artifact_uri = self.source_run()
        self._sources += 1
        body = {"name": model, "source": f"{artifact_uri}/model-{self._sources}", "run_id": run_id,
                "tags": _tag_list(tags)}
        return self.call("POST", "model-versions/create", body)["model_version"]["version"]

    def transition_stage(self, model: str, version: str, stage: str) -> None:
        self.call("POST", "model-versions/transition-stage",
                  {"name": model, "version": version, "stage": stage, "archive_existing_versions": False})

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.call("POST", "registered-models/alias", {"name": model, "alias": alias, "version": version})

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        self.call("POST", "model-versions/set-tag", {"name": model, "version": version, "key": key, "value": value})

    def rename_model(self, name: str, new_name: str) -> None:
        self.call("POST", "registered-models/rename", {"name": name, "new_name": new_name})

    def delete_version(self, model: str, version: str) -> None:
        self.call("DELETE", "model-versions/delete", {"name": model, "version": version})

    def delete_model(self, name: str) -> None:
        self.call("DELETE", "registered-models/delete", {"name": name})

    def delete_all_models(self) -> None:
        while models := self.call("GET", "registered-models/search").get("registered_models", []):
            for model in models:
                self.delete_model(model["name"])

    def log_model_version(self, model: str, folder: Path, *, logged_model: bool = True) -> str:
        """A new version of `model` (created if need be) holding the files of `folder`, uploaded through the
        server's artifact proxy by MLflow's own client (so the server needs `serve_artifacts`): as an MLflow 3
        logged model (source `models:/m-...`), else as a run's `model` folder (source `runs:/<run>/model`).
        Returns the version number."""
        from mlflow import MlflowClient  # heavy: only the tests that log artifacts import it

        client = MlflowClient(self.url)
        if self.client.get("registered-models/get", params={"name": model}).status_code != 200:
            client.create_registered_model(model)
        if logged_model:
            logged = client.create_logged_model(experiment_id="0")
            client.log_model_artifacts(logged.model_id, str(folder))
            return client.create_model_version(model, f"models:/{logged.model_id}", model_id=logged.model_id).version
        run = client.create_run("0")
        client.log_artifacts(run.info.run_id, str(folder), "model")
        return client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version

    def source_run(self) -> tuple[str, str]:
        """(run_id, artifact_uri) of the run whose artifact folder holds every version's source: MLflow
        accepts a local source path only inside the artifact folder of the run named by run_id."""
        if self._run is None:
            info = self.call("POST", "runs/create", {"experiment_id": "0"})["run"]["info"]
            self._run = (info["run_id"], info["artifact_uri"])
        return self._run


def _tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in (tags or {}).items()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
