"""`weightkeeper worker`: procrastinate workers sharing one PostgreSQL job queue and the home's ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightkeeper import config
from weightkeeper.errors import ConfigError


def write_config(home: Path, text: str) -> Path:
    home.mkdir(exist_ok=True)
    (home / "weightkeeper.toml").write_text(text, encoding="utf-8")
    return home


def test_the_store_url_comes_from_the_config_or_the_environment_which_wins(tmp_path: Path) -> None:
    home = write_config(tmp_path, '[store]\nurl = "postgresql://wk@db.example.org/wk"\n\n[workers]\nstall_seconds = 5\n')
    settings = config.load(home)
    assert settings.store_url({}) == "postgresql://wk@db.example.org/wk"
    assert settings.store_url({config.STORE_URL_ENV: "postgresql://wk:pw@other/wk"}) == "postgresql://wk:pw@other/wk"
    assert settings.workers.stall_seconds == 5.0
    assert config.load(write_config(tmp_path / "plain", "")).store_url({}) is None


@pytest.mark.parametrize(("text", "key", "message"), [
    ('[store]\nurl = "mysql://db/wk"\n', "url", "must be a PostgreSQL URL"),
    ('[store]\nurl = "postgresql://wk:hunter22@db/wk"\n', "url", "holds a password.*PGPASSWORD"),
    ('[store]\nhost = "db"\n', "host", r"\[store\] takes `url`"),
    ('[workers]\nstall_seconds = 0\n', "stall_seconds", "between 1 and 86400"),
])
def test_bad_store_and_worker_settings_say_what_to_do(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        config.load(write_config(tmp_path, text))
    assert raised.value.key == key
