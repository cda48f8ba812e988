"""The registries a detection scenario changes, each read by weightkeeper's real adapter.

A world applies a step's operations (add, delete, rename, update, commit) to its registry, arms the step's
faults, and builds the adapter a scan reads it with. Operations are plain dicts from the scenario files;
`evals.detection` has checked their shape. Beside the detection scenarios' card fields (CARD_FIELDS), an `add`
or `update` may carry a whole `card` (front matter: license, datasets, co2_eq_emissions, base_model_relation…),
an `add` may be an `adapter` (a LoRA's files), and on the Hub `downloads` and `likes` (the letters suite's cases).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from weightkeeper.errors import WeightkeeperError
from weightkeeper.registry import RegistryAdapter

# The Hub's three kinds of caller: none, a token of another namespace, a token of the watched org.
MEMBER_TOKEN, OUTSIDER_TOKEN = "hf_member_eval_token", "hf_outsider_eval_token"
CALLERS = {"anonymous": None, "outsider": OUTSIDER_TOKEN, "member": MEMBER_TOKEN}
# Short waits: a timeout fault costs the scan a fraction of a second, not the client's default.
TIMEOUT_SECONDS = 0.3
CARD_FIELDS = ("visibility", "shutdown_date", "new_version", "base_model")
COUNTERS = ("downloads", "likes")  # a Hub repo's, set by `add` or `update`


class ScenarioError(WeightkeeperError):
    """A scenario asks for something its registry cannot do; the message names the step and the operation."""


def yaml_files(folder: Path, what: str) -> list[tuple[Path, Any]]:
    """Each `*.yaml` file of the folder, read, in name order; a file that is no YAML, or a folder without any, is
    a ScenarioError naming it (`what`: the files' kind, for the message)."""
    files = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            files.append((path, yaml.safe_load(path.read_text(encoding="utf-8"))))
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{path} is not valid YAML: {exc}") from exc
    if not files:
        raise ScenarioError(f"no {what} files (*.yaml) in {folder}")
    return files


class World(Protocol):
    kind: str
    settings: dict[str, str]  # the registry's table in a config, as `RegistryConfig.settings`
    names: dict[str, str]  # a model's name in the ledger -> in the scenario, where the registry makes names up

    def apply(self, operation: dict[str, Any]) -> None: ...

    def arm(self, faults: list[dict[str, Any]]) -> None: ...

    def disarm(self) -> int: ...

    def adapter(self, cache: Any, digests: Any) -> RegistryAdapter: ...

    def close(self) -> None: ...


class LocalWorld:
    """A folder of model folders. Faults: `unmounted` (the folder is away during the scan), `fifo` (a named
    pipe in place of one model's config.json)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root, self.away = root, root.with_name(root.name + "-unmounted")
        self.settings, self.names = {"path": str(root)}, {}
        self.root.mkdir(parents=True)
        self.pending: list[dict[str, Any]] = []

    def apply(self, operation: dict[str, Any]) -> None:
        op, name = operation["op"], operation["name"]
        folder = self.root / name
        if op == "add":
            folder.mkdir(parents=True)
            for path, data in model_files(name, operation).items():
                (folder / path).write_bytes(data)
            self._card(folder, operation)
        elif op == "delete":
            shutil.rmtree(folder)
        elif op == "rename":
            target = self.root / operation["to"]
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)
        elif op == "update":
            self._card(folder, operation)
        elif op == "commit":
            (folder / "model.safetensors").write_bytes(f"new weights of {name} ({operation.get('weights', 2)})"
                                                       .encode())
        else:
            raise ScenarioError(f"a local registry cannot {op!r}")

    def _card(self, folder: Path, operation: dict[str, Any]) -> None:
        """The card's front matter: the operation's fields merged over what the card already says."""
        card = folder / "README.md"
        meta = yaml.safe_load(card.read_text().split("---")[1]) if card.exists() else {"license": "apache-2.0"}
        meta.update({key: operation[key] for key in CARD_FIELDS if key in operation} | operation.get("card", {}))
        card.write_text(f"---\n{yaml.safe_dump(meta)}---\n# {folder.name}\n")

    def arm(self, faults: list[dict[str, Any]]) -> None:
        for fault in faults:
            if fault["fault"] == "unmounted":
                self.root.rename(self.away)
            elif fault["fault"] == "fifo":
                config = self.root / fault["name"] / "config.json"
                config.unlink()
                os.mkfifo(config)
            else:
                raise ScenarioError(f"a local registry has no fault {fault['fault']!r}")
            self.pending.append(fault)

    def disarm(self) -> int:
        """After the scan: the folder mounted again, each FIFO a config file again. Every fault was met: 0."""
        for fault in self.pending:
            if fault["fault"] == "unmounted":
                self.away.rename(self.root)
            else:
                config = self.root / fault["name"] / "config.json"
                config.unlink()
                config.write_text(json.dumps({"model_type": "llama"}))
        self.pending.clear()
        return 0

    def adapter(self, cache: Any, digests: Any) -> RegistryAdapter:
        from tools.registries.local import LocalFolderRegistry

        return LocalFolderRegistry(self.root, digests, page_size=2)

    def close(self) -> None:
        pass


class ServedWorld:
    """A fake registry server (`evals.fakes`) with the HTTP faults of `evals.fakes.http`: an HTTP `status` (429
    with `retry_after`, 5xx), `timeout`, `truncated`, `reset`, each `times` times (default 1), only on paths
    starting with `path` (default every path)."""

    server: Any  # an `evals.fakes.http.FakeServer`, serving
    names: dict[str, str] = {}

    def arm(self, faults: list[dict[str, Any]]) -> None:
        from evals.fakes.http import Fault

        for fault in faults:
            kind, path = fault["fault"], fault.get("path", "")
            if kind == "status":
                headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
                made = [Fault.http(fault["status"], headers, path_prefix=path)] * fault.get("times", 1)
            elif kind in ("timeout", "truncated", "reset"):
                made = [getattr(Fault, kind)(path_prefix=path)] * fault.get("times", 1)
            else:
                raise ScenarioError(f"a {self.kind} registry has no fault {kind!r}")
            self.queue(fault, made)

    def queue(self, fault: dict[str, Any], made: list[Any]) -> None:
        self.server.faults.extend(made)

    def disarm(self) -> int:
        """How many of the step's faults the scan never met; they are not carried into the next step."""
        unmet = len(self.server.faults)
        self.server.faults.clear()
        return unmet

    def serve(self, server: Any) -> None:
        self.server = server
        self.server.hang_seconds = 2 * TIMEOUT_SECONDS
        self.server.__enter__()

    def close(self) -> None:
        self.server.__exit__(None, None, None)


class HubWorld(ServedWorld):
    """The fake Hub, read as one of its three callers. A fault may wait for `after_pages` listing pages."""

    kind = "hf"

    def __init__(self, caller: str, files: str | None = None) -> None:
        from evals.fakes.hub import FakeHub

        if caller not in CALLERS:
            raise ScenarioError(f"unknown Hub caller {caller!r}; use one of {', '.join(CALLERS)}")
        self.token, self.files = CALLERS[caller], files  # files: the glob of models whose file lists a scan reads
        self.fake = FakeHub(page_size=2, tokens={MEMBER_TOKEN: {"acme"}, OUTSIDER_TOKEN: {"other-lab"}})
        self.serve(self.fake.server)
        self.settings = {"endpoint": self.server.url, "author": "acme"}

    def apply(self, operation: dict[str, Any]) -> None:
        op, name, hub = operation["op"], operation["name"], self.fake
        settings = {key: operation[key] for key in ("private", "gated", "disabled", *COUNTERS) if key in operation}
        card = {key: operation[key] for key in ("new_version", "base_model") if key in operation} | operation.get(
            "card", {})
        if op == "add":
            hub.add(name, card_data=card or None, files=model_files(name, operation), **settings)
        elif op == "delete":
            hub.delete(name)
        elif op == "rename":
            hub.rename(name, operation["to"])
        elif op == "update":
            if settings:
                hub.update(name, **settings)
            if card:
                hub.commit(name, card_data={**(hub.repos[name].card_data or {}), **card})
        elif op == "commit":
            hub.commit(name, files={"config.json": b"{}", "model.safetensors": f"new {name}".encode()})
        else:
            raise ScenarioError(f"the Hub cannot {op!r}")

    def queue(self, fault: dict[str, Any], made: list[Any]) -> None:
        if fault.get("after_pages"):
            self.fake.after_listing_page(fault["after_pages"], *made)
        else:
            super().queue(fault, made)

    def disarm(self) -> int:
        unmet = sum(map(len, self.fake._faults_after.values()))
        self.fake._faults_after.clear()
        return unmet + super().disarm()

    def adapter(self, cache: Any, digests: Any) -> RegistryAdapter:
        from tools.registries.huggingface import HubRegistry

        return HubRegistry(self.server.url, author="acme", search=None, filter=None, files=self.files, token=self.token,
                           cache=cache, policy=_retries(), timeout=TIMEOUT_SECONDS)


class OllamaWorld(ServedWorld):
    """The fake Ollama server: `add` pulls a tag, `commit` pulls a newer build, `update` re-creates it with
    other details (`quantization_level`), `rename` is `ollama cp` then `ollama rm`."""

    kind = "ollama"

    def __init__(self) -> None:
        from evals.fakes.ollama import FakeOllama

        self.fake = FakeOllama()
        self.serve(self.fake.server)
        self.settings = {"url": self.server.url}

    def apply(self, operation: dict[str, Any]) -> None:
        op, name, ollama = operation["op"], operation["name"], self.fake
        if op == "add":
            ollama.pull(name, parent_model=operation.get("base_model", ""))
        elif op == "delete":
            ollama.remove(name)
        elif op == "rename":
            ollama.rename(name, operation["to"])
        elif op == "commit":
            ollama.retag(name)
        elif op == "update":
            ollama.change(name, **{key: operation[key] for key in ("quantization_level",) if key in operation})
        else:
            raise ScenarioError(f"Ollama cannot {op!r}")

    def adapter(self, cache: Any, digests: Any) -> RegistryAdapter:
        from tools.registries.ollama import OllamaRegistry

        return OllamaRegistry(self.server.url, cache=cache, timeout=TIMEOUT_SECONDS, policy=_retries())


class OpenAIWorld(ServedWorld):
    """The fake OpenAI API. `add` runs a fine-tuning job on `base` (default BASE) with the scenario's name as
    its suffix: the API names the model (`ft:BASE:acme:NAME:Ab000001`), and the scenario's truth uses NAME.
    `delete` deletes the fine-tuned model (its job stays); `update` of a base model sets its `shutdown_date`."""

    kind = "openai"
    base = "gpt-4o-mini-2024-07-18"

    def __init__(self) -> None:
        from evals.fakes.http import FakeServer
        from evals.fakes.openai import FakeOpenAI

        self.fake, self.names, self.ids = FakeOpenAI(), {}, {}
        self.serve(FakeServer(self.fake.route))
        self.settings = {"base_url": f"{self.server.url}/v1"}

    def apply(self, operation: dict[str, Any]) -> None:
        op, name, api = operation["op"], operation["name"], self.fake
        if op == "add":
            base = operation.get("base", self.base)
            if base not in api.models:
                api.add_base(base)
            model = api.fine_tune(base, suffix=name)["fine_tuned_model"]
            self.names[model], self.ids[name] = name, model
        elif op == "delete":
            del api.models[self.ids[name]]
        elif op == "update" and name in api.models:
            api.models[name]["shutdown_date"] = operation["shutdown_date"]
        else:
            raise ScenarioError(f"the OpenAI API cannot {op!r} {name!r} (update is of a base model's shutdown_date)")

    def adapter(self, cache: Any, digests: Any) -> RegistryAdapter:
        from evals.fakes.openai import API_KEY
        from tools.registries.openai_finetunes import OpenAIRegistry

        return OpenAIRegistry(self.settings["base_url"], api_key=API_KEY, deprecations=None, policy=_retries(),
                              timeout=TIMEOUT_SECONDS)


class MLflowWorld:
    """A real `mlflow server` (`evals.mlflow_server`), emptied for each scenario. One server serves every MLflow
    scenario of a process (`shared_mlflow_server`): it takes 10-30 s to start. A model version is named MODEL/N:
    `add` creates version N (and its registered model), and N must be the number MLflow gives it; `delete` removes
    a version, or with a bare MODEL the registered model; `rename` renames a registered model (a bare MODEL);
    `update` moves a version to a `stage`. It has no faults."""

    kind = "mlflow"

    def __init__(self) -> None:
        self.server = shared_mlflow_server()
        self.server.delete_all_models()
        self.settings, self.names = {"url": self.server.url}, {}

    def apply(self, operation: dict[str, Any]) -> None:
        op, name = operation["op"], operation["name"]
        model, _, number = name.rpartition("/")
        try:
            if op == "add" and model:
                if self.server.client.get("registered-models/get", params={"name": model}).status_code != 200:
                    self.server.create_model(model)
                given = self.server.create_version(model)
                if given != number:
                    raise ScenarioError(f"MLflow numbered the new version of {model} {given}, not {number}")
            elif op == "delete":
                self.server.delete_version(model, number) if model else self.server.delete_model(name)
            elif op == "rename" and not model:
                self.server.rename_model(name, operation["to"])
            elif op == "update" and model and "stage" in operation:
                self.server.transition_stage(model, number, operation["stage"])
            else:
                raise ScenarioError(f"MLflow cannot {op!r} {name!r} (versions are MODEL/N; a rename is of a MODEL; "
                                    "an update sets a version's stage)")
        except AssertionError as exc:  # the server refused the change
            raise ScenarioError(str(exc)) from exc

    def arm(self, faults: list[dict[str, Any]]) -> None:
        if faults:
            raise ScenarioError("the MLflow registry has no faults")

    def disarm(self) -> int:
        return 0

    def adapter(self, cache: Any, digests: Any) -> RegistryAdapter:
        from tools.registries.mlflow_models import MLflowRegistry

        return MLflowRegistry(self.server.url, token=None, page_size=2, policy=_retries(), timeout=10 * TIMEOUT_SECONDS)

    def close(self) -> None:
        pass  # the server serves the next MLflow scenario; it stops when the process exits


def shared_mlflow_server() -> Any:
    """This process's one real `mlflow server` (`evals.mlflow_server`), running: every MLflow scenario uses it, and
    so do the tests (their `mlflow_server` fixture). Started on first use, and again should a test have stopped it.
    It serves its artifacts, for the tests that archive a version's files."""
    server = _mlflow_server()
    if not server.is_running():
        server.start()
    return server


@cache
def _mlflow_server() -> Any:
    from evals.mlflow_server import MLflowServer

    if importlib.util.find_spec("mlflow") is None:
        raise ScenarioError("the MLflow scenarios run a real `mlflow server`, and the mlflow package is not "
                            "installed: install weightkeeper's dev extras (pip install -e '.[dev]')")
    root = Path(tempfile.mkdtemp(prefix="weightkeeper-eval-mlflow-"))
    server = MLflowServer(root, serve_artifacts=True)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    atexit.register(server.stop)  # runs first: atexit calls in reverse order
    server.start()
    return server


def _retries() -> Any:
    """Three attempts, short backoffs: a fault costs the suite milliseconds; three in a row fail the scan."""
    from tools.registries.http import RetryPolicy

    return RetryPolicy(attempts=3, first_backoff=0.01, max_wait=1.0)


def model_files(name: str, operation: dict[str, Any]) -> dict[str, bytes]:
    """A new model's files: a config and weights, or a LoRA adapter's when the operation says `adapter`."""
    weights = f"weights of {operation.get('weights', name)}".encode()
    if operation.get("adapter"):
        return {"adapter_config.json": json.dumps({"peft_type": "LORA", "r": 16}).encode(),
                "adapter_model.safetensors": weights}
    return {"config.json": json.dumps({"model_type": "llama"}).encode(), "model.safetensors": weights}


def open_world(registry: str, caller: str, scratch: Path, *, files: str | None = None) -> World:
    """The registry a scenario changes; `files`: on the Hub, the glob of models whose file lists scans read."""
    if registry == "local":
        return LocalWorld(scratch / "registry")
    if registry == "hf":
        return HubWorld(caller, files)
    if registry == "ollama":
        return OllamaWorld()
    if registry == "openai":
        return OpenAIWorld()
    if registry == "mlflow":
        return MLflowWorld()
    raise ScenarioError(f"unknown registry {registry!r}; the detection suite serves 'local', 'hf', 'ollama', "
                        "'openai' and 'mlflow'")
