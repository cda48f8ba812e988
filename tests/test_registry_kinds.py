"""A registry kind is one module: a kind declared and registered here, and nowhere else, is read from the config,
offered by `registry add`, built by the scan (which closes it), and archived through its own source. The
built-in kinds are described by the same specification."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.archive.sources import SourceError, source_for
from tools.registries import open_registry, pinned_revision
from weightkeeper import config, registry
from weightkeeper.cli.main import main
from weightkeeper.config import RegistryConfig
from weightkeeper.domain import Gone, LookupResult, ModelRecord, Page
from weightkeeper.errors import ConfigError
from weightkeeper.ledger import Ledger
from weightkeeper.registry import Opening, Registry, RegistryKind, Setting, register_kind

CLOSED: list[str] = []  # the roots of the toy adapters closed so far


class ToyRegistry(Registry):
    """Each file in a folder is a model, named after it."""

    kind = "toy"

    def __init__(self, root: Path, greeting: str) -> None:
        self.root, self.greeting = root, greeting

    def pages(self, cursor: str | None) -> Iterator[Page]:
        yield Page(tuple(sorted(path.name for path in self.root.iterdir())), cursor=None)

    def record(self, item: str) -> ModelRecord:
        return ModelRecord(name=f"toys/{item}", key=item, revision=f"r-{item}")

    def item_name(self, item: str) -> str:
        return f"toys/{item}"

    def lookup(self, name: str) -> LookupResult:
        return Gone(f"{name} is no longer in {self.root}")

    def check(self) -> str:
        return f"{self.greeting}: {self.root} holds {len(list(self.root.iterdir()))} toys"

    def close(self) -> None:
        CLOSED.append(str(self.root))


class ToySource:
    metadata_only = False

    def __init__(self, root: str, name: str) -> None:
        self.root, self.name = root, name


def toy_kind() -> RegistryKind:
    return register_kind(RegistryKind(
        name="toy",
        settings=(Setting("root", "the folder of toys", metavar="DIR", required=True, file=True),
                  Setting("greeting", "what its check says first", default="hello")),
        adapter=lambda settings, opening: ToyRegistry(Path(settings.settings["root"]), settings.setting("greeting")
                                                      or ""),
        archive_source=lambda settings, record: ToySource(settings.settings["root"], record.name),
        pin=lambda record: f"pinned-{record.revision}",
    ))


@pytest.fixture(autouse=True)
def toy(monkeypatch: pytest.MonkeyPatch) -> RegistryKind:
    """The toy kind, registered for this test only."""
    monkeypatch.setattr(registry, "_KINDS", dict(registry.registry_kinds()))
    CLOSED.clear()
    return toy_kind()


def write_config(home: Path, table: str) -> None:
    config.write_default(home)
    with config.config_path(home).open("a", encoding="utf-8") as file:
        file.write(table)


def test_the_config_reads_a_registered_kinds_table_by_its_settings(tmp_path: Path) -> None:
    write_config(tmp_path, '\n[registries.shelf]\nkind = "toy"\nroot = "toys"\n')
    shelf = config.load(tmp_path).registries["shelf"]
    assert shelf.settings == {"root": str((tmp_path / "toys").resolve())}
    assert shelf.setting("greeting") == "hello"  # its kind's default
    assert shelf.location == str((tmp_path / "toys").resolve())


@pytest.mark.parametrize("table, says", [
    ('kind = "toy"\n', "a toy registry needs `root`"),
    ('kind = "toy"\nroot = "toys"\npath = "/m"\n', "not a setting of a toy registry"),
    ('kind = "tyo"\nroot = "toys"\n', "expected one of: local, hf, openai, mlflow, ollama, toy"),
], ids=["required", "unknown-setting", "unknown-kind"])
def test_the_config_refuses_a_table_its_kind_does_not_describe(tmp_path: Path, table: str, says: str) -> None:
    write_config(tmp_path, f"\n[registries.shelf]\n{table}")
    with pytest.raises(ConfigError, match=says):
        config.load(tmp_path)


def test_registry_add_takes_its_flags_checks_it_and_closes_what_it_opened(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    toys, home = tmp_path / "toys", tmp_path / "home"
    toys.mkdir()
    (toys / "bear").write_text("")
    config.write_default(home)
    assert main(["registry", "add", "shelf", "--kind", "toy", "--root", str(toys), "--greeting", "hi",
                 "--home", str(home)]) == 0
    assert config.load(home).registries["shelf"].settings == {"root": str(toys), "greeting": "hi"}
    assert CLOSED == [str(toys)], "the check's adapter is closed"
    assert main(["registry", "add", "other", "--kind", "toy", "--root", str(toys), "--author", "acme",
                 "--home", str(home)]) != 0
    assert "--author does not apply to a toy registry; it takes --greeting, --root, --token-env" in \
        capsys.readouterr().err


def test_the_scan_builds_its_adapter_and_closes_it(tmp_path: Path) -> None:
    toys, home = tmp_path / "toys", tmp_path / "home"
    toys.mkdir()
    for name in ("bear", "kite"):
        (toys / name).write_text("")
    write_config(home, f'\n[registries.shelf]\nkind = "toy"\nroot = "{toys}"\n')
    assert main(["scan", "--home", str(home)]) == 0
    assert CLOSED == [str(toys)]
    with Ledger(config.load(home).ledger_path) as ledger:
        names = [row[0] for row in ledger.conn.execute("SELECT name FROM models ORDER BY name")]
    assert names == ["toys/bear", "toys/kite"]


def test_the_factory_and_the_archive_use_its_kind(tmp_path: Path, toy: RegistryKind) -> None:
    shelf = RegistryConfig("shelf", "toy", {"root": str(tmp_path)})
    record = ModelRecord(name="toys/bear", key="bear", revision="r-bear")
    uncached: Any = None
    with open_registry(shelf, digests=uncached, cache=uncached) as adapter:
        assert isinstance(adapter, ToyRegistry) and adapter.greeting == "hello"
    source = source_for(shelf, record)
    assert isinstance(source, ToySource) and (source.root, source.name) == (str(tmp_path), "toys/bear")
    assert pinned_revision("toy", record) == "pinned-r-bear"
    register_kind(RegistryKind("toy", toy.settings, toy.adapter))  # the same kind, without an archive source
    with pytest.raises(SourceError, match="archiving from a toy registry is not supported"):
        source_for(shelf, record)


def test_every_built_in_kind_is_described_by_a_specification() -> None:
    kinds = registry.registry_kinds()
    assert list(kinds)[:5] == ["local", "hf", "openai", "mlflow", "ollama"]
    assert {name for name, kind in kinds.items() if kind.archive_source is not None} >= {"local", "hf", "openai",
                                                                                        "mlflow"}
    assert kinds["ollama"].archive_source is None
    assert [name for name, kind in kinds.items() if kind.files_listed] == ["local", "hf"]
    assert kinds["openai"].token_env == "OPENAI_API_KEY"
    assert RegistryConfig("h", "hf", {"author": "acme"}).setting("endpoint") == "https://huggingface.co"
    assert RegistryConfig("o", "ollama", {}).setting("url") == "http://127.0.0.1:11434"


def test_an_opening_carries_the_token_read_now(tmp_path: Path) -> None:
    seen: list[Opening] = []
    register_kind(RegistryKind("toy", (Setting("root", "the folder", required=True),),
                               lambda settings, opening: seen.append(opening) or ToyRegistry(tmp_path, "")))
    shelf = RegistryConfig("shelf", "toy", {"root": str(tmp_path)}, token_env="TOY_TOKEN")
    uncached: Any = None
    open_registry(shelf, digests=uncached, cache=uncached, environ={"TOY_TOKEN": "t0ken"})
    assert seen[0].token == "t0ken"


@pytest.mark.parametrize("kind, settings", [
    ("hf", {"author": "acme", "endpoint": "http://127.0.0.1:9"}),
    ("openai", {"base_url": "http://127.0.0.1:9/v1"}),
    ("mlflow", {"url": "http://127.0.0.1:9"}),
    ("ollama", {"url": "http://127.0.0.1:9"}),
])
def test_a_built_in_kinds_adapter_closes_its_client_when_its_with_ends(kind: str, settings: dict[str, str]) -> None:
    uncached: Any = None
    config = RegistryConfig("r", kind, settings, token_env="R_TOKEN")
    with open_registry(config, digests=uncached, cache=uncached, environ={"R_TOKEN": "t"}) as adapter:
        client: Any = getattr(adapter, "client")
        assert not _closed(client)
    assert _closed(client)


def _closed(client: Any) -> bool:
    """httpx's `is_closed` is a property, the OpenAI SDK's a method."""
    closed = client.is_closed
    return bool(closed() if callable(closed) else closed)


def test_a_program_that_registered_no_kind_is_told_what_it_missed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_KINDS", {})
    write_config(tmp_path, '\n[registries.lab]\nkind = "local"\npath = "models"\n')
    with pytest.raises(ConfigError, match="must import tools.registries"):
        config.load(tmp_path)
