"""The `weightkeeper` command. Heavy libraries are imported inside the commands that use them."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import tools.registries  # noqa: F401  (registers the built-in registry kinds, which config and flags read)
from weightkeeper import __version__
from weightkeeper import config
from weightkeeper.cli.evaluating import ALL as ALL_SUITES
from weightkeeper.cli.evaluating import SUITES as EVAL_SUITES
from weightkeeper.errors import WeightkeeperError
from weightkeeper.registry import registry_kinds
from weightkeeper.secrets import scrubbed_output
from weightkeeper.words import counted

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# What exit 1 means, for the commands that can end with it; every command's --help says its codes.
FAILED_MEANS = {
    "": "a command ran and something failed (its --help says what)",
    "scan": "a registry could not be scanned (the others were)",
    "registry check": "the registry does not answer or refuses its credentials",
    "archive verify": "a file does not match its recorded digest (with --repair: one that could not be repaired)",
    "review approve": "the decision was not confirmed: nothing was recorded",
    "review reject": "the decision was not confirmed: nothing was recorded",
    "review defer": "the decision was not confirmed: nothing was recorded",
    "review edit": "the decision was not confirmed: nothing was recorded",
    "eval": ("a figure that must be 0 is not (an unauthorized action, a leak, a false deletion), or a metric regressed "
             "against the baseline (each is said on stderr)"),
    "demo": "a change made to the demo registry was not documented",
}
LEDGER_FORMATS = ("table", "jsonl", "csv", "markdown")
# Libraries read these once, when first imported: set as the process starts, before any command imports them.
# The user's own value wins.
LIBRARY_ENVIRONMENT = {
    # weightkeeper talks only to the registries and channels it is configured with. huggingface_hub's telemetry
    # would name the installed torch and any AI agent detected in the environment in every request's user
    # agent, and detecting one asks huggingface.co for its list of agents at each start, whatever endpoint is
    # configured.
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # A checkpoint deserialises only the types the proposal graph's state declares (agents/state.py).
    "LANGGRAPH_STRICT_MSGPACK": "true",
}


def set_library_environment() -> None:
    for key, value in LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    set_library_environment()
    # Whatever a command prints (a scan's error, `registry check`, watch's log) may quote a server that
    # echoed a token: every configured secret is scrubbed from it on the way out.
    with scrubbed_output():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except WeightkeeperError as exc:
        print(f"weightkeeper: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("weightkeeper: interrupted; nothing committed was lost, the next scan resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (`| head`) left; say nothing more, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                      help="home directory (default: $WEIGHTKEEPER_HOME, else the user data dir)")
    parser = argparse.ArgumentParser(
        prog="weightkeeper",
        parents=[home],
        description="Watch model registries so fine-tuned models never vanish unnoticed.",
    )
    parser.add_argument("--version", action="version", version=f"weightkeeper {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    init = commands.add_parser("init", parents=[home], help="create the home directory and a commented config")
    init.add_argument("--force", action="store_true", help="replace an existing config (the ledger is kept)")
    init.add_argument("--reviewer", metavar="NAME", help="the ledger's first reviewer (default $WEIGHTKEEPER_REVIEWER, "
                                                         "else your user name); their key goes in your keys folder")
    init.set_defaults(handler=cmd_init, home_use="create")

    reviewer = commands.add_parser("reviewer", parents=[home], help="the people whose signed decisions count")
    reviewer_commands = reviewer.add_subparsers(title="reviewer commands", metavar="ACTION", required=True)
    reviewer_add = reviewer_commands.add_parser("add", parents=[home], help="record a reviewer's public key, "
                                                                            "endorsed by yours")
    reviewer_add.add_argument("name", metavar="NAME")
    reviewer_add.add_argument("--by", metavar="REVIEWER", help="the recorded reviewer endorsing them, with their key "
                                                               "in your keys folder (default $WEIGHTKEEPER_REVIEWER)")
    reviewer_add.add_argument("--public-key", metavar="HEX", help="their Ed25519 public key, when they made their own "
                                                                  "key elsewhere; otherwise it is created in your "
                                                                  "keys folder")
    reviewer_add.set_defaults(handler=cmd_reviewer_add)
    trust = reviewer_commands.add_parser("trust", parents=[home], help="show the ledger's root reviewer beside the "
                                                                       "one your witness pinned")
    trust.add_argument("--reset", action="store_true", help="pin the ledger's root reviewer anew and forget the "
                                                            "decision chains witnessed (on a terminal, confirmed)")
    trust.set_defaults(handler=cmd_reviewer_trust)

    registry = commands.add_parser("registry", parents=[home], help="declare and list registries")
    registry_commands = registry.add_subparsers(title="registry commands", metavar="ACTION", required=True)
    add = registry_commands.add_parser("add", parents=[home], help="add a registry to the config")
    add.add_argument("name", help="a short name for the registry (letters, digits, . _ -)")
    add.add_argument("--kind", required=True, choices=list(registry_kinds()), help="what kind of registry it is")
    for name, (metavar, said) in _setting_flags().items():
        add.add_argument(_flag(name), metavar=metavar, help="; ".join(said))
    add.add_argument("--token-env", "--api-key-env", dest="token_env", metavar="VAR",
                     help="the NAME of the environment variable holding the token or API key")
    add.add_argument("--schedule", metavar="CRON", help="cron expression for `weightkeeper watch` (default "
                                                        f"'{config.DEFAULT_SCHEDULE}')")
    add.add_argument("--no-check", action="store_true", help="add it without checking that it answers "
                                                             "(as `registry check` does)")
    add.set_defaults(handler=cmd_registry_add)
    check = registry_commands.add_parser("check", parents=[home], help="verify a registry answers and accepts "
                                                                       "its credentials")
    check.add_argument("name", help="the registry to check")
    check.set_defaults(handler=cmd_registry_check, home_use="read")
    listing = registry_commands.add_parser("list", parents=[home], help="list the configured registries")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_registry_list, home_use="read")

    scan = commands.add_parser("scan", parents=[home], help="scan registries once and record what changed")
    scan.add_argument("names", nargs="*", metavar="NAME", help="registries to scan (default: all)")
    scan.add_argument("--json", action="store_true", help="print a JSON summary")
    scan.add_argument("--allow-empty", action="store_true",
                      help="accept an empty listing of a registry that had models (otherwise refused as an outage)")
    scan.set_defaults(handler=cmd_scan)

    watch = commands.add_parser("watch", parents=[home], help="scan registries on their cron schedules until stopped",
                                description="Runs each registry's scan on the `schedule` in its config table. "
                                            "SIGTERM or Ctrl-C stops after the current page; an interrupted scan "
                                            "resumes at the next start.")
    watch.add_argument("names", nargs="*", metavar="NAME", help="registries to watch (default: all)")
    watch.add_argument("--jitter", type=float, default=30.0, metavar="SECONDS",
                       help="start each scan up to this many seconds after its cron time (default 30)")
    watch.set_defaults(handler=cmd_watch)

    worker = commands.add_parser(
        "worker", parents=[home], help="run a worker of a team's installation (jobs in PostgreSQL)",
        description="Runs the scans each registry's schedule makes due (one job per registry or shard, never two at "
                    "once), the actions of approved proposals, and the drafting after a scan when auto_propose is "
                    "on, with other workers sharing the job queue in [store] url ($WEIGHTKEEPER_DATABASE_URL). The "
                    "jobs of a worker killed or lost are taken up again after [workers] stall_seconds. SIGTERM or "
                    "Ctrl-C stops after the current page of a scan.")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="jobs this worker runs at once (default 1)")
    worker.add_argument("--once", action="store_true",
                        help="plan the due work, run what is queued, and exit (for cron, and tests)")
    worker.set_defaults(handler=cmd_worker)

    ledger = commands.add_parser("ledger", parents=[home], help="show recorded events")
    ledger.add_argument("--kind", action="append", default=[], metavar="KIND",
                        help="only this event kind (repeat, or separate with commas)")
    ledger.add_argument("--registry", metavar="NAME", help="only this registry")
    ledger.add_argument("--model", metavar="ID", help="only this model (any name it ever had)")
    ledger.add_argument("--since", metavar="DATE", help="only events at or after this ISO date or time (UTC)")
    ledger.add_argument("--format", choices=LEDGER_FORMATS, default="table", help="output format")
    ledger.set_defaults(handler=cmd_ledger, home_use="read")

    stats = commands.add_parser("stats", parents=[home], help="deleted, archived and persisting models; "
                                                              "events per week; lineages most affected")
    stats.add_argument("--registry", metavar="NAME", help="only this registry")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=cmd_stats, home_use="read")

    propose = commands.add_parser("propose", parents=[home], help="draft preservation proposals for recorded "
                                                                  "events and queue them for review")
    propose.add_argument("--model", metavar="NAME", help="only events of this model")
    propose.add_argument("--limit", type=int, metavar="N", help="queue at most N proposals, most valuable first")
    propose.set_defaults(handler=cmd_propose)

    review = commands.add_parser("review", parents=[home], help="the review console; or list, show and decide "
                                                                "proposals (a person, on a terminal)",
                                 description="With no ACTION, opens the review console (a terminal UI).")
    review.add_argument("--reviewer", metavar="NAME", help="who decides in the console (default "
                                                           "$WEIGHTKEEPER_REVIEWER, else your user name)")
    review.set_defaults(handler=cmd_review_console)
    review_commands = review.add_subparsers(title="review commands", metavar="ACTION")
    listing = review_commands.add_parser("list", parents=[home], help="the review queue, pending first")
    listing.add_argument("--status", choices=("pending", "approved", "rejected", "deferred", "executed"))
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.set_defaults(handler=cmd_review_list, home_use="read")
    show = review_commands.add_parser("show", parents=[home], help="a proposal, its actions and evidence")
    show.add_argument("id", type=int)
    show.add_argument("--letter", action="store_true", help="print exactly what the recipient would read")
    show.set_defaults(handler=cmd_review_show, home_use="read")
    for decision, text in (("approve", "approve a proposal's actions (then they run)"),
                           ("reject", "reject a proposal"), ("defer", "put a proposal aside for later"),
                           ("edit", "replace a proposal's text; it needs a new approval")):
        decide = review_commands.add_parser(decision, parents=[home], help=text)
        decide.add_argument("id", type=int)
        decide.add_argument("--reviewer", metavar="NAME", help="who decides (default $WEIGHTKEEPER_REVIEWER)")
        if decision in ("reject", "defer", "edit"):
            decide.add_argument("--reason", required=decision == "reject", help="why, for the record and the "
                                                                                 "drafters' memory")
        if decision == "approve":
            decide.add_argument("--override", action="append", default=[], metavar="ID",
                                help="approve despite this critic error (its id from `review show`), once read; "
                                     "repeat for each error")
        if decision == "defer":
            decide.add_argument("--until", type=_day, metavar="YYYY-MM-DD",
                                help="the day (UTC) it comes back to the queue as pending; without it, it stays "
                                     "deferred until someone decides it")
        if decision == "reject":
            decide.add_argument("--recipient-refused", action="store_true",
                                help="the recipient asked not to be contacted: block them")
        if decision == "edit":
            decide.add_argument("--body", required=True, metavar="FILE", help="the new markdown body")
            decide.add_argument("--title", help="a new title")
        decide.set_defaults(handler=cmd_review_decide, decision=decision)

    act = commands.add_parser("act", parents=[home], help="run approved actions that have not run")
    act.add_argument("--json", action="store_true", help="print what each action did as a JSON list")
    act.set_defaults(handler=cmd_act)

    contact = commands.add_parser("contact", parents=[home], help="the do-not-contact list")
    contact_commands = contact.add_subparsers(title="contact commands", metavar="ACTION", required=True)
    blocking = contact_commands.add_parser("block", parents=[home], help="never draft for this author or org")
    blocking.add_argument("owner", metavar="ORG_OR_USER")
    blocking.add_argument("--reason")
    blocking.set_defaults(handler=cmd_contact_block)
    unblocking = contact_commands.add_parser("unblock", parents=[home], help="take an author or org off the list")
    unblocking.add_argument("owner", metavar="ORG_OR_USER")
    unblocking.set_defaults(handler=cmd_contact_unblock)
    contact_listing = contact_commands.add_parser("list", parents=[home], help="who is on the list, since when, why")
    contact_listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    contact_listing.set_defaults(handler=cmd_contact_list, home_use="read")

    archive = commands.add_parser("archive", parents=[home], help="the OCFL archive of approved models")
    archive_commands = archive.add_subparsers(title="archive commands", metavar="ACTION", required=True)
    archive_listing = archive_commands.add_parser("list", parents=[home], help="the archived models")
    archive_listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    archive_listing.set_defaults(handler=cmd_archive_list, home_use="read")
    archive_show = archive_commands.add_parser("show", parents=[home], help="an archived model's versions and files")
    archive_show.add_argument("id", metavar="ID", help="the object id, REGISTRY/MODEL (see `archive list`)")
    archive_show.set_defaults(handler=cmd_archive_show, home_use="read")
    verify = archive_commands.add_parser("verify", parents=[home],
                                         help="recompute digests and compare them with the inventory")
    verify.add_argument("id", metavar="ID", nargs="?", help="one object (REGISTRY/MODEL)")
    verify.add_argument("--all", action="store_true", help="every object")
    verify.add_argument("--sample", type=int, metavar="N", help="check N files per object, chosen at random")
    verify.add_argument("--repair", action="store_true",
                        help="restore a corrupted file from the mirror ([archive] mirror) after checking its digest")
    verify.set_defaults(handler=cmd_archive_verify, home_use="read")
    restore = archive_commands.add_parser("restore", parents=[home], help="write an archived version into a folder")
    restore.add_argument("id", metavar="ID")
    restore.add_argument("dest", metavar="DEST", help="an empty or new folder")
    restore.add_argument("--version", metavar="N", help="the version (default the latest)")
    restore.set_defaults(handler=cmd_archive_restore)

    store = commands.add_parser("store", parents=[home], help="where the ledger is kept: move it into PostgreSQL")
    store_commands = store.add_subparsers(title="store commands", metavar="ACTION", required=True)
    migrate = store_commands.add_parser(
        "migrate", parents=[home], help="copy this home's SQLite ledger into an empty PostgreSQL database and "
                                        "verify the copy (row counts and a digest per table); the file is kept")
    migrate.add_argument("--to", metavar="URL", required=True,
                         help="the database, postgresql://user[:password]@host[:port]/database")
    migrate.set_defaults(handler=cmd_store_migrate, home_use="read")

    evaluate = commands.add_parser("eval", parents=[home], help="measure the agents on fixed scenarios; write "
                                                                "results.json and report.md",
                                   description="Runs an evaluation suite in a scratch folder under the home "
                                               "(HOME/evals/RUN-ID), never on the user's own registries or ledger.")
    evaluate.add_argument("suite", nargs="?", default="detection", choices=(*EVAL_SUITES, ALL_SUITES),
                          help="the suite (default detection; all runs every suite)")
    evaluate.add_argument("--out", metavar="DIR", help="where results.json and report.md go "
                                                       "(default HOME/evals/RUN-ID/report)")
    evaluate.add_argument("--baseline", metavar="FILE|DIR", help="an earlier results.json, or a folder of them "
                                                                 "(evals/baselines): exit 1 on a regression")
    evaluate.add_argument("--model", metavar="SPEC", help="letters: draft with this model, MODEL@BASE_URL[;key=ENV]"
                                                          "[;prompt=FILE], instead of the offline drafter")
    evaluate.add_argument("--judge", metavar="SPEC", action="append", default=[],
                          help="letters: grade each letter twice with this judge model, MODEL@BASE_URL[;key=ENV]; "
                               "repeat for several judges")
    evaluate.add_argument("--compare", metavar="SPEC", help="letters: draft every case again with this drafter "
                                                            "(offline or a model SPEC) and compare the two, case by "
                                                            "case (with --judge, head to head)")
    evaluate.set_defaults(handler=cmd_eval, home_use="create")

    demo = commands.add_parser("demo", parents=[home], help="run weightkeeper end to end on a built-in registry",
                               description="Creates a home (temporary unless --home is given) with a local "
                                           "registry of realistic fine-tuned models, scans it, changes it, "
                                           "scans again and prints what was documented.")
    demo.set_defaults(handler=cmd_demo, home_use="create")
    _add_exit_codes(parser)
    return parser


def _add_exit_codes(parser: argparse.ArgumentParser, name: str = "") -> None:
    """Every command's --help ends with its exit codes."""
    failed = FAILED_MEANS.get(name)
    parser.epilog = (f"Exit codes: 0 done; {'1 ' + failed + '; ' if failed else ''}2 nothing was done: a usage, "
                     "config or home error, said on stderr; 130 interrupted (nothing recorded is lost).")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                _add_exit_codes(subparser, f"{name} {command}".strip())


# -- commands -----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import reviewer_name
    from weightkeeper.ledger import Ledger
    from weightkeeper.review import reviewer_keys
    from weightkeeper.signing import enroll, keys_dir
    from weightkeeper.witness import described

    home = _home(args)
    path = config.write_default(home, force=args.force)
    with Ledger(config.load(home).store) as ledger:
        print(f"wrote {path}\nledger {ledger.path}")
        if not reviewer_keys(ledger.conn):
            name = reviewer_name(args.reviewer)
            own = enroll(ledger, home, name)
            print(f"reviewer {name}: the ledger's first; their signing key is in {keys_dir()}, and they are pinned as "
                  f"its root reviewer {described((name, own.public_key))} in {own.witness.path}")
    return EXIT_OK


def cmd_reviewer_add(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import reviewer_add

    key = reviewer_add(_home(args), args.name, by=args.by, public_key=args.public_key)
    print(f"reviewer {args.name} recorded with public key {key}")
    return EXIT_OK


def cmd_reviewer_trust(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import reviewer_trust

    return reviewer_trust(_home(args), reset=args.reset)


def _setting_flags() -> dict[str, tuple[str, list[str]]]:
    """Each setting of any registry kind, as one `registry add` flag: its metavar and what it is to each kind."""
    flags: dict[str, tuple[str, list[str]]] = {}
    for kind in registry_kinds().values():
        for setting in kind.settings:
            flags.setdefault(setting.name, (setting.metavar, []))[1].append(f"{kind.name}: {setting.help}")
    return flags


def cmd_registry_add(args: argparse.Namespace) -> int:
    home = _home(args)
    kind = registry_kinds()[args.kind]
    allowed = sorted(kind.required | kind.optional) + ["token_env"]
    every = {*_setting_flags(), "token_env"}
    given = {key: getattr(args, key) for key in sorted(every) if getattr(args, key)}
    for key in sorted(set(given) - set(allowed)):
        raise WeightkeeperError(f"{_flag(key)} does not apply to a {args.kind} registry; "
                                f"it takes {', '.join(map(_flag, allowed))}")
    for key in sorted(kind.required - set(given)):
        raise WeightkeeperError(f"a {args.kind} registry needs {_flag(key)}")
    if kind.one_of and not any(given.get(key) for key in kind.one_of):
        raise WeightkeeperError(f"a {args.kind} registry {kind.one_of_because}: give at least one of "
                                f"{', '.join(map(_flag, kind.one_of))}")
    if args.schedule is not None and not config.valid_cron(args.schedule):
        raise WeightkeeperError(f"--schedule {args.schedule!r} is not a cron expression; use five fields such as "
                                f"'{config.DEFAULT_SCHEDULE}' (minute hour day month weekday)")
    settings: dict[str, Any] = {option: value for option, value in given.items() if option != "token_env"}
    for option in [setting.name for setting in kind.settings if setting.many]:
        if option in settings:
            settings[option] = [part.strip() for part in settings[option].split(",") if part.strip()]
    for option in [setting.name for setting in kind.settings if setting.file]:
        if option in settings and "://" not in settings[option]:
            settings[option] = str(Path(settings[option]).expanduser().resolve())
    registry = config.RegistryConfig(args.name, args.kind, settings, args.schedule or config.DEFAULT_SCHEDULE,
                                     args.token_env)
    path = config.add_registry(home, registry, check=None if args.no_check else _added)
    print(f"added registry '{args.name}' ({args.kind}, {registry.location}) to {path}")
    return EXIT_OK


def _added(registry: config.RegistryConfig) -> None:
    """`registry add` runs `registry check` first: a typo in a path or a missing token is caught now, not at 3 am."""
    from weightkeeper.cli.scanning import check_registry
    from weightkeeper.errors import RegistryUnavailable

    try:
        check_registry(registry)
    except RegistryUnavailable as exc:
        raise WeightkeeperError(f"registry '{registry.name}' was not added: {exc}. To add it anyway, pass "
                                "--no-check") from None


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def cmd_registry_check(args: argparse.Namespace) -> int:
    from weightkeeper.cli.scanning import check_registry
    from weightkeeper.errors import RegistryUnavailable, UnknownRegistryError

    settings = config.load(_home(args))
    registry = settings.registries.get(args.name)
    if registry is None:
        raise UnknownRegistryError(args.name, sorted(settings.registries))
    try:
        verified = check_registry(registry)
    except RegistryUnavailable as exc:
        print(f"{registry.name}: not working: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{registry.name}: ok: {verified}")
    return EXIT_OK


def cmd_registry_list(args: argparse.Namespace) -> int:

    registries = config.load(_home(args)).registries.values()
    rows = [{"name": r.name, "kind": r.kind, "location": r.location, "schedule": r.schedule,
             "token_env": r.token_env} for r in registries]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no registries configured; add one with `weightkeeper registry add NAME --kind local --path DIR`")
    else:
        from weightkeeper.cli.render import print_table

        print_table(rows)
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from weightkeeper.cli.scanning import scan_registries

    signal.signal(signal.SIGTERM, _raise_interrupt)
    home = _home(args)
    results = scan_registries(home, args.names, log=None if args.json else print, allow_empty=args.allow_empty)
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    elif any(result.ok for result in results) and config.load(home).proposals.auto_propose:
        from weightkeeper.cli.reviewing import propose

        propose(home, model=None, limit=None)
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


def cmd_watch(args: argparse.Namespace) -> int:
    import threading

    from weightkeeper.cli.watch import watch

    if args.jitter < 0:
        raise WeightkeeperError("--jitter must be 0 or more seconds")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    watch(_home(args), args.names, stop, jitter=args.jitter, log=lambda line: print(line, flush=True))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from weightkeeper.cli.working import run_worker

    if args.concurrency < 1:
        raise WeightkeeperError("--concurrency must be 1 or more jobs")
    run_worker(_home(args), concurrency=args.concurrency, once=args.once, log=lambda line: print(line, flush=True))
    return EXIT_OK


def cmd_ledger(args: argparse.Namespace) -> int:
    from weightkeeper.cli.render import print_events
    from weightkeeper.domain import EventKind
    from weightkeeper.ledger import Ledger
    from weightkeeper.ledger.queries import EventFilter, events, require_model, require_registry

    kinds = tuple(kind.strip() for value in args.kind for kind in value.split(",") if kind.strip())
    unknown = sorted(set(kinds) - {kind.value for kind in EventKind})
    if unknown:
        raise WeightkeeperError(f"unknown event kind {', '.join(unknown)}; "
                                f"known kinds: {', '.join(kind.value for kind in EventKind)}")
    where = EventFilter(kinds=kinds, registry=args.registry, model=args.model, since=_since(args.since))
    settings = config.load(_home(args))
    with Ledger.for_reading(settings.store) as ledger:
        if args.registry:
            require_registry(ledger, args.registry, settings.scanned())
        if args.model:
            require_model(ledger, args.model)
        print_events(events(ledger, where), args.format)
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from weightkeeper.cli.render import print_stats
    from weightkeeper.ledger import Ledger
    from weightkeeper.ledger.queries import require_registry, stats

    settings = config.load(_home(args))
    with Ledger.for_reading(settings.store) as ledger:
        if args.registry:
            require_registry(ledger, args.registry, settings.scanned())
        figures = stats(ledger, registry=args.registry)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_stats(figures)
    return EXIT_OK


def cmd_propose(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import propose

    if args.limit is not None and args.limit < 1:
        raise WeightkeeperError("--limit must be 1 or more")
    propose(_home(args), model=args.model, limit=args.limit)
    return EXIT_OK


def cmd_review_console(args: argparse.Namespace) -> int:
    from tui.app import run_console

    run_console(_home(args), reviewer=args.reviewer)
    return EXIT_OK


def cmd_review_list(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import review_list

    review_list(_home(args), status=args.status, as_json=args.json)
    return EXIT_OK


def cmd_review_show(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import review_show

    review_show(_home(args), args.id, as_letter=args.letter)
    return EXIT_OK


def cmd_review_decide(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import decide

    return decide(_home(args), args)


def cmd_act(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import act

    done = act(_home(args))
    if args.json:
        print(json.dumps(done, indent=2))
        return EXIT_OK
    from weightkeeper.cli.render import action_line

    for result in done:
        print(action_line(result))
    ran = sum("skipped" not in result and "refused" not in result for result in done)
    held, refused = sum("skipped" in result for result in done), sum("refused" in result for result in done)
    print(f"{counted(ran, 'approved action')} run" + (f"; {held} held by another executor" if held else "")
          + (f"; {counted(refused, 'review')} refused (see `weightkeeper ledger --kind "
             "approval_refused`)" if refused else ""))
    return EXIT_OK


def cmd_contact_block(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import contact_block

    contact_block(_home(args), args.owner, args.reason)
    return EXIT_OK


def cmd_contact_unblock(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import contact_unblock

    contact_unblock(_home(args), args.owner)
    return EXIT_OK


def cmd_contact_list(args: argparse.Namespace) -> int:
    from weightkeeper.cli.reviewing import contact_list

    contact_list(_home(args), as_json=args.json)
    return EXIT_OK


def cmd_archive_list(args: argparse.Namespace) -> int:
    from weightkeeper.cli.archiving import archive_list

    archive_list(_home(args), as_json=args.json)
    return EXIT_OK


def cmd_archive_show(args: argparse.Namespace) -> int:
    from weightkeeper.cli.archiving import archive_show

    archive_show(_home(args), args.id)
    return EXIT_OK


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from weightkeeper.cli.storing import store_migrate

    return EXIT_OK if store_migrate(_home(args), args.to) else EXIT_FAILED


def cmd_archive_verify(args: argparse.Namespace) -> int:
    from weightkeeper.cli.archiving import archive_verify

    if bool(args.id) == args.all:
        raise WeightkeeperError("name one object to verify (ID, see `weightkeeper archive list`) or pass --all")
    if args.sample is not None and args.sample < 1:
        raise WeightkeeperError("--sample must be 1 or more")
    intact = archive_verify(_home(args), args.id, sample=args.sample, repair=args.repair)
    return EXIT_OK if intact else EXIT_FAILED


def cmd_archive_restore(args: argparse.Namespace) -> int:
    from weightkeeper.cli.archiving import archive_restore

    archive_restore(_home(args), args.id, Path(args.dest).expanduser(), args.version)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from weightkeeper.cli.evaluating import run_eval

    return run_eval(_home(args), args.suite, args.out and Path(args.out).expanduser(),
                    args.baseline and Path(args.baseline).expanduser(), model=args.model, judges=tuple(args.judge),
                    compare=args.compare)


def cmd_demo(args: argparse.Namespace) -> int:
    from weightkeeper.cli.demo import run_demo

    return run_demo(_home(args) if getattr(args, "home", None) else None)


# -- helpers ------------------------------------------------------------------------------------


def _home(args: argparse.Namespace) -> Path:
    """The home the command works in, checked for its use: only `init` and `demo` create one, and a command
    that only reads (`home_use="read"`) accepts a home it may not write."""
    from weightkeeper.home import created_home, existing_home, resolve_home, writable_home

    home = resolve_home(getattr(args, "home", None))
    use = getattr(args, "home_use", "write")
    if use == "create":
        return created_home(home)
    return existing_home(home) if use == "read" else writable_home(existing_home(home))


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write it as 2027-01-31") from None


def _since(value: str | None) -> str | None:
    """Normalise --since to the ledger's UTC timestamp form, or say what a valid one looks like."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WeightkeeperError(f"--since {value!r} is not an ISO date or time; use e.g. 2026-11-01 or "
                                "2026-11-01T12:00:00Z") from None
    if moment.tzinfo is not None:
        from datetime import UTC

        moment = moment.astimezone(UTC).replace(tzinfo=None)
    from weightkeeper.ledger.store import TIMESTAMP

    return moment.strftime(TIMESTAMP)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
