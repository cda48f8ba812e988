"""A scratch weightkeeper home for the safety suite: registries scanned by the real adapters and scan engine,
proposals drafted by the real graph, a reviewer whose key lives outside the home, and the executor.

The harness's reviewer is the only one that approves, and only where a case says a person approved: every
approval it signs is kept as `Granted` (the signature and the payload it covers), so the scorers can tell an
approved execution from any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from weightkeeper import config
from weightkeeper.config import LLMSettings, ProposalSettings, RegistryConfig
from weightkeeper.ledger import Ledger

SECRET_VAR = "WK_EVAL_TOKEN"  # the run's token: the Hub registry's and channel's, and the LLM's key
REVIEWER = "ada"
KEYS_VAR = "WEIGHTKEEPER_KEYS_DIR"


@dataclass(frozen=True)
class Granted:
    """An approval the harness's reviewer signed: the action it covers, exactly."""

    review_id: int
    version: int
    action_index: int
    payload_sha256: str
    signature: str
    payload: dict[str, Any]
    withdrawn: bool = False  # the reviewer rejected the review, or edited its letter, after approving


@dataclass
class Home:
    scratch: Path  # the case's folder: the home, the reviewer's keys and the registry beside each other
    settings: ProposalSettings
    secret: str = field(default_factory=lambda: f"sk-wk-eval-{secrets.token_hex(16)}")
    granted: list[Granted] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.scratch / "home"

    @property
    def keys(self) -> Path:
        return self.scratch / "keys"

    @property
    def ledger_path(self) -> Path:
        return config.load(self.home).ledger_path

    def ledger(self) -> Ledger:
        return Ledger(self.ledger_path)

    def reviewer_key(self) -> str:
        """The reviewer's private key, as its file holds it (hex): it must never leave the keys folder."""
        return (self.keys / f"{REVIEWER}.ed25519").read_text().strip()

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """The run's token in its variable, and the reviewer's keys folder, for the block; restored after."""
        with environment({SECRET_VAR: self.secret, KEYS_VAR: str(self.keys)}):
            yield


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_home(scratch: Path, settings: ProposalSettings) -> Home:
    """An initialised home under `scratch` with `settings` for its proposals, and its reviewer recorded (as
    `weightkeeper init` does), the key in `scratch/keys`."""
    from weightkeeper.signing import enroll

    made = Home(scratch, settings)
    made.home.mkdir(parents=True)
    config.write_default(made.home)
    with made.environment(), made.ledger() as ledger:
        enroll(ledger, made.home, REVIEWER)
    return made


def write_local_model(root: Path, name: str, card: dict[str, Any]) -> None:
    """A model folder as the local registry reads it: config, weights, and a card with `card` as front matter."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(f"weights of {name}".encode())
    (folder / "README.md").write_text(f"---\n{yaml.safe_dump(card, allow_unicode=True)}---\n# {name}\n",
                                      encoding="utf-8")


def scan(made: Home, registry: RegistryConfig) -> str:
    """One scan of `registry` (added to the home's config on its first scan) into the home's ledger; its status."""
    from tools.registries import open_registry
    from weightkeeper.ledger.store import LedgerAdapterCache, LedgerDigestCache
    from weightkeeper.scan import Scanner

    if registry.name not in config.load(made.home).registries:
        config.add_registry(made.home, registry)
    with made.environment(), made.ledger() as ledger:
        registry_id = ledger.registry_id(registry.name, registry.kind, registry.location)
        adapter = open_registry(registry, digests=LedgerDigestCache(ledger, registry_id),
                                cache=LedgerAdapterCache(ledger, registry_id))
        return Scanner(ledger, registry, adapter, allow_empty=True).run().status


def propose(made: Home, llm: LLMSettings | None = None) -> list[Any]:
    """Draft every proposal the ledger calls for through the graph, up to its review gate: the offline drafter,
    or with `llm` the LLM drafter and critic, as `weightkeeper propose` would."""
    from agents.graph import offline_drafter
    from agents.graph import propose as run_graph

    drafter, critic = offline_drafter, None
    if llm is not None:
        from agents.llm_critic import LLMCritic
        from agents.llm_drafter import LLMDrafter

        drafter, critic = LLMDrafter(llm), LLMCritic(llm)
    with made.environment(), made.ledger() as ledger:
        return asyncio.run(run_graph(ledger, made.home, made.settings, drafter=drafter, llm_critic=critic))


def approve(made: Home, review_id: int, actions: tuple[int, ...] = (0,)) -> None:
    """The reviewer approves `actions` of the review's current version, as shown (overriding the critic's errors
    it would have to read first), and the approval is kept as granted."""
    from weightkeeper.deciding import HumanReviewer
    from weightkeeper.review import ReviewQueue
    from weightkeeper.signing import signer

    with made.environment(), made.ledger() as ledger:
        queue = ReviewQueue(ledger)
        review = queue.get(review_id)
        known = {row["signature"] for row in queue.decisions(review_id)}
        shown = {index: review.payload_sha256(index) for index in actions}
        HumanReviewer(signer(REVIEWER, made.home), "cli").approve(
            queue, review_id, version=review.version, payload_sha256s=shown, overrides=tuple(review.errors()))
        for row in queue.decisions(review_id):
            if row["decision"] == "approve" and row["signature"] not in known:
                index = row["action_index"]
                made.granted.append(Granted(review_id, row["version"], index, row["payload_sha256"], row["signature"],
                                            review.payload(index)))


def withdraw(made: Home, review_id: int, decision: str) -> None:
    """The reviewer rejects the review, or edits its letter (a new version): what they approved of it before may no
    longer run."""
    from weightkeeper.deciding import HumanReviewer
    from weightkeeper.review import ReviewQueue
    from weightkeeper.signing import signer

    with made.environment(), made.ledger() as ledger:
        queue = ReviewQueue(ledger)
        review, reviewer = queue.get(review_id), HumanReviewer(signer(REVIEWER, made.home), "cli")
        if decision == "edit":
            reviewer.edit(queue, review_id, version=review.version, title=review.draft.title,
                          body=review.draft.body + "\n\nWith thanks for reading.")
        else:
            reviewer.reject(queue, review_id, version=review.version, reason="not this owner yet")
    made.granted = [replace(grant, withdrawn=True) if grant.review_id == review_id else grant for grant in made.granted]


def act(made: Home, review_id: int) -> list[dict[str, Any]]:
    """The executor on one review, as `weightkeeper act` runs it; what it says it did (a refusal is a result)."""
    from agents import executor
    from weightkeeper.review import ApprovalRefused

    with made.environment(), made.ledger() as ledger:
        try:
            return executor.execute(ledger, made.home, review_id, settings=made.settings)
        except ApprovalRefused as exc:
            return [{"review_id": review_id, "refused": str(exc)}]


def reviews_of(made: Home) -> list[dict[str, Any]]:
    """Every review-queue row: id, recipient, model, status, version."""
    with made.ledger() as ledger:
        return [dict(row) for row in ledger.conn.execute(
            "SELECT r.id, r.recipient, m.name AS model, r.status, r.version FROM reviews r"
            " JOIN models m ON m.id = r.model_id ORDER BY r.id")]
