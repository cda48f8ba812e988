"""A registry split into shards (the Hub's `authors`): each shard is a registry of its own in the ledger, and
every way of scanning (`scan`, `watch`, the workers) covers the same shards."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from fake_hub import FakeHub
from weightkeeper import config
from weightkeeper.cli.main import main
from weightkeeper.cli.scanning import chosen_registries, scan_registries
from weightkeeper.errors import ConfigError, UnknownRegistryError


def hub_home(home: Path, hub_url: str, scope: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / "weightkeeper.toml").write_text(
        f'[registries.hub]\nkind = "hf"\nendpoint = "{hub_url}"\n{scope}\n', encoding="utf-8")
    return home


def test_authors_split_a_hub_registry_into_one_registry_per_author(tmp_path: Path) -> None:
    home = hub_home(tmp_path, "http://127.0.0.1:9", 'authors = ["acme", "beta"]\nsearch = "llama"')
    settings = config.load(home)
    shards = settings.scanned()
    assert list(shards) == ["hub/acme", "hub/beta"]
    assert shards["hub/beta"].settings == {"endpoint": "http://127.0.0.1:9", "search": "llama", "author": "beta"}
    assert shards["hub/acme"].location == "http://127.0.0.1:9/api/models?author=acme&search=llama"
    assert [r.name for r in chosen_registries(settings, [])] == ["hub/acme", "hub/beta"]
    assert [r.name for r in chosen_registries(settings, ["hub"])] == ["hub/acme", "hub/beta"]
    assert [r.name for r in chosen_registries(settings, ["hub/beta"])] == ["hub/beta"]
    with pytest.raises(UnknownRegistryError, match="hub/gamma"):
        chosen_registries(settings, ["hub/gamma"])


def openai_home(home: Path, scope: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / "weightkeeper.toml").write_text(
        f'[registries.openai]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n{scope}\n', encoding="utf-8")
    return home


def test_organizations_split_an_openai_registry_into_one_registry_per_organization(tmp_path: Path) -> None:
    settings = config.load(openai_home(tmp_path, 'organizations = ["org-acme1234", "org-beta5678"]'))
    shards = settings.scanned()
    assert list(shards) == ["openai/org-acme1234", "openai/org-beta5678"]
    assert shards["openai/org-beta5678"].settings == {"base_url": "http://127.0.0.1:9/v1",
                                                      "organization": "org-beta5678"}
    assert shards["openai/org-beta5678"].location == "http://127.0.0.1:9/v1 (organization org-beta5678)"
    assert settings.registries["openai"].location == "http://127.0.0.1:9/v1 (organizations org-acme1234,org-beta5678)"
    assert [r.name for r in chosen_registries(settings, ["openai/org-acme1234"])] == ["openai/org-acme1234"]
    alone = config.load(openai_home(tmp_path, 'organization = "org-acme1234"')).scanned()
    assert list(alone) == ["openai"] and alone["openai"].location == "http://127.0.0.1:9/v1 (organization org-acme1234)"
    assert config.load(openai_home(tmp_path, "")).scanned()["openai"].location == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(("table", "many", "one", "value"), [
    ('kind = "hf"', "authors", "author", "acme"),
    ('kind = "openai"', "organizations", "organization", "org-acme1234"),
], ids=["hf", "openai"])
@pytest.mark.parametrize(("scope", "message"), [
    ('{many} = ["{value}"]\n{one} = "{value}"', "`{many}` replaces `{one}`: keep one of them"),
    ('{many} = "{value}"', 'must be a list of strings, like \\["a", "b"\\]'),
    ("{many} = []", "must be a list of strings"),
    ('{many} = ["{value}", "{value}"]', "names a value twice"),
], ids=["both", "a-string", "empty", "twice"])
def test_bad_shard_lists_say_what_is_wrong(tmp_path: Path, table: str, many: str, one: str, value: str, scope: str,
                                           message: str) -> None:
    fields = {"many": many, "one": one, "value": value}
    (tmp_path / "weightkeeper.toml").write_text(f"[registries.r]\n{table}\n{scope.format(**fields)}\n",
                                                encoding="utf-8")
    with pytest.raises(ConfigError, match=message.format(**fields)) as raised:
        config.load(tmp_path)
    assert raised.value.key in (many, one)


@pytest.mark.parametrize("scope", ['organizations = ["org-acme1234", "acme"]', 'organization = "org-acme/1234"'])
def test_an_organization_must_be_an_openai_organization_id(tmp_path: Path, scope: str) -> None:
    with pytest.raises(ConfigError, match=r"is not an OpenAI organisation id \(org- and letters and digits, as "
                                          r"platform.openai.com shows under Settings > Organization > General\)"):
        config.load(openai_home(tmp_path, scope))


def test_registry_add_takes_authors_separated_by_commas(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config.write_default(tmp_path)
    assert main(["--home", str(tmp_path), "registry", "add", "hub", "--kind", "hf", "--endpoint",
                 "http://127.0.0.1:9", "--authors", "acme, beta", "--no-check"]) == 0
    assert config.load(tmp_path).registries["hub"].settings["authors"] == ["acme", "beta"]
    assert main(["--home", str(tmp_path), "registry", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert row["location"] == "http://127.0.0.1:9/api/models?authors=acme,beta"


def test_registry_add_takes_organizations_separated_by_commas(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config.write_default(tmp_path)
    assert main(["--home", str(tmp_path), "registry", "add", "ft", "--kind", "openai", "--base-url",
                 "http://127.0.0.1:9/v1", "--organizations", "org-acme1234, org-beta5678", "--no-check"]) == 0
    settings = config.load(tmp_path)
    assert settings.registries["ft"].settings["organizations"] == ["org-acme1234", "org-beta5678"]
    assert list(settings.scanned()) == ["ft/org-acme1234", "ft/org-beta5678"]
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "registry", "add", "ft2", "--kind", "openai", "--organizations",
                 "acme", "--no-check"]) != 0
    assert "'acme' is not an OpenAI organisation id" in capsys.readouterr().err
    assert "ft2" not in config.load(tmp_path).registries


def test_a_scan_records_each_shard_as_a_registry_of_its_own(tmp_path: Path) -> None:
    with FakeHub(page_size=2) as hub:
        for owner, count in (("acme", 3), ("beta", 2), ("other", 2)):
            for i in range(count):
                hub.add(f"{owner}/model-{i}")
        home = hub_home(tmp_path, hub.url, 'authors = ["acme", "beta"]')
        results = scan_registries(home, [], log=None)
        assert [(r.registry, r.status, r.models_seen) for r in results] == [("hub/acme", "complete", 3),
                                                                            ("hub/beta", "complete", 2)]
        assert [r.registry for r in scan_registries(home, ["hub/beta"], log=None)] == ["hub/beta"]
    with closing(sqlite3.connect(config.load(home).ledger_path)) as conn:
        models = conn.execute("SELECT r.name, m.name FROM models m JOIN registries r ON r.id = m.registry_id"
                              " ORDER BY m.name").fetchall()
    assert models == [("hub/acme", "acme/model-0"), ("hub/acme", "acme/model-1"), ("hub/acme", "acme/model-2"),
                      ("hub/beta", "beta/model-0"), ("hub/beta", "beta/model-1")]


def test_registry_check_checks_every_shard(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with FakeHub(page_size=2) as hub:
        home = hub_home(tmp_path, hub.url, 'authors = ["acme", "beta"]')
        assert main(["--home", str(home), "registry", "check", "hub"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hub: ok: ") and "of acme" in out and "of beta" in out and out.count("; ") >= 1
