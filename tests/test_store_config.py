"""`[store]` and $WEIGHTKEEPER_DATABASE_URL: which store a home uses, its password kept out of the file and out of
every message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weightkeeper import config
from weightkeeper.cli.main import EXIT_OK, main
from weightkeeper.errors import ConfigError
from weightkeeper.ledger import Ledger
from weightkeeper.secrets import scrub

PASSWORD = "correct-horse-battery-staple"


def home_with(tmp_path: Path, store: str) -> Path:
    home = tmp_path / "home"
    config.write_default(home)
    path = config.config_path(home)
    path.write_text(path.read_text(encoding="utf-8") + store, encoding="utf-8")
    return home


def test_a_home_without_a_store_keeps_its_sqlite_file_and_init_documents_the_store(tmp_path: Path) -> None:
    config.write_default(tmp_path)
    assert config.load(tmp_path).store == tmp_path / "ledger.sqlite3"
    assert "# [store]" in config.config_path(tmp_path).read_text() and "password_env" in \
        config.config_path(tmp_path).read_text()


def test_the_password_comes_from_its_variable_and_the_environments_url_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = home_with(tmp_path, '\n[store]\nurl = "postgresql://wk@db.example:5433/ledger"\n'
                               'password_env = "WK_TEST_DB_PASSWORD"\n')
    monkeypatch.delenv("WEIGHTKEEPER_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match=r"password_env names \$WK_TEST_DB_PASSWORD, which is not set"):
        config.load(home).store
    monkeypatch.setenv("WK_TEST_DB_PASSWORD", "p@ss/word:x")
    assert config.load(home).store == "postgresql://wk:p%40ss%2Fword%3Ax@db.example:5433/ledger"
    monkeypatch.setenv("WEIGHTKEEPER_DATABASE_URL", "postgresql://other@elsewhere/db")
    assert config.load(home).store == "postgresql://other@elsewhere/db"


@pytest.mark.parametrize(("store", "message"), [
    ('url = "postgresql://wk:secret@db/ledger"', "holds a password: the file must not"),
    ('url = "mysql://db/ledger"', "must be a PostgreSQL URL"),
    ('url = "postgresql://wk@db/ledger"\npassword_env = "hunter2!"', "must be the \\*name\\* of an environment"),
    ('password_env = "WK_PASSWORD"', "names a password for no `url`"),
    ('host = "db"', r"\[store\] takes only `url` and `password_env`"),
])
def test_a_wrong_store_table_is_refused_saying_what_to_do(tmp_path: Path, store: str, message: str) -> None:
    home = home_with(tmp_path, f"\n[store]\n{store}\n")
    with pytest.raises(ConfigError, match=message):
        config.load(home)


def test_a_home_with_a_store_scans_into_postgresql_and_never_shows_the_password(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The test server trusts its clients, so the password is sent and ignored: what matters is where it goes."""
    monkeypatch.delenv("WEIGHTKEEPER_DATABASE_URL", raising=False)
    monkeypatch.setenv("WK_TEST_DB_PASSWORD", PASSWORD)
    home = home_with(tmp_path, f'\n[store]\nurl = "{postgres_url}"\npassword_env = "WK_TEST_DB_PASSWORD"\n')
    models = tmp_path / "models" / "acme" / "med-ft"
    models.mkdir(parents=True)
    (models / "config.json").write_text("{}")
    config.add_registry(home, config.RegistryConfig("lab", "local", {"path": str(tmp_path / "models")}))
    assert main(["scan", "--home", str(home)]) == EXIT_OK
    assert main(["ledger", "--format", "jsonl", "--home", str(home)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert [json.loads(line)["event"] for line in out.splitlines()[-1:]] == ["appeared"]
    assert PASSWORD not in out + err and not (home / "ledger.sqlite3").exists()
    with Ledger(postgres_url) as ledger:
        assert ledger.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 1
    assert scrub(f"connection to {config.load(home).store} failed") == \
        "connection to postgresql://weightkeeper:[secret $WK_TEST_DB_PASSWORD]@" + postgres_url.split("@", 1)[1] + \
        " failed"
