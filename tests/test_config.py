"""The config file: strict reading with errors that name file, line and key; writing that keeps comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightkeeper import config
from weightkeeper.errors import ConfigError


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = config.config_path(home)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_file_is_commented_valid_and_has_no_registry(tmp_path: Path) -> None:
    path = config.write_default(tmp_path)
    text = path.read_text()
    assert text.count("\n#") > 5
    loaded = config.load(tmp_path)
    assert loaded.registries == {} and loaded.ledger_path == tmp_path / "ledger.sqlite3"
    with pytest.raises(ConfigError, match="--force"):
        config.write_default(tmp_path)


def test_adding_a_registry_keeps_the_users_comments(tmp_path: Path) -> None:
    config.write_default(tmp_path)
    with config.config_path(tmp_path).open("a") as handle:
        handle.write("# my own note\n")
    config.add_registry(tmp_path, config.RegistryConfig("team", "local", {"path": str(tmp_path / "models")},
                                                        token_env="TEAM_TOKEN"))
    text = config.config_path(tmp_path).read_text()
    assert "# my own note" in text and "[registries.team]" in text
    team = config.load(tmp_path).registries["team"]
    assert (team.kind, team.location, team.token_env) == ("local", str(tmp_path / "models"), "TEAM_TOKEN")
    with pytest.raises(ConfigError, match="already exists"):
        config.add_registry(tmp_path, team)


def test_a_relative_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    write(tmp_path, '[registries.r]\nkind = "local"\npath = "models"\n')
    assert config.load(tmp_path).registries["r"].location == str(tmp_path / "models")


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ('[ledger]\npath = "x"\n[registries.r]\nkind = "local"\npath = \n', 5, None, "not valid TOML"),
        ('[registries.r]\npath = "/m"\nkind = "s3"\n', 3, "kind", "unknown registry kind"),
        ('# c\n[registries.r]\nkind = "local"\n', 2, None, "needs `path`"),
        ('[registries.r]\nkind = "local"\npath = "/m"\ncolour = "red"\n', 4, "colour", "not a setting"),
        ('[registries.r]\nkind = "local"\npath = "/m"\ntoken_env = "hf_abc-123"\n', 4, "token_env", "not a token"),
        ('[registries.r]\nkind = "local"\npath = "/m"\nschedule = "hourly"\n', 4, "schedule", "cron"),
        ('[registries.r]\nkind = "local"\npath = 3\n', 3, "path", "must be a string"),
        ('[ledger]\npath = "x"\nsize = 3\n', 3, "size", "takes only"),
        ('[registrie.r]\nkind = "local"\n', 1, "registrie", "unknown top-level key"),
        ('[scan]\ncommit_records = 0\n', 2, "commit_records", "at least 1"),
        ('[scan]\ncommit_records = "many"\n', 2, "commit_records", "whole number"),
        ('[scan]\ncommit_seconds = -1\n', 2, "commit_seconds", "between 0 and 3600"),
        ('[scan]\ncommit_every = 5\n', 2, "commit_every", "takes `commit_records`"),
    ],
)
def test_malformed_files_are_refused_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        config.load(tmp_path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (path, line, key)
    assert str(path) in str(caught.value) and f"line {line}" in str(caught.value)


def test_scan_settings_are_read_and_default_when_absent(tmp_path: Path) -> None:
    assert config.load(tmp_path).scan == config.ScanSettings(commit_records=10_000, commit_seconds=1.0)
    write(tmp_path, "[scan]\ncommit_records = 1\ncommit_seconds = 0\n")
    assert config.load(tmp_path).scan == config.ScanSettings(commit_records=1, commit_seconds=0.0)


def test_non_utf8_config_is_refused(tmp_path: Path) -> None:
    config.config_path(tmp_path).write_bytes(b'[registries.r]\nkind = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(tmp_path)
