"""deploy/: what can be checked without a Docker engine or a running systemd. The compose file is valid under the
Compose Specification's schema (tests/data/compose-spec.md says where it comes from); every weightkeeper command
line a service or a unit runs, or the README's "Running a team's installation" shows, is one weightkeeper's own
parser accepts; the units pass `systemd-analyze verify` and are hardened; the example config loads; the image
installs the extra the workers need; and no secret is written in any file of the folder. Nothing here starts a
container or a unit."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from weightkeeper import config
from weightkeeper.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "systemd"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
IMAGE = "weightkeeper:local"  # the image compose.yaml builds from deploy/Dockerfile
HOME = "/var/lib/weightkeeper/home"  # weightkeeper's home in the image and in the units
PASSWORD_ENV = "WEIGHTKEEPER_DATABASE_PASSWORD"  # what deploy/weightkeeper.toml's [store] password_env names
INSTALLED_BIN = "/opt/weightkeeper/bin/"  # where the units expect the venv: see the README
README_SECTION = re.search(r"^## Running a team's installation\n(.*?)^## ",
                           (REPO / "README.md").read_text(encoding="utf-8"), re.S | re.M)


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string((UNITS / name).read_text(encoding="utf-8"))
    return parser


def weightkeeper_command_lines() -> list[tuple[str, list[str]]]:
    """Every weightkeeper command line deploy/ runs or the README's section shows, as (where, argv after the
    program): the services' commands, the units' ExecStart, and in the section each `weightkeeper ...` (in a
    shell block or inline) and each `docker compose run ... worker ARGS`."""
    services = {name: service for name, service in COMPOSE["services"].items() if service.get("image") == IMAGE}
    lines = [(f"compose {name}", service["command"]) for name, service in services.items()]
    for path in sorted(UNITS.glob("*.service")):
        program, *argv = shlex.split(unit(path.name)["Service"]["ExecStart"])
        if Path(program).name == "weightkeeper":
            lines.append((path.name, argv))
    section = README_SECTION[1]
    shell = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]
    inline = [" ".join(span.split()) for span in re.findall(r"`(weightkeeper [^`]+)`", section)]
    for number, line in enumerate(shell + inline):
        words = shlex.split(line, comments=True)
        for command in " ".join(words).split(" && "):
            argv = command.split(" ")
            if argv[0] == "weightkeeper":
                lines.append((f"README {number}", argv[1:]))
            elif argv[:3] == ["docker", "compose", "run"]:
                service, *args = compose_run_arguments(argv[3:])
                if service in services and args:
                    lines.append((f"README {number}", args))
    return lines


def compose_run_arguments(words: list[str]) -> list[str]:
    """`docker compose run`'s words after its options: the service, then the command given in its place."""
    while words[0].startswith("-"):
        words = words[2:] if words[0] in ("-e", "--env") else words[1:]
    return words


def command_of(argv: list[str]) -> str:
    return argv[2] if argv[0] == "--home" else argv[0]


@pytest.mark.parametrize(("where", "argv"), [
    pytest.param(where, argv, id=f"{where}: {shlex.join(argv)}") for where, argv in weightkeeper_command_lines()])
def test_every_weightkeeper_command_deploy_runs_or_shows_is_one_the_parser_accepts(where: str,
                                                                                   argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert hasattr(args, "handler"), f"{where}: `weightkeeper {shlex.join(argv)}` names no command"


def test_every_service_unit_and_command_of_the_readme_is_covered() -> None:
    lines = weightkeeper_command_lines()
    where = {place for place, _ in lines}
    assert {"compose worker", "compose review", "weightkeeper-worker@.service",
            "weightkeeper-verify.service"} <= where
    commands = {" ".join(argv[:2]) for _, argv in lines}
    assert {"archive verify", "init --reviewer", "store migrate", "reviewer add", "review"} <= commands


def test_the_compose_file_is_valid_under_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator(schema).validate(COMPOSE)
    with pytest.raises(jsonschema.ValidationError):  # the schema does refuse what compose would
        jsonschema.Draft201909Validator(schema).validate({"services": {"worker": {"image": IMAGE, "replica": 2}}})


def test_the_compose_services_wire_the_store_the_memory_and_the_workers() -> None:
    services = COMPOSE["services"]
    postgres, worker, review = services["postgres"], services["worker"], services["review"]
    assert postgres["image"].startswith("postgres:") and postgres["healthcheck"]["test"][1] == "pg_isready"
    assert "postgres:/var/lib/postgresql/data" in postgres["volumes"]
    assert worker["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert worker["deploy"]["replicas"] >= 2 and worker["stop_signal"] == "SIGTERM"
    assert review["tty"] and review["stdin_open"] and review["profiles"] == ["console"]  # `run --rm review` only
    for service in (worker, review):
        assert f"home:{HOME}" in service["volumes"]
        assert service["environment"][PASSWORD_ENV].startswith("${POSTGRES_PASSWORD:?")
    assert services["chroma"]["command"][0] == "run" and "chroma:/data" in services["chroma"]["volumes"]
    assert "witness:/var/lib/weightkeeper/.config/weightkeeper/keys" in worker["volumes"]  # outside the home
    assert set(COMPOSE["volumes"]) == {"postgres", "chroma", "home", "witness"}


def test_the_chroma_server_is_the_version_of_the_installed_client() -> None:
    from importlib.metadata import version

    tag = COMPOSE["services"]["chroma"]["image"].split(":")[1]
    assert tag == version("chromadb"), "pin chromadb/chroma to the chromadb client weightkeeper installs"


def test_the_example_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/weightkeeper.toml as shipped, and with its commented registry examples switched on; the ledger is
    the compose file's PostgreSQL, with the password of the variable compose sets."""
    from weightkeeper.cli.workers import drafts_side_by_side

    monkeypatch.delenv("WEIGHTKEEPER_DATABASE_URL", raising=False)
    monkeypatch.setenv(PASSWORD_ENV, "from-the-env")
    text = (DEPLOY / "weightkeeper.toml").read_text(encoding="utf-8")
    examples = text.index("# [registries.")
    switched_on = text[:examples] + re.sub(r"^# ?", "", text[examples:], flags=re.M)
    for name, body in (("shipped", text), ("examples", switched_on)):
        home = tmp_path / name
        home.mkdir()
        (home / "weightkeeper.toml").write_text(body, encoding="utf-8")
        settings = config.load(home)
        assert settings.store == "postgresql://weightkeeper:from-the-env@postgres:5432/weightkeeper"
        assert settings.memory.url == "http://chroma:8000"
        assert drafts_side_by_side(settings.memory), "the workers draft letters side by side on compose's Chroma"
    assert "registries." not in text[:examples]


DEPENDENCY_NAME = re.compile(r"^[A-Za-z0-9._-]+")


def provided(requirements: list[str]) -> set[str]:
    return {DEPENDENCY_NAME.match(requirement)[0].lower() for requirement in requirements}


@pytest.mark.parametrize("package", ["psycopg", "procrastinate", "langgraph-checkpoint-postgres"])
def test_the_image_installs_what_the_workers_import(package: str) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    installs = [line for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
                if re.match(r"RUN pip install .*/src\[", line)]
    assert len(installs) == 1, "the Dockerfile installs the source tree once, with its extras"
    extras = re.search(r"/src\[([^\]]+)\]", installs[0])[1].split(",")
    assert set(extras) <= set(project["optional-dependencies"]), f"the Dockerfile names an unknown extra: {extras}"
    requirements = project["dependencies"] + [requirement for extra in extras
                                              for requirement in project["optional-dependencies"][extra]]
    assert package in provided(requirements), f"no extra the image installs ({extras}) provides {package}"


def test_the_image_runs_weightkeeper_as_a_user_of_its_own() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "\nFROM python:3.11-slim\n" in dockerfile
    assert re.search(r"^USER weightkeeper$", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["weightkeeper"\]$', dockerfile, re.M)


WORKER = "weightkeeper-worker@.service"


@pytest.mark.parametrize("name", [WORKER, "weightkeeper-verify.service"])
def test_the_units_that_run_weightkeeper_are_hardened(name: str) -> None:
    service = unit(name)["Service"]
    assert service["User"] == "weightkeeper" and service["EnvironmentFile"] == "/etc/weightkeeper/weightkeeper.env"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert f"--home {HOME}" in service["ExecStart"]
    assert any(Path(HOME).is_relative_to(path) for path in service["ReadWritePaths"].split())
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 60
    assert service["ExecStart"].startswith(INSTALLED_BIN)
    assert "Environment" not in service  # values come from the EnvironmentFile only
    if name == WORKER:
        assert service["Restart"] == "on-failure"


def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` needs no running systemd; it does check that each ExecStart program exists, so
    the units are verified with this venv's bin folder in place of /opt/weightkeeper/bin."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) is needed to verify deploy/systemd/"
    bin_dir = str(Path(sys.executable).parent) + "/"
    for path in UNITS.iterdir():
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8").replace(INSTALLED_BIN, bin_dir),
                                          encoding="utf-8")
    names = [path.name.replace("@.", "@1.") for path in sorted(tmp_path.iterdir())]
    verified = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")
    broken = tmp_path / WORKER
    broken.write_text(broken.read_text(encoding="utf-8").replace("=strict", "=strcit"), encoding="utf-8")
    refused = subprocess.run([analyze, "verify", WORKER.replace("@.", "@1.")], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert "strcit" in refused.stderr  # what the first run's silence means: it would have said so


SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|PASSPHRASE", re.I)
SECRET_SHAPES = {
    "a URL with a password": re.compile(r"\w+://[^/\s:@]+:(?!\$\{)[^/\s@]+@"),
    "a Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    "an OpenAI or Anthropic key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "a GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_\w{20,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def test_no_secret_is_written_under_deploy() -> None:
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        for what, shape in SECRET_SHAPES.items():
            assert not shape.search(text), f"{path.relative_to(REPO)} holds {what}"
        for name, value in re.findall(r"^[ \t]*([A-Z_]+)[ \t]*=[ \t]*(.*)$", text, re.M):  # env files, Environment=
            assert not (SECRET_NAME.search(name) and value.strip()), f"{path.relative_to(REPO)} sets {name}"
    for service in COMPOSE["services"].values():
        for name, value in service.get("environment", {}).items():
            if SECRET_NAME.search(name):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", value), f"{name} must come from deploy/.env"


def test_the_image_copies_every_package_the_project_installs() -> None:
    """A package added to pyproject.toml must reach the image: deploy/Dockerfile copies it, and the build
    context's allowlist (deploy/Dockerfile.dockerignore) lets it through."""
    packages = {pattern.rstrip("*") for pattern in tomllib.loads((REPO / "pyproject.toml").read_text(
        encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) /src/\1$", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"), re.M))
    allowed = set(re.findall(r"^!(\w+)$", (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8"), re.M))
    assert packages == copied and packages <= allowed
