"""Memory (Chroma, real e5 embeddings): precedents and reviewers' notes recalled for similar models,
near-duplicates of one owner grouped into one proposal, and the memory rebuilt from the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from proposal_world import approve, model, queue, reviewer, run_propose, scan_twice

from tools.memory import Embedder, Memory, case_text
from weightkeeper import config
from weightkeeper.config import MemorySettings, ProposalSettings
from weightkeeper.domain import CARD_DIGEST_FORM, Card, Lineage, ModelRecord
from weightkeeper.ledger import Ledger

EMBED = Embedder()  # one model load for the module

# Decided first (and approved): six fine-tunes of unlike kinds, each from its own owner ...
PRECEDENTS = {
    "clinic-ai/llama-med-qa": ("meta-llama/Llama-3.1-8B", "bigbio/pubmed_qa"),
    "speechlab/whisper-small-dutch": ("openai/whisper-small", "mozilla/common_voice_nl"),
    "artfolk/sdxl-anime-lora": ("stabilityai/stable-diffusion-xl-base-1.0", "artfolk/anime-illustrations"),
    "devtools/qwen-coder-sql": ("Qwen/Qwen2.5-Coder-7B", "xlangai/spider"),
    "lawtech/mistral-contract-review": ("mistralai/Mistral-7B-v0.3", "theatticusproject/cuad"),
    "polyglot/nllb-swahili-translation": ("facebook/nllb-200-distilled-600M", "openlanguagedata/flores_plus"),
}
# ... then six new deletions, each labelled with the precedent a person would call the relevant one.
QUERIES = {
    "medbot/llama-clinical-questions": ("meta-llama/Llama-3.2-3B", "qiaojin/PubMedQA", "clinic-ai/llama-med-qa"),
    "voice-nl/whisper-medium-flemish": ("openai/whisper-medium", "cgn/flemish-speech",
                                        "speechlab/whisper-small-dutch"),
    "mangaworks/sd-manga-style-lora": ("stable-diffusion-v1-5/stable-diffusion-v1-5", "mangaworks/manga-panels",
                                       "artfolk/sdxl-anime-lora"),
    "dataops/text-to-sql-coder": ("deepseek-ai/deepseek-coder-6.7b-base", "b-mc2/sql-create-context",
                                  "devtools/qwen-coder-sql"),
    "legalai/mistral-nda-clauses": ("mistralai/Mistral-7B-Instruct-v0.2", "legal/nda-clauses",
                                    "lawtech/mistral-contract-review"),
    "translate-africa/nllb-kiswahili-en": ("facebook/nllb-200-1.3B", "masakhane/kiswahili-parallel",
                                           "polyglot/nllb-swahili-translation"),
}


def fine_tune(name: str, base: str, dataset: str, **changes: object) -> ModelRecord:
    return model(name, lineage=(Lineage(base, "finetune"),),
                 card=Card(f"{CARD_DIGEST_FORM}:{name}", "apache-2.0", None, None, (dataset,)), **changes)


def memory_of(home: Path, **settings: object) -> Memory:
    return Memory.open(MemorySettings(**settings), home / "memory", embed=EMBED)


def propose_with_memory(home: Path, **kwargs: object) -> list:
    return run_propose(home, ProposalSettings(), memory=memory_of(home), **kwargs)


def reviews_by_model(home: Path) -> dict:
    ledger, reviews = queue(home)
    with ledger:
        return {review.model: review for review in reviews.list()}


def decide_all(home: Path, how: str = "approve", reason: str = "") -> None:
    for review in reviews_by_model(home).values():
        if how == "approve":
            approve(home, review.id)
        else:
            ledger, reviews = queue(home)
            with ledger:
                reviewer(ledger, home).reject(
                    reviews, review.id, version=review.version, reason=reason)


def test_recall_ranks_the_relevant_precedent_first(proposal_home: Path) -> None:
    scan_twice(proposal_home, [fine_tune(name, *spec) for name, spec in PRECEDENTS.items()], [])
    assert {o.status for o in propose_with_memory(proposal_home)} == {"queued"}
    decide_all(proposal_home)
    scan_twice(proposal_home, [fine_tune(name, base, data) for name, (base, data, _) in QUERIES.items()], [])

    propose_with_memory(proposal_home)

    reviews = reviews_by_model(proposal_home)
    ids = {name: review.id for name, review in reviews.items()}
    for name, (_, _, relevant) in QUERIES.items():
        draft = reviews[name].draft
        assert draft.precedents, f"{name} recalled nothing"
        assert draft.precedents[0] == f"review-{ids[relevant]}", (name, draft.precedents)
        notes = [f.message for f in reviews[name].findings if f.code == "recalled"]
        assert notes and relevant in notes[0], notes  # the reviewer sees what was drawn on
    # Memory shapes the record, never the facts: the offline drafter's text is grounded as before.
    assert all(not [f for f in r.findings if f.severity == "error"] for r in reviews.values())


def test_a_reviewers_reason_is_recalled_for_a_similar_model_only(proposal_home: Path) -> None:
    scan_twice(proposal_home, [fine_tune("clinic-ai/llama-med-qa", "meta-llama/Llama-3.1-8B", "bigbio/pubmed_qa")], [])
    propose_with_memory(proposal_home)
    decide_all(proposal_home, "reject", reason="Too long for a first contact: lead with the download figures.")
    scan_twice(proposal_home, [
        fine_tune("medbot/llama-clinical-questions", "meta-llama/Llama-3.2-3B", "qiaojin/PubMedQA"),
        fine_tune("artfolk/sdxl-anime-lora", "stabilityai/stable-diffusion-xl-base-1.0", "artfolk/anime-illustrations"),
    ], [])

    propose_with_memory(proposal_home)

    reviews = reviews_by_model(proposal_home)
    similar, unlike = reviews["medbot/llama-clinical-questions"], reviews["artfolk/sdxl-anime-lora"]
    assert [p for p in similar.draft.precedents if p.startswith("decision-")], similar.draft.precedents
    assert any("lead with the download figures" in f.message for f in similar.findings if f.code == "recalled")
    assert unlike.draft.precedents == ()  # below min_similarity: nothing recalled
    # A rejected proposal is guidance, never a precedent to follow.
    assert not [p for p in similar.draft.precedents if p.startswith("review-")]


def test_an_edit_note_and_its_changes_become_guidance(proposal_home: Path) -> None:
    scan_twice(proposal_home, [fine_tune("clinic-ai/llama-med-qa", "meta-llama/Llama-3.1-8B", "bigbio/pubmed_qa")], [])
    propose_with_memory(proposal_home)
    (review,) = reviews_by_model(proposal_home).values()
    ledger, reviews = queue(proposal_home)
    with ledger:
        body = review.draft.body.replace("Hello acme", "Dear clinic-ai team").replace("Hello clinic-ai",
                                                                                    "Dear clinic-ai team")
        reviewer(ledger, proposal_home).edit(
            reviews, review.id, version=1, title=review.draft.title, body=body, note="Address the team, not the org.")
        (decision,) = reviews.decisions(review.id)
    assert decision["reason"].startswith("Address the team, not the org.")
    assert "+Dear clinic-ai team," in decision["reason"] and "-Hello clinic-ai," in decision["reason"]

    memory = memory_of(proposal_home)
    with Ledger(config.load(proposal_home).ledger_path) as ledger:
        assert memory.sync(ledger) == 1
        assert memory.sync(ledger) == 0  # idempotent
    assert memory.feedback.get(ids=[f"decision-{decision['id']}"])["documents"][0].startswith("Address the team")
    assert memory.proposals.count() == 0  # a pending proposal is no precedent


def test_the_memory_is_rebuilt_from_the_ledger(proposal_home: Path) -> None:
    scan_twice(proposal_home, [fine_tune(name, *spec) for name, spec in list(PRECEDENTS.items())[:3]], [])
    propose_with_memory(proposal_home)
    decide_all(proposal_home)
    with Ledger(config.load(proposal_home).ledger_path) as ledger:
        assert memory_of(proposal_home).sync(ledger) == 3
        # A memory folder lost (or a new one configured) fills again from the ledger alone.
        rebuilt = Memory.open(MemorySettings(), proposal_home / "memory-rebuilt", embed=EMBED)
        assert rebuilt.sync(ledger) == 3
        held = rebuilt.proposals.get(include=["metadatas"])
    assert sorted(meta["outcome"] for meta in held["metadatas"]) == ["approved"] * 3
    assert sorted(meta["model"] for meta in held["metadatas"]) == sorted(list(PRECEDENTS)[:3])


def test_an_edit_after_approval_withdraws_the_precedent(proposal_home: Path) -> None:
    scan_twice(proposal_home, [fine_tune("clinic-ai/llama-med-qa", "meta-llama/Llama-3.1-8B", "bigbio/pubmed_qa")], [])
    propose_with_memory(proposal_home)
    decide_all(proposal_home)
    memory = memory_of(proposal_home)
    with Ledger(config.load(proposal_home).ledger_path) as ledger:
        memory.sync(ledger)
        assert memory.proposals.count() == 1
        (review,) = reviews_by_model(proposal_home).values()
        from weightkeeper.review import ReviewQueue

        reviewer(ledger, proposal_home).edit(
            ReviewQueue(ledger), review.id, version=review.version, title="Another title", body=review.draft.body)
        memory.sync(ledger)
    assert memory.proposals.count() == 0


def test_near_duplicates_of_one_owner_share_one_proposal(proposal_home: Path) -> None:
    med = fine_tune("clinic-ai/llama-med-7b", "meta-llama/Llama-2-7b", "bigbio/pubmed_qa", downloads=9000)
    gguf = fine_tune("clinic-ai/llama-med-7b-GGUF", "clinic-ai/llama-med-7b", "bigbio/pubmed_qa", downloads=500)
    whisper = fine_tune("clinic-ai/whisper-small-dictation", "openai/whisper-small", "clinic-ai/dictations",
                        downloads=100)
    other_owner = fine_tune("bio-lab/llama-med-7b", "meta-llama/Llama-2-7b", "bigbio/pubmed_qa", downloads=50)
    scan_twice(proposal_home, [med, gguf, whisper, other_owner], [])

    outcomes = {o.model: o for o in propose_with_memory(proposal_home)}

    # One letter to the owner covers all three; the near-duplicate follows its lead and the evidence names it.
    lead_review = outcomes["clinic-ai/llama-med-7b"].review_id
    for name in ("clinic-ai/llama-med-7b", "clinic-ai/llama-med-7b-GGUF", "clinic-ai/whisper-small-dictation"):
        assert (outcomes[name].status, outcomes[name].review_id) == ("queued", lead_review)
    assert outcomes["bio-lab/llama-med-7b"].status == "queued"  # alike, but another owner: another letter
    assert outcomes["bio-lab/llama-med-7b"].review_id != lead_review
    lead = reviews_by_model(proposal_home)["clinic-ai/llama-med-7b"]
    assert [model.model for model in lead.evidence.models][:2] == ["clinic-ai/llama-med-7b", "clinic-ai/llama-med-7b-GGUF"]
    (related,) = [item for item in lead.evidence.items if item.kind == "related"]
    assert related.facts["model"] == "clinic-ai/llama-med-7b-GGUF" and related.facts["similarity"] >= 0.95
    assert "clinic-ai/llama-med-7b-GGUF" in lead.draft.body and f"[{related.id}]" in lead.draft.body
    assert not [f for f in lead.findings if f.severity == "error"], lead.findings

    again = propose_with_memory(proposal_home)  # the member is covered: it is no candidate any more
    assert "clinic-ai/llama-med-7b-GGUF" not in {o.model for o in again}
    ledger, _ = queue(proposal_home)
    with ledger:
        rows = ledger.conn.execute("SELECT m.name, x.review_id, x.similarity FROM review_members x"
                                   " JOIN models m ON m.id = x.model_id ORDER BY m.name").fetchall()
    # Every model but the lead is a member; only the near-duplicate has a similarity.
    assert [(row["name"], row["review_id"], row["similarity"] is not None) for row in rows] == [
        ("clinic-ai/llama-med-7b-GGUF", lead.id, True), ("clinic-ai/whisper-small-dictation", lead.id, False)]


def test_case_text_holds_what_makes_models_alike_and_nothing_else(deleted: Path) -> None:
    from agents.documenter import build_evidence

    with Ledger(config.load(deleted).ledger_path) as ledger:
        event = ledger.conn.execute("SELECT id FROM events WHERE kind = 'deleted'").fetchone()["id"]
        text = case_text(build_evidence(ledger, event))
    assert text == "med ft. Llama 3 1 8B. clinical notes"


def test_memory_on_a_chroma_server_by_config(proposal_home: Path, chroma_server: str) -> None:
    path = config.config_path(proposal_home)
    path.write_text(path.read_text().replace('# url = "http://127.0.0.1:8000"', f'url = "{chroma_server}"'))
    settings = config.load(proposal_home)
    assert settings.memory.url == chroma_server
    scan_twice(proposal_home, [fine_tune("clinic-ai/llama-med-qa", "meta-llama/Llama-3.1-8B", "bigbio/pubmed_qa")], [])
    run_propose(proposal_home, memory=Memory.open(settings.memory, settings.memory_path(), embed=EMBED))
    decide_all(proposal_home)
    with Ledger(settings.ledger_path) as ledger:
        assert Memory.open(settings.memory, settings.memory_path(), embed=EMBED).sync(ledger) == 1
    assert not (proposal_home / "memory").exists()  # nothing embedded locally
    heard = httpx.get(f"{chroma_server}/api/v2/tenants/default_tenant/databases/default_database/collections").json()
    assert {"proposals", "feedback", "cards"} <= {collection["name"] for collection in heard}


@pytest.mark.parametrize(("line", "message"), [
    ("url = \"ftp://x\"", "URL of a Chroma server"),
    ("near_duplicate = 1.5", "cosine similarity"),
    ("precedents = -1", "between 0 and 20"),
    ("colour = \"blue\"", "[memory] takes"),
    ("enabled = \"yes\"", "true or false"),
])
def test_memory_settings_are_checked(proposal_home: Path, line: str, message: str) -> None:
    path = config.config_path(proposal_home)
    path.write_text(f"[memory]\n{line}\n")
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[")):
        config.load(proposal_home)


def test_memory_off_by_config_changes_nothing_else(deleted: Path) -> None:
    path = config.config_path(deleted)
    path.write_text(path.read_text().replace("enabled = true", "enabled = false"))
    from tools.memory import open_memory

    settings = config.load(deleted)
    assert open_memory(settings.memory, settings.memory_path()) is None
    outcomes = run_propose(deleted, memory=None)
    assert [o.status for o in outcomes] == ["queued"]
    assert not (deleted / "memory").exists()
    assert json.loads(json.dumps(reviews_by_model(deleted)["acme/med-ft"].draft.precedents)) == []
