from __future__ import annotations

import sys
from pathlib import Path

# Test helpers (registry_fakes) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from weightkeeper.cli.main import set_library_environment  # noqa: E402

if TYPE_CHECKING:
    from mlflow_server import MLflowServer
    from postgres_server import PostgresServer

set_library_environment()  # the tests' process starts here, as the command's does in main()

# Every run: reproducible (derandomized, no example database) and bounded, so each property test takes
# seconds. `HYPOTHESIS_PROFILE=thorough`: new random histories each run, many more and longer.
HYPOTHESIS_DEFAULTS = settings.get_profile("default")  # Hypothesis's own, not its "ci" profile under CI=true
settings.register_profile("default", HYPOTHESIS_DEFAULTS, max_examples=10, stateful_step_count=30,
                          derandomize=True, database=None)
settings.register_profile("thorough", HYPOTHESIS_DEFAULTS, max_examples=200, stateful_step_count=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def reviewer_keys_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Reviewers' signing keys in a folder of the test's own, outside every home (never the user's own)."""
    folder = tmp_path_factory.mktemp("keys")
    monkeypatch.setenv("WEIGHTKEEPER_KEYS_DIR", str(folder))
    return folder


@pytest.fixture
def proposal_home(tmp_path: Path) -> Path:
    """A home with the default config."""
    from weightkeeper import config

    config.write_default(tmp_path)
    return tmp_path


@pytest.fixture
def deleted(proposal_home: Path) -> Path:
    """A ledger where acme/med-ft was deleted while acme/med-ft-v2 still builds on it."""
    from proposal_world import model, scan_twice
    from weightkeeper.domain import Lineage

    dependent = model("acme/med-ft-v2", lineage=(Lineage("acme/med-ft", "finetune"),))
    scan_twice(proposal_home, [model("acme/med-ft"), dependent], [dependent])
    return proposal_home


@pytest.fixture(scope="session")
def built_console_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's proposals, built once (tests/console_world.py); `console_home` gives each test its own copy."""
    from console_world import demo_home

    base = tmp_path_factory.mktemp("console")
    demo_home(base / "home", keys=base / "keys")
    return base


@pytest.fixture
def console_home(built_console_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo's proposals and registry with ada, the ledger's reviewer, her key in this test's keys
    folder."""
    import shutil

    from weightkeeper import config

    shutil.copytree(built_console_home / "keys", tmp_path / "keys")
    monkeypatch.setenv("WEIGHTKEEPER_KEYS_DIR", str(tmp_path / "keys"))
    home = Path(shutil.copytree(built_console_home / "home", tmp_path / "home"))
    settings = config.config_path(home)  # its registry is the copy's own
    settings.write_text(settings.read_text().replace(str(built_console_home / "home"), str(home)))
    return home


def pytest_configure(config: pytest.Config) -> None:
    """Compile the project and the tests' helpers once, in the controlling process, before any test starts: the
    tests start hundreds of `weightkeeper` processes, which import it from source, and where bytecode is not
    written (PYTHONDONTWRITEBYTECODE) each would compile its modules again (a quarter of those tests' CPU time).
    The test files themselves are left to pytest, which compiles them as it rewrites their asserts."""
    if hasattr(config, "workerinput"):  # an xdist worker: its controller compiled already
        return
    import compileall
    import re

    root = Path(__file__).parent.parent
    for package in ("weightkeeper", "agents", "tools", "tui", "evals", "prompts"):
        compileall.compile_dir(root / package, quiet=1)
    compileall.compile_dir(root / "tests", quiet=1, rx=re.compile(r"(test_[^/]*|conftest)\.py$"))


# The test files that use the real `mlflow server` (the `mlflow_server` fixture). Under `--dist loadfile` they run in
# one worker, as if one file, so that worker alone starts a server (10-30 s), once.
MLFLOW_USERS = frozenset({"test_archive_actions.py", "test_evals.py", "test_mlflow_registry.py"})


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist (`-p no:xdist`) does not know it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`--dist loadfile`, with the files of MLFLOW_USERS one scope."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class MLflowUsersTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            return "mlflow server users" if Path(file).name in MLFLOW_USERS else file

    return MLflowUsersTogether(config, log)


@pytest.fixture
def mlflow_server() -> MLflowServer:
    """The process's real `mlflow server` (evals.worlds.shared_mlflow_server, which the detection suite's MLflow
    scenarios use too), running, its registry empty. A file that uses it belongs in MLFLOW_USERS."""
    from evals.worlds import shared_mlflow_server

    server = shared_mlflow_server()
    server.delete_all_models()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test process's own (tests/postgres_server.py), started on first use.

    Its folder is made with `tempfile`, not pytest's: under root the server runs as the `postgres` user, who
    cannot enter pytest's owner-only temporary folders."""
    import shutil
    import tempfile

    from postgres_server import PostgresServer

    server = PostgresServer(Path(tempfile.mkdtemp(prefix="weightkeeper-pg-")))
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def chroma_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (`chroma run`, installed with chromadb) on 127.0.0.1, started once per test process
    (about 1.5 s); its URL. Tests take it through `chroma_server`."""
    import shutil
    import subprocess
    import time

    import httpx

    from postgres_server import free_port

    port = free_port()
    # The `chroma` script chromadb installs beside this interpreter (a venv), else on the PATH.
    chroma = shutil.which("chroma", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert chroma, "chromadb's `chroma` command is not installed"
    server = subprocess.Popen([chroma, "run", "--path", str(tmp_path_factory.mktemp("chroma-server")), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("chroma run did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()  # its data is thrown away; a SIGTERM waits for the clients' idle connections to close
        server.wait(timeout=10)


@pytest.fixture
def chroma_server(chroma_process: str) -> str:
    """The session's Chroma server, every collection dropped first: a test finds only what it wrote."""
    import httpx

    collections = f"{chroma_process}/api/v2/tenants/default_tenant/databases/default_database/collections"
    for collection in httpx.get(collections).raise_for_status().json():
        httpx.delete(f"{collections}/{collection['name']}").raise_for_status()
    return chroma_process


def _database_name(request: pytest.FixtureRequest) -> str:
    import hashlib

    return "t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The URL of an empty database of this test's own on the session's PostgreSQL server."""
    return postgres_server.create_database(_database_name(request))


@pytest.fixture(scope="session")
def ledger_template(postgres_server: PostgresServer) -> str:
    """The name of a database holding an empty ledger (its schema made once per session), copied by `store`."""
    from weightkeeper.ledger import Ledger

    Ledger(postgres_server.create_database("ledger_template")).close()
    return "ledger_template"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's ledger lives, once on each backend: a SQLite file's path, or the URL of a PostgreSQL database
    of the test's own, an empty ledger copied from `ledger_template`."""
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite3"
    server = request.getfixturevalue("postgres_server")
    return server.create_database(_database_name(request), template=request.getfixturevalue("ledger_template"))


@pytest.fixture
def on_each_store(store: str | Path, monkeypatch: pytest.MonkeyPatch) -> str | Path:
    """The test's homes keep their ledger in `store`: a SQLite file in each home as configured, or the test's
    PostgreSQL database, named in $WEIGHTKEEPER_DATABASE_URL (which wins over the config, in the test's process
    and in the commands it starts)."""
    if isinstance(store, str):
        monkeypatch.setenv("WEIGHTKEEPER_DATABASE_URL", store)
    return store
