"""A provider's deprecations page, read into entries: which model shuts down when, and what replaces it.

Read because a model API says little about retirements ahead of time (OpenAI's `models.list`
gives a `shutdown_date` for some models only), while the provider's deprecations page
announces them months before: OpenAI publishes one (platform.openai.com/docs/deprecations,
written as markdown) with a section per announcement, `### 2025-04-28: o1-preview and o1-mini`,
holding tables such as

    | Shutdown date | Model / system | Recommended replacement |
    | ------------- | -------------- | ----------------------- |
    | 2025-07-28    | `o1-preview`   | `o3`                    |

The page has changed shape over the years, so it is read tolerantly: the columns are found by
what their headers say ("Shutdown date", "Deprecation date"; "Model", "Deprecated model",
"Legacy model", "Model snapshot", "Model / system"; "Recommended replacement", "Substitute
model"), other columns (prices) are ignored, one cell may name several models (aliases
separated by an escaped `\\|`, commas, "and"), endpoints such as `/v1/edits` are skipped,
subsection headings keep their section's date, dates come as 2025-07-14, 2025/07/14,
July 14, 2025 or 14 July 2025 (with words around them: "at earliest 2024-06-13"), and HTML
tables are read as well as markdown ones. A section saying fine-tuned models are not
affected marks its entries so (OpenAI wrote that of gpt-3.5-turbo-0613 in 2023).

What does not fit is an error naming the line, never a silently shorter list: a missing
deprecation would read as a withdrawn one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

from tools.registries.http import RetryPolicy, WaitReporter, request, tls_context
from weightkeeper.errors import RegistryUnavailable

MONTHS = {name: number for number, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], 1) for name in names}
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)"),  # ISO, also in a timestamp
    re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b"),
    re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(?P<year>\d{{4}})\b"),
)
NO_DATE = frozenset({"", "tbd", "tba", "-", "--", "---", "—", "–", "n/a", "unknown", "to be announced",
                     "to be determined"})
DATE_FORMATS = "2025-07-14, 2025/07/14, July 14, 2025 or 14 July 2025"

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_NAME_SEPARATORS = re.compile(r"\s*(?:\||,|;|\n|\s(?:and|or)\s)\s*")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_FINE_TUNES_UNAFFECTED = re.compile(
    r"fine[- ]?tun\w*\s+models?\b[^.]*?\b(?:not\s+(?:be\s+)?(?:affected|effected|impacted)|unaffected)", re.IGNORECASE)

SHUTDOWN_WORDS = ("shutdown", "shut down", "sunset", "retirement", "deprecation date")
MODEL_WORDS = ("model", "system", "snapshot")
REPLACEMENT_WORDS = ("replacement", "substitute", "successor", "alternative")


class DeprecationsPageError(ValueError):
    """The page does not read as a deprecations page; `line` says where (1-based), when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True, slots=True)
class Deprecation:
    """One model a deprecations table names.

    `shutdown_date` is an ISO date, or None where the page says "TBD"; `section_date` is the
    date of the announcement heading above the table, when it has one; `line` is the row's line.
    """

    model: str
    shutdown_date: str | None
    replacement: str | None
    section_date: str | None
    line: int
    fine_tunes_affected: bool = True


def read_deprecations(source: str, *, policy: RetryPolicy = RetryPolicy(), on_wait: WaitReporter | None = None,
                      sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0) -> str:
    """The page's text, from a file path or an http(s) URL; RegistryUnavailable when it cannot be had."""
    if re.match(r"^https?://", source):
        import httpx

        with httpx.Client(timeout=timeout, follow_redirects=True, verify=tls_context()) as client:
            return request(client, "GET", source, what=f"fetching the deprecations page {source}", policy=policy,
                           on_wait=on_wait, sleep=sleep).text
    path = Path(source)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeprecationsPageError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise RegistryUnavailable(
            f"cannot read the deprecations page {path}: {exc.strerror or exc}; "
            "fix `deprecations` in weightkeeper.toml or make the file readable"
        ) from exc


def parse_deprecations(text: str) -> list[Deprecation]:
    """Every model the page's deprecation tables name, in page order."""
    blocks = _HtmlBlocks.read(text) if re.search(r"<table\b", text, re.IGNORECASE) else _markdown_blocks(text)
    entries = _entries(blocks)
    if not entries:
        raise DeprecationsPageError(
            "no deprecation table found (a table with a 'Shutdown date' and a 'Model' column); is this the "
            "provider's deprecations page? A page rendered by JavaScript holds no tables: point `deprecations` "
            "at its markdown or HTML source, or at a saved copy"
        )
    return entries


def by_model(entries: list[Deprecation]) -> dict[str, Deprecation]:
    """The entry that holds for each model: a later announcement supersedes an earlier one, and within
    one announcement the earlier shutdown counts."""
    chosen: dict[str, Deprecation] = {}
    for entry in entries:
        held = chosen.get(entry.model)
        if held is None or _supersedes(entry, held):
            chosen[entry.model] = entry
    return chosen


def _supersedes(entry: Deprecation, held: Deprecation) -> bool:
    if (entry.section_date or "") != (held.section_date or ""):
        return (entry.section_date or "") > (held.section_date or "")
    return entry.shutdown_date is not None and (held.shutdown_date is None or entry.shutdown_date < held.shutdown_date)


def parse_date(text: str) -> str | None:
    """The first date in `text` as an ISO date; None for "TBD" and the like. Raises ValueError otherwise."""
    found = find_date(text)
    if found is None and _clean(text).lower().rstrip(".") not in NO_DATE:
        raise ValueError(f"{text.strip()!r} is not a date (expected {DATE_FORMATS}, or TBD)")
    return found


def find_date(text: str) -> str | None:
    """The first date written in `text` as an ISO date, None when it holds none; ValueError for an impossible one."""
    matches = [match for pattern in _DATE_PATTERNS if (match := pattern.search(text))]
    if not matches:
        return None
    match = min(matches, key=lambda m: m.start())
    month_text = match.group("month")
    month = int(month_text) if month_text.isdigit() else MONTHS.get(month_text.lower())
    if month is None:
        raise ValueError(f"{match.group(0)!r} is not a date: {month_text!r} is no month")
    try:
        return date(int(match.group("year")), month, int(match.group("day"))).isoformat()
    except ValueError as exc:
        raise ValueError(f"{match.group(0)!r} is not a date ({exc})") from exc


# -- the page as blocks: headings, prose, tables ------------------------------------------------


@dataclass(slots=True)
class _Heading:
    line: int
    level: int
    text: str


@dataclass(slots=True)
class _Prose:
    line: int
    text: str


@dataclass(slots=True)
class _Table:
    line: int
    header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


_Block = _Heading | _Prose | _Table


def _markdown_blocks(text: str) -> list[_Block]:
    lines = text.splitlines()
    blocks: list[_Block] = []
    index = 0
    while index < len(lines):
        line, number = lines[index], index + 1
        heading = _HEADING.match(line)
        if heading:
            blocks.append(_Heading(number, len(heading.group(1)), heading.group(2)))
        elif index + 1 < len(lines) and _UNESCAPED_PIPE.search(line) and _is_separator(lines[index + 1]):
            table = _Table(number, _cells(line))
            index += 2
            while index < len(lines) and lines[index].strip() and _UNESCAPED_PIPE.search(lines[index]):
                table.rows.append((index + 1, _cells(lines[index])))
                index += 1
            blocks.append(table)
            continue
        elif line.strip():
            blocks.append(_Prose(number, line))
        index += 1
    return blocks


def _cells(line: str) -> list[str]:
    """A markdown table row's cells; an escaped `\\|` stays inside its cell as `|`."""
    cells = _UNESCAPED_PIPE.split(line.strip())
    if cells and not cells[0].strip():
        cells = cells[1:]
    if cells and not cells[-1].strip():
        cells = cells[:-1]
    return [cell.replace("\\|", "|").strip() for cell in cells]


def _is_separator(line: str) -> bool:
    cells = _cells(line)
    return bool(cells) and all(_SEPARATOR_CELL.match(cell.replace(" ", "")) for cell in cells)


class _HtmlBlocks(HTMLParser):
    """Headings, prose and tables of an HTML page, with the line each starts on."""

    PROSE_ENDS = frozenset({"p", "div", "li", "section", "article", "ul", "ol", "body"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self._heading: _Heading | None = None
        self._table: _Table | None = None
        self._row: tuple[int, list[str]] | None = None
        self._cell: list[str] | None = None
        self._prose: list[str] = []
        self._prose_line = 0

    @classmethod
    def read(cls, text: str) -> list[_Block]:
        parser = cls()
        parser.feed(text)
        parser.close()
        parser._flush_prose()
        return parser.blocks

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        if re.fullmatch(r"h[1-6]", tag) and self._table is None:
            self._flush_prose()
            self._heading = _Heading(line, int(tag[1]), "")
        elif tag == "table":
            self._flush_prose()
            self._table = _Table(line, [])
        elif tag == "tr" and self._table is not None:
            self._row = (line, [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag == "code" and self._cell is not None:
            self._cell.append("`")  # as markdown marks code, which is where a cell names its models

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self._heading.text = " ".join(self._heading.text.split())
            self.blocks.append(self._heading)
            self._heading = None
        elif tag == "code" and self._cell is not None:
            self._cell.append("`")
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            if not self._table.header:
                self._table.header = self._row[1]  # the first row names the columns, <th> or not
            else:
                self._table.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._table is not None:
            self.blocks.append(self._table)
            self._table = None
        elif tag in self.PROSE_ENDS:
            self._flush_prose()

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.text += data
        elif self._cell is not None:
            self._cell.append(data)
        elif self._table is None and data.strip():
            if not self._prose:
                self._prose_line = self.getpos()[0]
            self._prose.append(data)

    def _flush_prose(self) -> None:
        if self._prose:
            self.blocks.append(_Prose(self._prose_line, " ".join("".join(self._prose).split())))
            self._prose = []


# -- blocks to entries ---------------------------------------------------------------------------


def _entries(blocks: list[_Block]) -> list[Deprecation]:
    """Entries of every deprecation table, dated by the announcement heading above them.

    A heading with a date opens a section; a heading without one either closes it (at the same
    level or above: "## Deprecation history") or is a subsection of it ("#### Base GPT models").
    Prose anywhere in a section may say that fine-tuned models are spared (it follows the table).
    """
    placed: list[tuple[int, str | None]] = []  # per block: its section's number and date
    spared: set[int] = set()
    section, section_date, section_level = 0, None, 0
    for block in blocks:
        if isinstance(block, _Heading):
            heading_date = _dated(block.text, block.line)
            if heading_date is not None or block.level <= section_level:
                section += 1
                section_date, section_level = heading_date, (block.level if heading_date else 0)
        elif isinstance(block, _Prose) and _FINE_TUNES_UNAFFECTED.search(_clean(block.text)):
            spared.add(section)
        placed.append((section, section_date))
    entries: list[Deprecation] = []
    for block, (number, dated) in zip(blocks, placed):
        if isinstance(block, _Table):
            entries += _table_entries(block, dated, affected=number not in spared)
    return entries


def _dated(heading: str, line: int) -> str | None:
    try:
        return find_date(heading)
    except ValueError as exc:
        raise DeprecationsPageError(f"heading {heading!r}: {exc}", line) from exc


def _table_entries(table: _Table, section_date: str | None, *, affected: bool) -> list[Deprecation]:
    header = [_clean(cell).lower() for cell in table.header]
    shutdown = _column(header, SHUTDOWN_WORDS)
    model = _column(header, MODEL_WORDS, avoid=("price", "date") + REPLACEMENT_WORDS)
    if shutdown is None:
        return []  # a table of something else (prices, notice periods)
    if model is None:
        raise DeprecationsPageError(
            f"the table with columns {table.header} has a shutdown date but no model column (expected a header "
            "such as 'Model', 'Deprecated model', 'Legacy model' or 'Model / system')", table.line)
    replacement = _column(header, REPLACEMENT_WORDS)
    entries = []
    for line, cells in table.rows:
        if len(cells) > len(header):
            raise DeprecationsPageError(
                f"the row has {len(cells)} cells but the table's header has {len(header)}; a '|' inside a cell "
                "must be escaped as '\\|'", line)
        cells = cells + [""] * (len(header) - len(cells))
        if not _clean(cells[model]):
            raise DeprecationsPageError(f"the row names no model in its '{table.header[model]}' column", line)
        try:
            shutdown_date = parse_date(cells[shutdown])
        except ValueError as exc:
            raise DeprecationsPageError(f"'{table.header[shutdown]}': {exc}", line) from exc
        successor = None if replacement is None else ", ".join(_names(cells[replacement])) or None
        entries += [Deprecation(name, shutdown_date, successor, section_date, line, affected)
                    for name in _names(cells[model])]
    return entries


def _column(header: list[str], words: tuple[str, ...], avoid: tuple[str, ...] = ()) -> int | None:
    for index, name in enumerate(header):
        if any(word in name for word in words) and not any(word in name for word in avoid):
            return index
    return None


def _names(cell: str) -> list[str]:
    """The model ids a cell names: its code spans when it has any (the words around them are prose), else
    its comma-, pipe- or "and"-separated parts. Endpoints (`/v1/edits`) and prose ("View transition
    guide") are not models."""
    text = _TAG.sub("", _BREAK.sub("\n", _LINK.sub(r"\1", cell)))
    spans = _CODE_SPAN.findall(text)
    names = []
    for piece in (part for chunk in (spans or [text]) for part in _NAME_SEPARATORS.split(chunk)):
        name = re.sub(r"\([^)]*\)", "", piece).strip().strip("`*_\"' ").rstrip("*†‡¹²³")
        if _MODEL_ID.match(name) and name not in names:
            names.append(name)
    return names


def _clean(text: str) -> str:
    """Cell or prose text without markdown links, code marks, emphasis or tags."""
    return " ".join(_TAG.sub("", _LINK.sub(r"\1", text)).replace("`", "").replace("**", "").split())
