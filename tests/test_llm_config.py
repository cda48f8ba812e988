"""The `[llm]` table: optional (absent means the offline drafter), strict, and never holding a key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from weightkeeper import config
from weightkeeper.config import LLMSettings
from weightkeeper.errors import ConfigError

TABLE = '[llm]\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "qwen2.5-7b-instruct"\n'


def write(home: Path, text: str) -> Path:
    path = config.config_path(home)
    path.write_text(text, encoding="utf-8")
    return path


def test_without_an_llm_table_proposals_are_drafted_offline(tmp_path: Path) -> None:
    config.write_default(tmp_path)
    assert config.load(tmp_path).llm is None


def test_an_llm_table_is_read_with_its_defaults(tmp_path: Path) -> None:
    write(tmp_path, TABLE)
    assert config.load(tmp_path).llm == LLMSettings("http://127.0.0.1:8000/v1", "qwen2.5-7b-instruct", None, 60.0, 2, 4)
    write(tmp_path, TABLE + 'api_key_env = "WK_LLM_KEY"\ntimeout_seconds = 2.5\nmax_retries = 0\nconcurrency = 1\n')
    assert config.load(tmp_path).llm == LLMSettings("http://127.0.0.1:8000/v1", "qwen2.5-7b-instruct", "WK_LLM_KEY",
                                                    2.5, 0, 1)


def test_the_templates_commented_example_is_a_valid_llm_table(tmp_path: Path) -> None:
    lines = config.TEMPLATE.splitlines()
    start = lines.index("# [llm]")
    example = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        example.append(line[2:])
    text = "\n".join(example) + "\n"
    assert set(tomllib.loads(text)["llm"]) == set(LLMSettings.__slots__)
    write(tmp_path, text)
    assert config.load(tmp_path).llm == LLMSettings("http://127.0.0.1:8000/v1", "my-model", "OPENAI_API_KEY")


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('api_key_env = "sk-proj-Zq8vN3xT5mLr2WkP9dHs4Yb7"\n', "api_key_env", "not a token"),
        ("api_key_env = 42\n", "api_key_env", "not a token"),
        ('temperature = 0.2\n', "temperature", "takes `base_url`, `model`"),
        ("timeout_seconds = -5\n", "timeout_seconds", "more than 0"),
        ("timeout_seconds = 0\n", "timeout_seconds", "more than 0"),
        ('timeout_seconds = "60"\n', "timeout_seconds", "number of seconds"),
        ("max_retries = -1\n", "max_retries", "between 0 and 10"),
        ("max_retries = 1.5\n", "max_retries", "whole number"),
        ("concurrency = -2\n", "concurrency", "between 1 and 64"),
        ("concurrency = 0\n", "concurrency", "between 1 and 64"),
        ("concurrency = true\n", "concurrency", "whole number"),
    ],
)
def test_a_bad_llm_setting_is_refused_naming_its_key_and_line(tmp_path: Path, extra: str, key: str,
                                                             message: str) -> None:
    path = write(tmp_path, TABLE + extra)
    with pytest.raises(ConfigError, match=message) as caught:
        config.load(tmp_path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (path, 4, key)
    assert f"key '{key}'" in str(caught.value) and "line 4" in str(caught.value)


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "ftp://models.example/v1", "http:// spaced", ""])
def test_a_base_url_that_is_not_http_is_refused(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f'[llm]\nmodel = "m"\nbase_url = "{url}"\n')
    with pytest.raises(ConfigError, match="http:// or https:// URL") as caught:
        config.load(tmp_path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (path, 3, "base_url")


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ('[llm]\nbase_url = "http://127.0.0.1:8000/v1"\n', 1, None, "needs `model`"),
        ('[llm]\nmodel = "m"\n', 1, None, "needs `base_url`"),
        ('[llm]\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = ""\n', 3, "model", "name of a model"),
        ('llm = "gpt"\n', 1, "llm", "must be a table"),
        ('[llms]\nmodel = "m"\n', 1, "llms", r"\[llm\]"),
    ],
)
def test_an_incomplete_or_misplaced_llm_table_is_refused(tmp_path: Path, text: str, line: int | None,
                                                         key: str | None, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        config.load(tmp_path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (path, line, key)


def test_a_provider_other_than_openai_needs_a_key_variable_and_may_leave_base_url_to_its_own_api(
        tmp_path: Path) -> None:
    write(tmp_path, '[llm]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\napi_key_env = "ANTHROPIC_API_KEY"\n')
    assert config.load(tmp_path).llm == LLMSettings(None, "claude-sonnet-4-5", "ANTHROPIC_API_KEY",
                                                    provider="anthropic")
    path = write(tmp_path, '[llm]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n')
    with pytest.raises(ConfigError, match="needs `api_key_env`") as caught:
        config.load(tmp_path)
    assert (caught.value.path, caught.value.key) == (path, None)


def test_an_unknown_provider_is_refused_listing_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, TABLE + 'provider = "bedrock"\n')
    with pytest.raises(ConfigError, match="unknown provider 'bedrock'; expected one of: openai, anthropic") as caught:
        config.load(tmp_path)
    assert (caught.value.path, caught.value.line, caught.value.key) == (path, 4, "provider")
