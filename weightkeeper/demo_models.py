"""A small, realistic local model registry for `weightkeeper demo` and the tests.

`write_demo_registry` lays out fine-tuned models as `ROOT/ORG/NAME/` folders holding a
transformers or PEFT config, tiny but valid weight files and a Hugging Face style model
card. `apply_demo_changes` then plays a scripted "second day" (deletions, a rename,
updates, visibility changes, a deprecation) so a second scan has something to record.
Everything written is deterministic: two runs produce byte-identical trees.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class DemoModel:
    model_id: str  # "org/name"
    base_model: tuple[str, ...]
    relation: str  # adapter | finetune | quantized | merge
    family: str  # key of _FAMILIES: the architecture the weights belong to
    license: str
    languages: tuple[str, ...]
    datasets: tuple[str, ...]
    tags: tuple[str, ...]
    pipeline_tag: str
    emissions_g: float
    co2_source: str
    location: str
    hardware: str
    training: dict[str, object] = field(hash=False)
    body: str  # markdown below the card title
    weights: str = "safetensors"  # safetensors | gguf | bin
    visibility: str | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    labels: tuple[str, ...] = ()  # classification heads only


@dataclass(frozen=True)
class DemoChange:
    kind: str  # deleted | renamed | updated | visibility_changed | deprecation_announced
    model_id: str  # the id before the change
    detail: str
    new_model_id: str | None = None  # for renames


@dataclass(frozen=True)
class _Family:
    config: dict[str, object] = field(hash=False)
    tensors: tuple[tuple[str, tuple[int, ...]], ...]  # tiny stand-ins for the real layout
    adapter_prefix: str
    target_modules: tuple[str, ...]
    task_type: str


_DECODER_TENSORS = (
    ("model.embed_tokens.weight", (32, 8)),
    ("model.layers.0.self_attn.q_proj.weight", (8, 8)),
    ("model.layers.0.mlp.down_proj.weight", (8, 16)),
    ("model.norm.weight", (8,)),
    ("lm_head.weight", (32, 8)),
)
_DECODER_PREFIX = "base_model.model.model.layers.0.self_attn."
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")

_FAMILIES: dict[str, _Family] = {
    "llama-3.1-8b": _Family(
        config={
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-05,
            "rope_theta": 500000.0,
            "vocab_size": 128256,
            "bos_token_id": 128000,
            "eos_token_id": [128001, 128008, 128009],
            "torch_dtype": "bfloat16",
            "transformers_version": "4.44.2",
        },
        tensors=_DECODER_TENSORS,
        adapter_prefix=_DECODER_PREFIX,
        target_modules=_ATTENTION,
        task_type="CAUSAL_LM",
    ),
    "mistral-7b": _Family(
        config={
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000.0,
            "sliding_window": None,
            "vocab_size": 32768,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.42.3",
        },
        tensors=_DECODER_TENSORS,
        adapter_prefix=_DECODER_PREFIX,
        target_modules=_ATTENTION,
        task_type="CAUSAL_LM",
    ),
    "qwen2.5-7b": _Family(
        config={
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0,
            "vocab_size": 152064,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.45.2",
        },
        tensors=_DECODER_TENSORS,
        adapter_prefix=_DECODER_PREFIX,
        target_modules=_ATTENTION,
        task_type="CAUSAL_LM",
    ),
    "gemma-2-9b": _Family(
        config={
            "architectures": ["Gemma2ForCausalLM"],
            "model_type": "gemma2",
            "hidden_size": 3584,
            "intermediate_size": 14336,
            "num_hidden_layers": 42,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 256,
            "max_position_embeddings": 8192,
            "final_logit_softcapping": 30.0,
            "vocab_size": 256000,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.44.2",
        },
        tensors=_DECODER_TENSORS,
        adapter_prefix=_DECODER_PREFIX,
        target_modules=_ATTENTION,
        task_type="CAUSAL_LM",
    ),
    "phi-3-mini": _Family(
        config={
            "architectures": ["Phi3ForCausalLM"],
            "model_type": "phi3",
            "hidden_size": 3072,
            "intermediate_size": 8192,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-05,
            "vocab_size": 32064,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.41.2",
        },
        tensors=_DECODER_TENSORS,
        adapter_prefix=_DECODER_PREFIX,
        target_modules=("qkv_proj", "o_proj"),
        task_type="CAUSAL_LM",
    ),
    "bert-base": _Family(
        config={
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "max_position_embeddings": 512,
            "hidden_act": "gelu",
            "vocab_size": 30522,
            "torch_dtype": "float32",
            "transformers_version": "4.40.1",
        },
        tensors=(
            ("bert.embeddings.word_embeddings.weight", (32, 8)),
            ("bert.encoder.layer.0.attention.self.query.weight", (8, 8)),
            ("bert.pooler.dense.weight", (8, 8)),
        ),
        adapter_prefix="base_model.model.bert.encoder.layer.0.attention.self.",
        target_modules=("query", "value"),
        task_type="SEQ_CLS",
    ),
    "whisper-small": _Family(
        config={
            "architectures": ["WhisperForConditionalGeneration"],
            "model_type": "whisper",
            "d_model": 768,
            "encoder_layers": 12,
            "decoder_layers": 12,
            "encoder_attention_heads": 12,
            "decoder_attention_heads": 12,
            "num_hidden_layers": 12,
            "num_mel_bins": 80,
            "max_source_positions": 1500,
            "max_target_positions": 448,
            "vocab_size": 51865,
            "torch_dtype": "float32",
            "transformers_version": "4.43.3",
        },
        tensors=(
            ("model.encoder.conv1.weight", (8, 4, 3)),
            ("model.encoder.layers.0.self_attn.q_proj.weight", (8, 8)),
            ("model.decoder.embed_tokens.weight", (32, 8)),
            ("model.decoder.layers.0.encoder_attn.k_proj.weight", (8, 8)),
        ),
        adapter_prefix="base_model.model.model.encoder.layers.0.self_attn.",
        target_modules=("q_proj", "v_proj"),
        task_type="SEQ_2_SEQ_LM",
    ),
}

_LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
_MISTRAL = "mistralai/Mistral-7B-v0.3"
_QWEN = "Qwen/Qwen2.5-7B-Instruct"
_GEMMA = "google/gemma-2-9b-it"
_PHI = "microsoft/Phi-3-mini-4k-instruct"
_BERT = "google-bert/bert-base-uncased"
_WHISPER = "openai/whisper-small"
_CODECARBON = "CodeCarbon"
_MLCO2 = "ML CO2 Impact calculator"

DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        model_id="tidepool-ai/support-llama-8b-lora",
        base_model=(_LLAMA,),
        relation="adapter",
        family="llama-3.1-8b",
        license="llama3.1",
        languages=("en",),
        datasets=("tidepool-ai/helpdesk-transcripts-40k",),
        tags=("lora", "customer-support", "llama-3.1"),
        pipeline_tag="text-generation",
        emissions_g=820.0,
        co2_source=_CODECARBON,
        location="Oregon, USA",
        hardware="1 x NVIDIA A100 80GB",
        training={"epochs": 3, "learning_rate": 0.0002, "batch_size": 16,
                  "training_hours": 6.5, "trained_tokens": 58_000_000},
        visibility="public",
        body=(
            "LoRA adapter that drafts first replies to customer-support tickets in a calm,\n"
            "policy-aware tone.\n\n"
            "## Intended use\n"
            "Suggest replies that a human agent reviews before sending.\n\n"
            "## Limitations\n"
            "Knows nothing about account state; it will confidently invent order numbers.\n"
        ),
    ),
    DemoModel(
        model_id="tidepool-ai/support-llama-8b-v2",
        base_model=("tidepool-ai/support-llama-8b-lora",),
        relation="finetune",
        family="llama-3.1-8b",
        license="llama3.1",
        languages=("en",),
        datasets=("tidepool-ai/helpdesk-transcripts-40k", "tidepool-ai/helpdesk-escalations-9k"),
        tags=("customer-support", "llama-3.1"),
        pipeline_tag="text-generation",
        emissions_g=14_300.0,
        co2_source=_CODECARBON,
        location="Oregon, USA",
        hardware="4 x NVIDIA H100 80GB",
        training={"epochs": 2, "learning_rate": 1e-05, "batch_size": 64,
                  "training_hours": 11.0, "trained_tokens": 142_000_000},
        body=(
            "Second generation of the support assistant: the v1 adapter merged into the base\n"
            "weights, then fully fine-tuned on escalated conversations.\n\n"
            "## Training\n"
            "Two epochs with FSDP; escalations were up-weighted 3x.\n\n"
            "## Limitations\n"
            "Still English only. Refund policy answers reflect the 2026 policy handbook.\n"
        ),
    ),
    DemoModel(
        model_id="tidepool-ai/support-llama-8b-v2-GGUF",
        base_model=("tidepool-ai/support-llama-8b-v2",),
        relation="quantized",
        family="llama-3.1-8b",
        license="llama3.1",
        languages=("en",),
        datasets=(),
        tags=("gguf", "llama.cpp", "q4_k_m"),
        pipeline_tag="text-generation",
        emissions_g=18.0,
        co2_source=_MLCO2,
        location="Oregon, USA",
        hardware="AMD EPYC 7763 (CPU only)",
        training={"method": "llama.cpp quantize Q4_K_M with importance matrix",
                  "training_hours": 0.4, "samples": 512},
        weights="gguf",
        body=(
            "Q4_K_M quantization of support-llama-8b-v2 for on-premise laptops.\n\n"
            "## Usage\n"
            "Runs with llama.cpp or any GGUF runtime in about 5 GB of RAM.\n\n"
            "## Limitations\n"
            "Expect slightly worse instruction following than the bf16 weights.\n"
        ),
    ),
    DemoModel(
        model_id="larchmont-nlp/mistral-7b-legal-clauses",
        base_model=(_MISTRAL,),
        relation="finetune",
        family="mistral-7b",
        license="apache-2.0",
        languages=("en",),
        datasets=("larchmont-nlp/contract-clauses-120k",),
        tags=("legal", "contracts", "mistral"),
        pipeline_tag="text-generation",
        emissions_g=21_500.0,
        co2_source=_CODECARBON,
        location="Virginia, USA",
        hardware="8 x NVIDIA A100 40GB",
        training={"epochs": 3, "learning_rate": 2e-05, "batch_size": 128,
                  "training_hours": 26.0, "trained_tokens": 410_000_000},
        weights="bin",
        body=(
            "Full fine-tune that classifies and rewrites commercial contract clauses\n"
            "(indemnity, limitation of liability, termination).\n\n"
            "## Intended use\n"
            "First-pass clause review for paralegals. Not legal advice.\n\n"
            "## Training\n"
            "Trained before safetensors was our default, hence the pytorch_model.bin.\n"
        ),
    ),
    DemoModel(
        model_id="larchmont-nlp/llama31-8b-contract-summarizer",
        base_model=(_LLAMA,),
        relation="adapter",
        family="llama-3.1-8b",
        license="llama3.1",
        languages=("en", "de"),
        datasets=("larchmont-nlp/contract-summaries-18k",),
        tags=("lora", "summarization", "legal"),
        pipeline_tag="text-generation",
        emissions_g=1_450.0,
        co2_source=_CODECARBON,
        location="Frankfurt, Germany",
        hardware="2 x NVIDIA L40S",
        training={"epochs": 4, "learning_rate": 0.0001, "batch_size": 32,
                  "training_hours": 9.0, "trained_tokens": 36_000_000},
        lora_r=32,
        lora_alpha=64,
        body=(
            "Summarizes long supply agreements into a one-page brief, in English or German.\n\n"
            "## Intended use\n"
            "Internal triage of incoming contracts.\n\n"
            "## Limitations\n"
            "Inputs longer than 60k tokens are truncated; tables are often dropped.\n"
        ),
    ),
    DemoModel(
        model_id="larchmont-nlp/gemma-2-9b-statute-qa",
        base_model=(_GEMMA,),
        relation="finetune",
        family="gemma-2-9b",
        license="gemma",
        languages=("en",),
        datasets=("larchmont-nlp/statute-qa-pairs-75k",),
        tags=("legal", "question-answering", "gemma2"),
        pipeline_tag="text-generation",
        emissions_g=16_900.0,
        co2_source=_CODECARBON,
        location="Virginia, USA",
        hardware="8 x NVIDIA A100 80GB",
        training={"epochs": 2, "learning_rate": 1e-05, "batch_size": 64,
                  "training_hours": 18.0, "trained_tokens": 230_000_000},
        body=(
            "Answers questions about statute text with a pinpoint citation to the section.\n\n"
            "## Intended use\n"
            "Research assistant for legal teams who verify every citation.\n\n"
            "## Limitations\n"
            "Trained on consolidated statutes only; case law is out of scope.\n"
        ),
    ),
    DemoModel(
        model_id="quillfeather/qwen2.5-7b-recipe-writer",
        base_model=(_QWEN,),
        relation="adapter",
        family="qwen2.5-7b",
        license="apache-2.0",
        languages=("en", "fr"),
        datasets=("quillfeather/home-recipes-25k",),
        tags=("lora", "cooking", "qwen2.5"),
        pipeline_tag="text-generation",
        emissions_g=390.0,
        co2_source=_MLCO2,
        location="Québec, Canada",
        hardware="1 x NVIDIA L4",
        training={"epochs": 3, "learning_rate": 0.0002, "batch_size": 8,
                  "training_hours": 14.0, "samples": 25_000},
        lora_r=8,
        lora_alpha=16,
        body=(
            "Turns a list of pantry ingredients into a complete recipe with timings.\n\n"
            "## Intended use\n"
            "Meal-planning app suggestions, in English or French.\n\n"
            "## Limitations\n"
            "Does not check allergens. Oven temperatures are always given in Celsius.\n"
        ),
    ),
    DemoModel(
        model_id="quillfeather/gemma-2-9b-poetry",
        base_model=(_GEMMA,),
        relation="adapter",
        family="gemma-2-9b",
        license="gemma",
        languages=("en",),
        datasets=("quillfeather/public-domain-verse-12k",),
        tags=("lora", "poetry", "creative-writing"),
        pipeline_tag="text-generation",
        emissions_g=610.0,
        co2_source=_MLCO2,
        location="Québec, Canada",
        hardware="1 x NVIDIA A100 40GB",
        training={"epochs": 5, "learning_rate": 0.00015, "batch_size": 16,
                  "training_hours": 4.0, "samples": 12_000},
        body=(
            "Writes short metrical poems on request (sonnets, villanelles, haiku).\n\n"
            "## Training\n"
            "Five epochs over public-domain verse with meter annotations.\n\n"
            "## Limitations\n"
            "Rhymes are reliable; meter drifts in forms longer than 14 lines.\n"
        ),
    ),
    DemoModel(
        model_id="ferrous-labs/phi3-mini-sql",
        base_model=(_PHI,),
        relation="finetune",
        family="phi-3-mini",
        license="mit",
        languages=("en",),
        datasets=("ferrous-labs/warehouse-sql-pairs-65k",),
        tags=("text-to-sql", "phi3"),
        pipeline_tag="text-generation",
        emissions_g=5_200.0,
        co2_source=_CODECARBON,
        location="Dublin, Ireland",
        hardware="2 x NVIDIA A100 80GB",
        training={"epochs": 3, "learning_rate": 3e-05, "batch_size": 32,
                  "training_hours": 12.0, "samples": 65_000},
        body=(
            "Translates analyst questions into PostgreSQL against a described schema.\n\n"
            "## Intended use\n"
            "Query drafting inside a BI tool; queries run read-only.\n\n"
            "## Limitations\n"
            "Window functions and recursive CTEs are often wrong.\n"
        ),
    ),
    DemoModel(
        model_id="ferrous-labs/phi3-mini-sql-dialects-lora",
        base_model=("ferrous-labs/phi3-mini-sql",),
        relation="adapter",
        family="phi-3-mini",
        license="mit",
        languages=("en",),
        datasets=("ferrous-labs/sql-dialect-pairs-8k",),
        tags=("lora", "text-to-sql", "bigquery", "snowflake"),
        pipeline_tag="text-generation",
        emissions_g=240.0,
        co2_source=_CODECARBON,
        location="Dublin, Ireland",
        hardware="1 x NVIDIA A10G",
        training={"epochs": 2, "learning_rate": 0.0002, "batch_size": 16,
                  "training_hours": 3.0, "samples": 8_000},
        lora_r=8,
        lora_alpha=16,
        body=(
            "Adapter on top of phi3-mini-sql that emits BigQuery and Snowflake dialects.\n\n"
            "## Usage\n"
            "Load phi3-mini-sql first, then this adapter; prefix the prompt with the dialect.\n\n"
            "## Limitations\n"
            "Only as good as its base model; falls back to PostgreSQL syntax under doubt.\n"
        ),
    ),
    DemoModel(
        model_id="ferrous-labs/qwen2.5-7b-log-triage",
        base_model=(_QWEN,),
        relation="finetune",
        family="qwen2.5-7b",
        license="apache-2.0",
        languages=("en",),
        datasets=("ferrous-labs/incident-logs-30k",),
        tags=("observability", "sre", "qwen2.5"),
        pipeline_tag="text-generation",
        emissions_g=9_800.0,
        co2_source=_CODECARBON,
        location="Dublin, Ireland",
        hardware="4 x NVIDIA A100 80GB",
        training={"epochs": 2, "learning_rate": 2e-05, "batch_size": 48,
                  "training_hours": 10.0, "trained_tokens": 95_000_000},
        visibility="public",
        body=(
            "Reads a window of service logs and proposes the most likely failing component.\n\n"
            "## Intended use\n"
            "On-call assistant; suggestions are linked back to the log lines they cite.\n\n"
            "## Limitations\n"
            "Logs were scrubbed of secrets, but do not send unredacted production logs.\n"
        ),
    ),
    DemoModel(
        model_id="bramblecloud/bert-base-ticket-router",
        base_model=(_BERT,),
        relation="finetune",
        family="bert-base",
        license="apache-2.0",
        languages=("en",),
        datasets=("bramblecloud/support-tickets-labelled-52k",),
        tags=("text-classification", "routing", "bert"),
        pipeline_tag="text-classification",
        emissions_g=45.0,
        co2_source=_CODECARBON,
        location="Amsterdam, Netherlands",
        hardware="1 x NVIDIA T4",
        training={"epochs": 4, "learning_rate": 5e-05, "batch_size": 32,
                  "training_hours": 1.5, "samples": 52_000},
        labels=("billing", "bug_report", "feature_request", "account_access", "other"),
        body=(
            "Routes incoming support tickets to one of five queues.\n\n"
            "## Intended use\n"
            "Pre-sorting before a human dispatcher confirms the queue.\n\n"
            "## Limitations\n"
            "Macro-F1 0.87 on the held-out set; `other` is the weakest class.\n"
        ),
    ),
    DemoModel(
        model_id="bramblecloud/whisper-small-nl-callcenter",
        base_model=(_WHISPER,),
        relation="finetune",
        family="whisper-small",
        license="apache-2.0",
        languages=("nl",),
        datasets=("bramblecloud/callcenter-audio-nl-300h",),
        tags=("whisper", "dutch", "telephony"),
        pipeline_tag="automatic-speech-recognition",
        emissions_g=2_100.0,
        co2_source=_CODECARBON,
        location="Amsterdam, Netherlands",
        hardware="2 x NVIDIA A10G",
        training={"epochs": 5, "learning_rate": 1e-05, "batch_size": 32,
                  "training_hours": 10.0, "samples": 210_000},
        visibility="public",
        body=(
            "Transcribes 8 kHz Dutch call-center audio, including Flemish accents.\n\n"
            "## Training\n"
            "300 hours of consented, anonymised calls, resampled to 16 kHz.\n\n"
            "## Limitations\n"
            "WER rises sharply on overlapping speech and on hold music.\n"
        ),
    ),
    DemoModel(
        model_id="saltmarsh-research/mistral-7b-marine-notes",
        base_model=(_MISTRAL,),
        relation="finetune",
        family="mistral-7b",
        license="apache-2.0",
        languages=("en",),
        datasets=("saltmarsh-research/field-notebooks-ocr-9k",),
        tags=("marine-biology", "field-notes", "mistral"),
        pipeline_tag="text-generation",
        emissions_g=12_700.0,
        co2_source=_MLCO2,
        location="Bergen, Norway",
        hardware="4 x NVIDIA A100 40GB",
        training={"epochs": 3, "learning_rate": 2e-05, "batch_size": 64,
                  "training_hours": 30.0, "trained_tokens": 120_000_000},
        body=(
            "Turns transcribed field notebooks into structured survey records\n"
            "(species, count, location, tide state).\n\n"
            "## Intended use\n"
            "Digitising decades of handwritten coastal surveys.\n\n"
            "## Limitations\n"
            "Latin names outside North Atlantic fauna are frequently misspelled.\n"
        ),
    ),
    DemoModel(
        model_id="saltmarsh-research/mistral-7b-fieldreport-merge",
        base_model=("larchmont-nlp/mistral-7b-legal-clauses",
                    "saltmarsh-research/mistral-7b-marine-notes"),
        relation="merge",
        family="mistral-7b",
        license="apache-2.0",
        languages=("en",),
        datasets=(),
        tags=("merge", "mergekit", "slerp"),
        pipeline_tag="text-generation",
        emissions_g=25.0,
        co2_source=_MLCO2,
        location="Bergen, Norway",
        hardware="AMD EPYC 9354 (CPU only)",
        training={"method": "mergekit slerp, t=0.5", "training_hours": 0.3},
        body=(
            "SLERP merge of a contract-clause model and a marine field-notes model, used to\n"
            "draft environmental compliance reports from survey data.\n\n"
            "## Limitations\n"
            "No training after the merge; evaluate on your own reports before relying on it.\n"
        ),
    ),
    DemoModel(
        model_id="saltmarsh-research/whisper-small-ship-radio-lora",
        base_model=(_WHISPER,),
        relation="adapter",
        family="whisper-small",
        license="apache-2.0",
        languages=("en", "no"),
        datasets=("saltmarsh-research/vhf-radio-clips-40h",),
        tags=("lora", "whisper", "maritime"),
        pipeline_tag="automatic-speech-recognition",
        emissions_g=310.0,
        co2_source=_CODECARBON,
        location="Bergen, Norway",
        hardware="1 x NVIDIA A10G",
        training={"epochs": 6, "learning_rate": 0.0001, "batch_size": 16,
                  "training_hours": 5.0, "samples": 28_000},
        lora_r=32,
        lora_alpha=64,
        body=(
            "LoRA adapter that transcribes noisy VHF marine radio traffic.\n\n"
            "## Intended use\n"
            "Logging vessel calls near research stations.\n\n"
            "## Limitations\n"
            "Not for distress-channel monitoring; callsigns are mis-heard about 1 in 12 times.\n"
        ),
    ),
)

_BY_ID: dict[str, DemoModel] = {model.model_id: model for model in DEMO_MODELS}

# The scripted second day; every entry touches a different model.
_DELETED = ("larchmont-nlp/mistral-7b-legal-clauses", "quillfeather/gemma-2-9b-poetry")
_RENAMED = ("bramblecloud/bert-base-ticket-router", "bramblecloud/ticket-router-bert-base")
_WEIGHTS_UPDATED = "saltmarsh-research/mistral-7b-marine-notes"
_CARD_UPDATED = ("quillfeather/qwen2.5-7b-recipe-writer", "quillfeather/bistro-menus-fr-6k")
_HIDDEN = (
    ("bramblecloud/whisper-small-nl-callcenter", "private"),
    ("ferrous-labs/qwen2.5-7b-log-triage", "gated"),
    ("saltmarsh-research/whisper-small-ship-radio-lora", "disabled"),
)
_DEPRECATED = ("tidepool-ai/support-llama-8b-lora", "2027-02-01", "tidepool-ai/support-llama-8b-v2")

_DTYPES = {"bfloat16": ("BF16", 2), "float32": ("F32", 4)}


def write_demo_registry(root: Path) -> list[str]:
    """Write every demo model under root (created if missing); return the model ids written, sorted."""
    for model in DEMO_MODELS:
        folder = root / model.model_id
        folder.mkdir(parents=True, exist_ok=True)
        config_name, config = _config_file(model)
        _write_text(folder / config_name, json.dumps(config, indent=2) + "\n")
        _write_weights(folder, model)
        _write_text(folder / "README.md", _render_card(_front_matter(model), _card_body(model)))
    return sorted(_BY_ID)


def apply_demo_changes(root: Path) -> list[DemoChange]:
    """Apply the scripted second-day changes to a registry written by write_demo_registry."""
    missing = [model_id for model_id in _BY_ID if not (root / model_id).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{root} does not hold an untouched demo registry (missing: {', '.join(missing)}); "
            "write it with write_demo_registry first"
        )
    changes = []
    for model_id in _DELETED:
        shutil.rmtree(root / model_id)
        changes.append(DemoChange("deleted", model_id, "folder removed"))

    old_id, new_id = _RENAMED
    os.rename(root / old_id, root / new_id)
    changes.append(DemoChange("renamed", old_id, f"renamed to {new_id}", new_model_id=new_id))

    _write_weights(root / _WEIGHTS_UPDATED, _BY_ID[_WEIGHTS_UPDATED], salt="retrained")
    changes.append(DemoChange(
        "updated", _WEIGHTS_UPDATED, "model.safetensors rewritten with new weight bytes"))

    model_id, dataset = _CARD_UPDATED
    _update_card(root / model_id, datasets=[*_BY_ID[model_id].datasets, dataset])
    changes.append(DemoChange("updated", model_id, f"card datasets gained {dataset}"))

    for model_id, visibility in _HIDDEN:
        _update_card(root / model_id, visibility=visibility)
        changes.append(DemoChange(
            "visibility_changed", model_id, f"card visibility set to {visibility}"))

    model_id, shutdown_date, successor = _DEPRECATED
    _update_card(root / model_id, shutdown_date=shutdown_date, new_version=successor)
    changes.append(DemoChange(
        "deprecation_announced", model_id,
        f"card announces shutdown on {shutdown_date} with successor {successor}"))
    return changes


def _config_file(model: DemoModel) -> tuple[str, dict[str, object]]:
    family = _FAMILIES[model.family]
    if model.relation == "adapter":
        return "adapter_config.json", {
            "peft_type": "LORA",
            "base_model_name_or_path": model.base_model[0],
            "task_type": family.task_type,
            "r": model.lora_r,
            "lora_alpha": model.lora_alpha,
            "lora_dropout": 0.05,
            "target_modules": list(family.target_modules),
            "bias": "none",
            "inference_mode": True,
            "use_rslora": False,
            "peft_version": "0.12.0",
        }
    config = dict(family.config)
    if model.labels:
        config["id2label"] = {str(i): label for i, label in enumerate(model.labels)}
        config["label2id"] = {label: i for i, label in enumerate(model.labels)}
    return "config.json", config


def _write_weights(folder: Path, model: DemoModel, salt: str = "") -> None:
    seed = f"{model.model_id}:{salt}"
    if model.weights == "gguf":
        name = model.model_id.split("/")[1].removesuffix("-GGUF")
        # GGUF v3 header with zero tensors and zero metadata entries, then filler bytes.
        header = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
        (folder / f"{name}.Q4_K_M.gguf").write_bytes(header + _filler(seed + "gguf", 512))
    elif model.weights == "bin":
        (folder / "pytorch_model.bin").write_bytes(_filler(seed + "bin", 1024))
    elif model.relation == "adapter":
        family = _FAMILIES[model.family]
        tensors = []
        for module in family.target_modules:
            prefix = family.adapter_prefix + module
            tensors.append((f"{prefix}.lora_A.weight", (model.lora_r, 8)))
            tensors.append((f"{prefix}.lora_B.weight", (8, model.lora_r)))
        (folder / "adapter_model.safetensors").write_bytes(
            _safetensors(seed, tuple(tensors), "F16", 2))
    else:
        family = _FAMILIES[model.family]
        tensors = family.tensors
        if model.labels:
            tensors += (("classifier.weight", (len(model.labels), 8)),
                        ("classifier.bias", (len(model.labels),)))
        dtype, width = _DTYPES[str(family.config["torch_dtype"])]
        (folder / "model.safetensors").write_bytes(_safetensors(seed, tensors, dtype, width))


def _safetensors(seed: str, tensors: tuple[tuple[str, tuple[int, ...]], ...],
                 dtype: str, width: int) -> bytes:
    header: dict[str, object] = {}
    data = b""
    for name, shape in tensors:
        chunk = _filler(f"{seed}{name}", math.prod(shape) * width)
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(chunk)]}
        data += chunk
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8-byte alignment
    return struct.pack("<Q", len(encoded)) + encoded + data


def _filler(seed: str, size: int) -> bytes:
    digest = hashlib.sha256(seed.encode()).digest()
    return (digest * (size // len(digest) + 1))[:size]


def _front_matter(model: DemoModel) -> dict[str, object]:
    if model.weights == "gguf":
        library = "gguf"
    elif model.relation == "adapter":
        library = "peft"
    else:
        library = "transformers"
    training_type = {"quantized": "quantization", "merge": "merge"}.get(
        model.relation, "fine-tuning")
    front: dict[str, object] = {
        "base_model": model.base_model[0] if len(model.base_model) == 1 else list(model.base_model),
        "base_model_relation": model.relation,
        "license": model.license,
        "language": list(model.languages),
        "datasets": list(model.datasets),
        "tags": list(model.tags),
        "pipeline_tag": model.pipeline_tag,
        "library_name": library,
        "co2_eq_emissions": {
            "emissions": model.emissions_g,
            "source": model.co2_source,
            "training_type": training_type,
            "geographical_location": model.location,
            "hardware_used": model.hardware,
        },
        "training": {**model.training, "hardware": model.hardware},
    }
    if model.visibility:
        front["visibility"] = model.visibility
    return front


def _card_body(model: DemoModel) -> str:
    return f"\n# {model.model_id.split('/')[1]}\n\n{model.body}"


def _render_card(front: dict[str, object], body: str) -> str:
    return f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True)}---\n{body}"


def _update_card(folder: Path, **fields: object) -> None:
    card = folder / "README.md"
    text = card.read_text(encoding="utf-8")
    end = text.index("\n---\n", 4)
    front = yaml.safe_load(text[4:end + 1])
    front.update(fields)
    _write_text(card, _render_card(front, text[end + 5:]))


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")
