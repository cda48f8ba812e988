"""The deprecations-page parser on pages shaped like the ones providers publish, and on broken ones.

The samples under tests/data/deprecations/ follow OpenAI's page as it has looked over the years
(markdown with price columns and subsections, escaped-pipe aliases, an HTML rendering) and a
third-party page with other column names and date formats.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from http_fakes import FakeServer, Fault, Reply
from tools.registries.deprecations import (
    Deprecation,
    DeprecationsPageError,
    by_model,
    parse_date,
    parse_deprecations,
    read_deprecations,
)
from tools.registries.http import RetryPolicy
from weightkeeper.errors import RegistryUnavailable

DATA = Path(__file__).parent / "data" / "deprecations"


def page(name: str) -> list[Deprecation]:
    return parse_deprecations((DATA / name).read_text(encoding="utf-8"))


def summary(entries: list[Deprecation]) -> list[tuple[str, str | None, str | None, str | None, bool]]:
    return [(e.model, e.shutdown_date, e.replacement, e.section_date, e.fine_tunes_affected) for e in entries]


def test_openai_page_with_price_columns_subsections_and_endpoints() -> None:
    entries = page("openai_2024.md")
    assert summary(entries) == [
        ("gpt-4-32k", "2025-06-06", "gpt-4o", "2024-06-06", True),
        ("gpt-4-32k-0613", "2025-06-06", "gpt-4o", "2024-06-06", True),
        ("gpt-4-vision-preview", "2024-12-06", "gpt-4o", "2024-06-06", True),
        # The section says fine-tuned models built on these are not affected (misspelt "effected", as published).
        ("gpt-3.5-turbo-0613", "2024-09-13", "gpt-3.5-turbo", "2023-11-06", False),
        ("gpt-3.5-turbo-16k-0613", "2024-09-13", "gpt-3.5-turbo", "2023-11-06", False),
        # "#### Base GPT models" is a subsection: it keeps the 2023-07-06 announcement's date.
        ("ada", "2024-01-04", "babbage-002", "2023-07-06", True),
        ("code-davinci-002", "2024-01-04", "gpt-3.5-turbo-instruct", "2023-07-06", True),
        ("text-davinci-edit-001", "2024-01-04", "gpt-4o", "2023-07-06", True),  # `/v1/edits` is no model
        ("davinci", "2024-01-04", "davinci-002, gpt-3.5-turbo, gpt-4o", "2023-07-06", True),
        ("gpt-4-0314", "2024-06-13", "gpt-4o", "2023-06-13", True),  # "at earliest 2024-06-13"
        ("code-davinci-002", "2023-03-23", "gpt-4o", "2023-03-20", True),
    ]
    lines = (DATA / "openai_2024.md").read_text(encoding="utf-8").splitlines()
    assert all(entry.model in lines[entry.line - 1] for entry in entries), "each entry names its row's line"


def test_escaped_pipes_separate_aliases_and_header_names_vary() -> None:
    assert summary(page("openai_2026.md")) == [
        ("computer-use-preview-2025-03-11", "2026-07-23", "gpt-5.4-mini", "2026-04-22", True),
        ("computer-use-preview", "2026-07-23", "gpt-5.4-mini", "2026-04-22", True),
        ("gpt-4o-mini-tts-2025-03-20", "2026-07-23", "gpt-realtime", "2026-04-22", True),
        ("gpt-3.5-turbo-0125", "2026-10-23", "gpt-4.1-mini", "2026-04-22", True),
        ("gpt-3.5-turbo", "2026-10-23", "gpt-4.1-mini", "2026-04-22", True),
        ("gpt-3.5-turbo-completions", "2026-10-23", "gpt-4.1-mini", "2026-04-22", True),
        ("chatgpt-4o-latest", "2026-02-17", "gpt-5.1-chat-latest", "2025-11-18", True),
        ("o1-preview", "2025-07-28", "o3", "2025-04-28", True),  # "Shutdown Date", "July 28, 2025"
        ("o1-mini", "2025-10-27", "o4-mini", "2025-04-28", True),  # "2025/10/27"
    ]


def test_html_tables() -> None:
    assert summary(page("openai_html.html")) == [
        ("o1-preview", "2025-07-28", "o3", "2025-04-28", True),
        ("o1-mini", "2025-10-27", "o4-mini", "2025-04-28", True),
        ("o1-mini-2024-09-12", "2025-10-27", "o4-mini", "2025-04-28", True),  # after a <br>
        ("gpt-3.5-turbo-0613", "2024-09-13", "gpt-3.5-turbo", "2023-11-06", False),  # a header row of <td>s
        ("code-davinci-002", "2023-03-23", "gpt-4o", "2023-03-20", True),  # prose around the <code> ignored
    ]
    assert [entry.line for entry in page("openai_html.html")] == [16, 17, 17, 23, 29]


def test_other_column_names_date_formats_and_tables_without_outer_pipes() -> None:
    assert summary(page("variant_columns.md")) == [
        ("acme-chat-1", "2026-07-14", "acme-chat-2", "2025-07-14", True),  # "14 July 2026", "(all snapshots)"
        ("acme-chat-1-mini", "2027-01-05", "acme-chat-2-mini", "2025-07-14", True),  # "Jan. 5, 2027"
        ("acme-chat-1-nano", "2027-01-05", "acme-chat-2-mini", "2025-07-14", True),
        ("acme-embed-1", None, None, "2025-07-14", True),  # TBD, and no replacement
        ("acme-vision-preview", "2025-08-01", "acme-vision-1, acme-chat-2", "2025-02-01", True),  # "Deprecation date"
    ]  # the notice-period table has no shutdown column and is not a deprecation table


def test_a_later_announcement_supersedes_an_earlier_one() -> None:
    chosen = by_model(page("openai_2024.md"))
    assert chosen["code-davinci-002"].shutdown_date == "2024-01-04"  # 2023-07-06 overrides 2023-03-20
    assert chosen["gpt-4-32k"].replacement == "gpt-4o"
    earlier_shutdown_wins = by_model([Deprecation("m", "2026-01-01", "a", "2025-01-01", 3),
                                      Deprecation("m", "2025-06-01", "b", "2025-01-01", 9)])
    assert earlier_shutdown_wins["m"].replacement == "b"


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-07-14", "2025-07-14"), ("2025/07/14", "2025-07-14"), ("2025.7.4", "2025-07-04"),
    ("July 14, 2025", "2025-07-14"), ("Jul 14 2025", "2025-07-14"), ("Sept. 3rd, 2025", "2025-09-03"),
    ("14 July 2025", "2025-07-14"), ("1st January, 2026", "2026-01-01"), ("at earliest 2024-06-13", "2024-06-13"),
    ("2025-07-14T00:00:00Z", "2025-07-14"), ("TBD", None), ("—", None), ("", None), ("to be announced", None),
])
def test_dates(text: str, expected: str | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["soon", "July 35, 2025", "2025-02-30", "Juno 3, 2025", "07/14/2025"])
def test_what_is_not_a_date_says_so(text: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_date(text)


TABLE_HEAD = "### 2025-04-28: Models\n\n| Shutdown date | Model | Recommended replacement |\n|---|---|---|\n"


@pytest.mark.parametrize(("text", "line", "words"), [
    (TABLE_HEAD + "| 2025-07-28 | `a` | `b` |\n| 2025-07-28 | `c` | `d` | `e` |\n", 6, ["4 cells", "escaped"]),
    (TABLE_HEAD + "| July 35, 2025 | `a` | `b` |\n", 5, ["'Shutdown date'", "July 35, 2025", "not a date"]),
    (TABLE_HEAD + "| next spring | `a` | `b` |\n", 5, ["next spring", "TBD"]),
    (TABLE_HEAD + "| 2025-07-28 |  | `b` |\n", 5, ["names no model"]),
    ("## x\n\n| Shutdown date | Price |\n|---|---|\n| 2025-01-01 | $1 |\n", 3, ["no model column"]),
    ("# Deprecations\n\n### 2025-13-01: Models\n", 3, ["heading", "not a date"]),
], ids=["unescaped-pipe", "impossible-date", "words-for-a-date", "empty-model", "no-model-column", "bad-heading"])
def test_a_malformed_page_is_an_error_naming_the_line(text: str, line: int, words: list[str]) -> None:
    with pytest.raises(DeprecationsPageError) as caught:
        parse_deprecations(text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("text", ["", "# Deprecations\n\nNothing here yet.\n",
                                  "<html><body><div id='root'></div><script src='app.js'></script></body></html>",
                                  "| Model | Price |\n|---|---|\n| a | $1 |\n"],
                         ids=["empty", "prose", "javascript-app", "other-table"])
def test_a_page_without_deprecation_tables_is_an_error(text: str) -> None:
    with pytest.raises(DeprecationsPageError, match="no deprecation table found"):
        parse_deprecations(text)


# -- reading the page -----------------------------------------------------------------------------


def test_reading_a_file(tmp_path: Path) -> None:
    assert read_deprecations(str(DATA / "openai_2026.md")).startswith("## Deprecation history")
    with pytest.raises(RegistryUnavailable, match=r"cannot read the deprecations page .*missing.md.*weightkeeper.toml"):
        read_deprecations(str(tmp_path / "missing.md"))
    (tmp_path / "latin1.md").write_bytes("| Shutdown date | Modèle |\n".encode("latin-1"))
    with pytest.raises(DeprecationsPageError, match="not UTF-8"):
        read_deprecations(str(tmp_path / "latin1.md"))


def test_reading_a_url_retries_and_an_unreachable_one_is_unavailable() -> None:
    html = (DATA / "openai_html.html").read_bytes()

    def route(request):
        if request.path == "/docs/deprecations":
            return Reply(200, html, {"Content-Type": "text/html; charset=utf-8"})
        return Reply(404, b"not found", {"Content-Type": "text/plain"})

    waits: list[tuple[float, str]] = []
    fast = RetryPolicy(attempts=3, first_backoff=0.01)
    with FakeServer(route) as server:
        server.faults.append(Fault.http(503, {"Retry-After": "0"}))
        text = read_deprecations(f"{server.url}/docs/deprecations", policy=fast, sleep=lambda s: None,
                                 on_wait=lambda s, why: waits.append((s, why)))
        assert summary(parse_deprecations(text))[0] == ("o1-preview", "2025-07-28", "o3", "2025-04-28", True)
        assert len(waits) == 1 and "HTTP 503" in waits[0][1]
        with pytest.raises(RegistryUnavailable, match="HTTP 404"):
            read_deprecations(f"{server.url}/docs/moved", policy=fast, sleep=lambda s: None)
        url = server.url
    with pytest.raises(RegistryUnavailable, match="connection failed"):
        read_deprecations(f"{url}/docs/deprecations", policy=fast, sleep=lambda s: None, timeout=0.5)
