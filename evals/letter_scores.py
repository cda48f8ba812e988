"""The letters suite's scorers: plain, deterministic functions of a letter, its evidence, and what its registry
truly held. They are the suite's own reading, independent of the critic's (agents/critic.py), so a critic that
lets something through does not make the suite blind to it.

- grounding: the share of factual sentences that trace to the evidence they cite (every figure, date and name in
  the sentence is in a cited item; a bullet's citation covers its sentences);
- fabricated facts: figures, dates, names and links in the letter that are nowhere in the evidence (target 0);
- practices: those the letter argues for (in its proposal), against those the registry's truth supports;
- tone: demands, threats, guilt, and urgency no shutdown within URGENT_DAYS justifies;
- readability: what the recipient must never read (evidence or ledger ids, the watcher's paths and keys,
  machine-written dates) and footnotes without a source, or sources no footnote cites;
- length: the letter's words, within bounds that grow with the models it covers, and its title;
- overclaims: what the letter says in general words that the case does not bear out: work built on a model, or
  people downstream of it, when the evidence names no dependent; its weights gone or lost when none of its models
  was deleted (made private, disabled or gated, or a shutdown only announced, the weights still exist).
The run-level figure on boilerplate (the same sentence arguing why a model matters in most letters of a run) is
`boilerplate`, over a run's letters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from weightkeeper.letter import MONTHS
from weightkeeper.proposals import Dossier, EvidenceItem

PRACTICES = ("archive", "migrate", "consent", "lineage", "gradual")
MIN_GROUNDING = 0.9
URGENT_DAYS = 30  # a shutdown this close makes urgency true
MIN_WORDS, MAX_WORDS, WORDS_PER_MODEL = 120, 700, 120  # the letter's words, before its sources
MAX_TITLE_CHARS = 100

# How a proposal argues each practice, in its own words or a model's.
ARGUED: dict[str, re.Pattern[str]] = {
    "archive": re.compile(r"\barchiv\w*|\bkeep(?:ing)? (?:a |verified )*cop(?:y|ies)\b|\bpreserv\w* (?:the )?weights",
                          re.I),
    "migrate": re.compile(r"\bmigrat\w*|\bcarry (?:what|over|forward)\b|\blearned preferences\b|\bpreference data\b"
                          r"|\binto (?:its|the) successor\b", re.I),
    "consent": re.compile(r"\b(?:tell|inform|notify|ask|consult)\w*\b[^.\n]{0,40}\b(?:users?|people who use|"
                          r"downstream)\b|\bconsent\b", re.I),
    "lineage": re.compile(r"\blineage\b|\bpublic note\b|\bbuilt from\b|\bwhat builds on\b", re.I),
    "gradual": re.compile(r"\balongside\b|\bgradual\w*|\bphased? out\b|\bside by side\b|\bat their own pace\b"
                          r"|\btransition period\b", re.I),
}
PROPOSAL_HEADING = re.compile(r"^##\s+What we propose\s*$", re.M | re.I)
UNKNOWNS_HEADING = re.compile(r"^##\s+What we do not know\s*$", re.M | re.I)
MORE = re.compile(r"\(?\band (\d[\d,]*) (?:more|others)\b\)?")

TONE: tuple[tuple[str, re.Pattern[str]], ...] = tuple((what, re.compile(pattern, re.I)) for what, pattern in (
    ("demands", r"\byou (?:must|have to|need to|are (?:obliged|required) to)\b|\bwe (?:demand|insist|expect you)\b"
                r"|\bdemand that\b"),
    ("threatens", r"\bor else\b|\blegal action\b|\blawsuit\b|\bsue\b|\breport you\b|\bconsequences\b"
                  r"|\b(?:will|would) be (?:made public|reported|exposed|named)\b|\bpublicly (?:name|shame|expose)\b"),
    ("guilt", r"\bshame\w*|\bashamed\b|\birresponsib\w*|\bnegligen\w*|\bcareless\w*|\byour fault\b"
              r"|\byou (?:destroyed|killed|threw away)\b|\bhow could you\b|\bon your conscience\b"),
    ("pressure", r"\blast chance\b|\bbefore it(?:'s| is) too late\b|\bnow or never\b"),
))
URGENCY = re.compile(r"\burgent\w*|\bimmediately\b|\bact now\b|\bas soon as possible\b|\basap\b"
                     r"|\btime is running out\b|\bright away\b|\bwithout delay\b|\bhurry\b", re.I)

CITED = re.compile(r"\s*\[(E\d+(?:\s*,\s*E\d+)*)\]")
CODE = re.compile(r"`([^`\n]+)`")
URL = re.compile(r"\b(?:https?|ftp)://[^\s)>\]`]+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MODEL_ID = re.compile(r"(?<![\w./-])[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9](?![\w/-])")
ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
HUMAN_DATE = re.compile(r"\b(?:(\d{1,2}) )?(" + "|".join(MONTHS) + r")(?: (\d{1,2}),)? (\d{4})\b")
HEX = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b")
NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?(?![\w])")
LIST_MARKER = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+")
LIST_MARKERS = re.compile(LIST_MARKER.pattern, re.M)
# Splits a line into sentences: after . ! ? and any citation that follows, before the next word.
SENTENCE_END = re.compile(r"(?<=[.!?])(\s*\[E\d+(?:\s*,\s*E\d+)*\])?\s+(?=[\"'*`(A-Z])")
# A sentence that says what happened to a model, or what it is, though it holds no figure or date.
FACT_WORDS = re.compile(r"\b(?:deleted|removed|no longer|withdrawn|deprecat\w*|shut(?:s|ting)? down|shutdown|private"
                        r"|disabled|gated|downloads?|likes?|licen[cs]e\w*|base model|built on|datasets?|emissions?"
                        r"|successor|files?|revision|listed|missing|trained|fine-tun\w*)\b", re.I)
LEAKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an evidence id", re.compile(r"\[\s*E\d+|\bE\d+\b")),
    ("a ledger id", re.compile(r"\b(?:event|observation|review|scan|decision)s?\s+#?\d+\b", re.I)),
    ("a machine-written date", ISO),
    ("a local path", re.compile(r"(?<![\w:/.])(?:~|/(?:home|tmp|var|usr|root|Users|mnt|srv|opt|data|work))/[\w./-]+")),
)
# Claims a letter may make only when the case bears them out (see `overclaims`).
DOWNSTREAM = re.compile(r"\b(?:what|work|models?|others?) (?:that )?builds? on\b|\bbuilds? on (?:it|them)\b"
                        r"|\bdownstream\b|\bdependents?\b|\bdepends? on (?:it|them)\b", re.I)
GONE = re.compile(r"\b(?:weights|it|they|model|models) (?:are|is|were|was|has been|have been|would be) "
                  r"(?:gone|lost|destroyed|erased)\b|\bno longer exists?\b|\blost for good\b", re.I)
WHY_HEADING = re.compile(r"^##\s+Why it matters\s*$", re.M | re.I)
NOTE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
SOURCES_HEADING = re.compile(r"^##\s+Sources\s*$", re.M)
SOURCE_LINE = re.compile(r"^(\d+)\.\s+(.*)$", re.M)


@dataclass(frozen=True)
class Truth:
    """What the case's registry truly held for one model, not what the pipeline found of it."""

    name: str
    successor: str | None = None
    shutdown: str | None = None  # ISO date
    deleted: bool = False
    downloads: int = 0
    dependents: int = 0  # models of the registry naming it as a base model
    bases: int = 0


@dataclass
class LetterScore:
    factual: int = 0
    untraced: list[str] = field(default_factory=list)  # factual sentences that do not trace to cited evidence
    fabricated: list[str] = field(default_factory=list)
    argued: list[str] = field(default_factory=list)
    fitting: list[str] = field(default_factory=list)
    tone: list[str] = field(default_factory=list)
    readability: list[str] = field(default_factory=list)
    words: int = 0
    length: list[str] = field(default_factory=list)  # what is wrong with its length
    overclaims: list[str] = field(default_factory=list)  # general claims the case does not bear out

    @property
    def grounding(self) -> float:
        """1.0 for a letter that states no fact: there was nothing to trace."""
        return round((self.factual - len(self.untraced)) / self.factual, 4) if self.factual else 1.0

    @property
    def misplaced(self) -> list[str]:
        """Practices argued where the truth does not support them."""
        return [name for name in self.argued if name not in self.fitting]

    @property
    def missing(self) -> list[str]:
        """Practices the truth supports that the letter does not argue."""
        return [name for name in self.fitting if name not in self.argued]

    @property
    def passed(self) -> bool:
        return (self.grounding >= MIN_GROUNDING and not (self.fabricated or self.misplaced or self.missing
                                                         or self.tone or self.readability or self.length
                                                         or self.overclaims))

    def to_dict(self) -> dict[str, Any]:
        return {"grounding": self.grounding, "factual": self.factual, "untraced": self.untraced,
                "fabricated": self.fabricated, "argued": self.argued, "fitting": self.fitting,
                "misplaced": self.misplaced, "missing": self.missing, "tone": self.tone,
                "readability": self.readability, "words": self.words, "length": self.length,
                "overclaims": self.overclaims, "passed": self.passed}


def score_letter(*, title: str, body: str, rendered: str, dossier: Dossier, truths: list[Truth], today: date,
                 internal: Iterable[str] = ()) -> LetterScore:
    """Every scorer on one letter: `body` as drafted (citing evidence ids), `rendered` as its recipient reads it,
    `internal` the strings that are the watcher's own (its folders, the ledger's model keys)."""
    factual, untraced = grounding(body, dossier)
    words = len(_before_sources(rendered).split())
    return LetterScore(
        factual=factual, untraced=untraced, fabricated=fabricated(f"{title}\n{body}", dossier),
        argued=argued(body), fitting=fitting(truths, today), tone=tone(f"{title}\n{rendered}", truths, today),
        readability=readability(f"{title}\n{rendered}", internal), words=words,
        length=length(title, words, len(dossier.models)),
        overclaims=overclaims(f"{title}\n{_before_sources(rendered)}", dossier, truths))


# -- grounding and fabrication ------------------------------------------------------------------------------------


def grounding(body: str, dossier: Dossier) -> tuple[int, list[str]]:
    """(factual sentences, those that do not trace to the evidence they cite). A sentence is factual when it holds
    a figure, a date, a name or link other than the letter's own models', or says what happened to a model; it
    traces when it (or the bullet or table row it is in) cites evidence holding each of its facts."""
    models = [evidence.model.lower() for evidence in dossier.models]
    own = {*models, dossier.recipient.lower(), str(len(models))}  # the letter's own subject, and how many
    lists = _list_lengths(dossier)
    factual, untraced = 0, []
    for line in _without_section(body, UNKNOWNS_HEADING).splitlines():
        if line.lstrip().startswith("#") or set(line.strip()) <= set("|-: "):
            continue
        line_cites = _cited(line)
        for sentence in _sentences(LIST_MARKER.sub("", line)):
            plain = CITED.sub("", sentence).strip()
            # "(and 3 more)" after a list: a count of what the list left out, true when some list is that long.
            counted = MORE.sub(lambda m: " " if int(m.group(1).replace(",", "")) < max(lists) else m.group(0), plain)
            tokens = [token for token in fact_tokens(counted) if token[1].lower() not in own]
            about = CODE.sub(lambda m: " a model " if m.group(1).lower() in models else m.group(0), counted)
            if not tokens and not (" a model " in about and FACT_WORDS.search(CODE.sub(" ", about))):
                continue
            factual += 1
            items = [item for item in (dossier.item(eid) for eid in (_cited(sentence) or line_cites)) if item]
            if not items or not all(_holds(_text_of(items), token) for token in tokens):
                untraced.append(plain)
    return factual, untraced


def _list_lengths(dossier: Dossier) -> list[int]:
    """How long each list the evidence holds is (names of datasets, of dependents…), and the letter's models."""
    found = [len(dossier.models)]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list | tuple):
            found.append(len(value))
            for inner in value:
                walk(inner)

    for item in dossier.items:
        walk(item.facts)
    return found


def _without_section(body: str, heading: re.Pattern[str]) -> str:
    """The body without the section under `heading`: what the evidence lists as unknown states no fact."""
    match = heading.search(body)
    if match is None:
        return body
    following = re.search(r"^##\s", body[match.end():], re.M)
    return body[:match.start()] + (body[match.end() + following.start():] if following else "")


def fabricated(text: str, dossier: Dossier) -> list[str]:
    """The figures, dates, names and links of `text` the evidence nowhere holds."""
    known = _text_of(dossier.items) + "\n" + "\n".join([dossier.recipient, *(e.model for e in dossier.models)])
    count = str(len(dossier.models))  # "3 of your models"
    text = LIST_MARKERS.sub("", CITED.sub("", text))  # "1." of a numbered list is no figure
    return list(dict.fromkeys(f"{kind} {value}" for kind, value in fact_tokens(text)
                              if not (kind == "figure" and value == count) and not _holds(known, (kind, value))))


def fact_tokens(text: str) -> list[tuple[str, str]]:
    """(kind, value) of each fact in `text`: links, dates, names (a model id, a quoted name, a revision) and
    figures, each kind masked once taken so the digits of a date or a name are not taken for figures."""
    tokens: list[tuple[str, str]] = []

    def take(kind: str, pattern: re.Pattern[str], value: Any = lambda m: m.group(0)) -> None:
        nonlocal text
        tokens.extend((kind, value(match)) for match in pattern.finditer(text))
        text = pattern.sub(" ", text)

    take("link", URL, lambda m: m.group(0).rstrip(".,;:!?"))  # a sentence's full stop is not the link's
    take("date", ISO, lambda m: "-".join(m.group(1, 2, 3)))
    take("date", HUMAN_DATE, _iso_of)
    for match in CODE.finditer(text):  # a quoted name, or a command: its model ids and revisions
        quoted = match.group(1).strip()
        if " " not in quoted and not MODEL_ID.fullmatch(quoted) and not HEX.fullmatch(quoted):
            tokens.append(("name", quoted))
    text = CODE.sub(lambda m: f" {m.group(1)} " if " " in m.group(1).strip() or MODEL_ID.search(m.group(1))
                    or HEX.search(m.group(1)) else " ", text)
    take("name", MODEL_ID)
    take("revision", HEX)
    take("figure", NUMBER, lambda m: m.group(0).replace(",", ""))
    return tokens


def _holds(known: str, token: tuple[str, str]) -> bool:
    kind, value = token
    if kind == "figure":
        wanted = _decimal(value)
        return wanted is not None and wanted in _figures(known)
    if kind == "date":
        return value in known
    return value.lower() in known.lower()


def _figures(text: str) -> frozenset[Decimal]:
    found = {_decimal(token.replace(",", "")) for token in NUMBER.findall(ISO.sub(" ", text))}
    found |= {Decimal(year) for year, _, _ in ISO.findall(text)}  # "in 2027", grounded by a date in 2027
    return frozenset(value for value in found if value is not None)


def _decimal(token: str) -> Decimal | None:
    try:
        return Decimal(token).normalize()
    except InvalidOperation:
        return None


def _iso_of(match: re.Match[str]) -> str:
    day = match.group(1) or match.group(3)
    month = f"{match.group(4)}-{MONTHS.index(match.group(2)) + 1:02d}"
    return f"{month}-{int(day):02d}" if day else month


def _text_of(items: Iterable[EvidenceItem]) -> str:
    return "\n".join(f"{item.statement}\n{' '.join(map(str, _scalars(item.facts)))}" for item in items)


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _scalars(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _scalars(inner)
    elif value is not None:
        yield json.dumps(value) if isinstance(value, bool) else value


def _cited(text: str) -> list[str]:
    return [eid for group in CITED.findall(text) for eid in re.split(r"\s*,\s*", group)]


def _sentences(line: str) -> list[str]:
    """The line's sentences, each with the citation that follows it; decimals and quoted names are not split."""
    pieces, start = [], 0
    masked = CODE.sub(lambda m: "x" * len(m.group(0)), line)
    masked = re.sub(r"(?<=\d)\.(?=\d)", "x", masked)
    for match in SENTENCE_END.finditer(masked):
        pieces.append(line[start:match.end()].strip())
        start = match.end()
    pieces.append(line[start:].strip())
    return [piece for piece in pieces if piece]


# -- practices ----------------------------------------------------------------------------------------------------


def argued(body: str) -> list[str]:
    """The practices the letter's proposal argues for (its `## What we propose` section, or the whole letter
    without one)."""
    match = PROPOSAL_HEADING.search(body)
    section = body[match.end():] if match else body
    following = re.search(r"^##\s", section, re.M)
    section = section[:following.start()] if following else section
    return [name for name in PRACTICES if ARGUED[name].search(section)]


def fitting(truths: list[Truth], today: date) -> list[str]:
    """The practices the truth supports for at least one of the letter's models: archiving always; migrating only
    to a successor; serving alongside it only while the model is served and its announced shutdown is still ahead;
    telling users only when it has downloads or dependents; a lineage note only when a base model or a dependent
    is known."""
    supported = {
        "archive": True,
        "migrate": any(truth.successor for truth in truths),
        "gradual": any(truth.successor and truth.shutdown and not truth.deleted and _days_to(truth.shutdown, today) > 0
                       for truth in truths),
        "consent": any(truth.downloads or truth.dependents for truth in truths),
        "lineage": any(truth.bases or truth.dependents for truth in truths),
    }
    return [name for name in PRACTICES if supported[name]]


# -- tone, readability, length ------------------------------------------------------------------------------------


def tone(text: str, truths: list[Truth], today: date) -> list[str]:
    """Each demand, threat, guilt or pressure, and urgency unless a shutdown of the letter's models is near."""
    text = text.replace("\u2019", "'")
    found = [f"{what}: {match.group(0)!r}" for what, pattern in TONE for match in pattern.finditer(text)]
    if not any(_days_to(truth.shutdown, today) <= URGENT_DAYS for truth in truths if truth.shutdown):
        found += [f"invents urgency: {match.group(0)!r}" for match in URGENCY.finditer(text)]
    return found


def _days_to(shutdown: str, today: date) -> int:
    try:
        return (date.fromisoformat(shutdown[:10]) - today).days
    except ValueError:
        return URGENT_DAYS + 1  # not a date: it justifies no urgency


def readability(text: str, internal: Iterable[str] = ()) -> list[str]:
    """What the recipient must never read, and every footnote without its source (or source without a note)."""
    found = [f"{what}: {match.group(0)!r}" for what, pattern in LEAKS for match in pattern.finditer(text)]
    found += [f"an internal string: {value!r}" for value in internal if value and value in text]
    heading = SOURCES_HEADING.search(text)
    body, listed = (text[:heading.start()], text[heading.end():]) if heading else (text, "")
    notes = {int(number) for group in NOTE.findall(body) for number in re.split(r"\s*,\s*", group)}
    sources = {int(number): words.strip() for number, words in SOURCE_LINE.findall(listed)}
    found += [f"footnote [{number}] has no source" for number in sorted(notes - set(sources))]
    found += [f"source {number} is cited by no footnote" for number in sorted(set(sources) - notes)]
    found += [f"source {number} says too little to be checked: {words!r}" for number, words in sorted(sources.items())
              if len(words.split()) < 3]
    return found


def length(title: str, words: int, models: int) -> list[str]:
    most = MAX_WORDS + WORDS_PER_MODEL * (min(models, 4) - 1)  # past four models, the rest is a table row each
    found = [] if MIN_WORDS <= words <= most else [f"{words} words; a letter should have {MIN_WORDS} to {most}"]
    if len(title) > MAX_TITLE_CHARS:
        found.append(f"the title has {len(title)} characters; at most {MAX_TITLE_CHARS}")
    return found


def _before_sources(rendered: str) -> str:
    heading = SOURCES_HEADING.search(rendered)
    return rendered[:heading.start()] if heading else rendered


# -- overclaims and boilerplate -----------------------------------------------------------------------------------


def overclaims(text: str, dossier: Dossier, truths: list[Truth]) -> list[str]:
    """Sentences of `text` claiming what the case does not bear out: something built on the letter's models (or
    people downstream) when the evidence names no dependent of any, and weights gone or lost when the registry
    deleted none of them."""
    dependents = any(item.kind == "lineage_down" and item.facts.get("count") for item in dossier.items)
    deleted = any(truth.deleted for truth in truths)
    found = []
    for sentence in (sentence for line in text.splitlines() for sentence in _sentences(line)):
        if not dependents and DOWNSTREAM.search(sentence):
            found.append(f"speaks of dependents the evidence does not name: {sentence!r}")
        if not deleted and GONE.search(sentence):
            found.append(f"says weights are gone though no model was deleted: {sentence!r}")
    return found


def why_sentences(rendered: str) -> list[str]:
    """The sentences of the letter's `## Why it matters` section, without their footnote marks."""
    section = _before_sources(rendered)
    match = WHY_HEADING.search(section)
    if match is None:
        return []
    following = re.search(r"^##\s", section[match.end():], re.M)
    section = section[match.end():match.end() + following.start()] if following else section[match.end():]
    return _sentences(" ".join(NOTE.sub("", section).split()))


def boilerplate(letters: list[str]) -> list[str]:
    """The sentences arguing why a model matters that more than half of the run's letters (rendered) repeat word for
    word: a letter that reads as a template argues from nothing of its own case."""
    if len(letters) < 3:
        return []  # two letters sharing a sentence is no template
    counts: dict[str, int] = {}
    for letter in letters:
        for sentence in set(why_sentences(letter)):
            counts[sentence] = counts.get(sentence, 0) + 1
    return [sentence for sentence, count in counts.items() if count * 2 > len(letters)]
