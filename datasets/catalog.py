"""The real traces shipped inside the package, with their source, licence and checksum.

The files live in ``schedlab/datasets/data/`` (licences and attribution in ``NOTICE.md`` there),
unmodified copies of the public files (one gzipped: its sha256 is of the decompressed bytes);
``sha256`` is of those bytes.

>>> len(SHIPPED), sorted(SHIPPED)[-1]
(5, 'sharegpt-lengths')
>>> SHIPPED["azure-conv-2023"].rows, SHIPPED["azure-conv-2023"].licence
(19366, 'CC-BY-4.0')
>>> verify_checksum("mooncake-synthetic")
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from schedlab.errors import unknown_name_error

__all__ = ["DATA_DIR", "SHIPPED", "ShippedTrace", "sha256_of", "shipped_path", "verify_checksum"]

#: Folder of the shipped data files (and ``NOTICE.md`` with licences and attribution).
DATA_DIR = Path(__file__).resolve().parent / "data"

_MOONCAKE = (
    'Ruoyu Qin et al., "Mooncake: Trading More Storage for Less Computation - A KVCache-centric '
    'Architecture for Serving LLM Chatbot", USENIX FAST 2025 (Moonshot AI / Kimi)'
)
_AZURE = (
    '"Azure LLM Inference Trace 2023", Microsoft Azure; Patel et al., "Splitwise: Efficient '
    'generative LLM inference using phase splitting", ISCA 2024'
)

_ETALON = (
    'Amey Agrawal et al., "etalon: Holistic Performance Evaluation Framework for LLM Inference '
    'Systems", arXiv 2407.07000 (Systems for AI Lab, Georgia Institute of Technology); the same '
    "file serves Sarathi-Serve (OSDI 2024); lengths of ShareGPT conversations users shared from "
    "ChatGPT"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShippedTrace:
    """One shipped trace: file name in :data:`DATA_DIR`, format, size and provenance."""

    name: str
    file: str
    format: str
    rows: int
    sha256: str
    licence: str
    licence_url: str
    source: str
    attribution: str
    description: str


SHIPPED: dict[str, ShippedTrace] = {
    t.name: t
    for t in (
        ShippedTrace(
            name="mooncake-conversation",
            file="mooncake_conversation_trace.jsonl",
            format="mooncake",
            rows=12031,
            sha256="b8cbb061a85206d729d91cdc2981f43c9e0d99209dce588d3af5f7934408b9df",
            licence="Apache-2.0",
            licence_url="https://www.apache.org/licenses/LICENSE-2.0",
            source=(
                "https://github.com/kvcache-ai/Mooncake "
                "FAST25-release/traces/conversation_trace.jsonl"
            ),
            attribution=_MOONCAKE,
            description="1 hour of real Kimi chat traffic with prefix-block hashes (512 tokens)",
        ),
        ShippedTrace(
            name="mooncake-synthetic",
            file="mooncake_synthetic_trace.jsonl",
            format="mooncake",
            rows=3993,
            sha256="bd070915a98fc0ed264d7cfef2ce746002eb3076a695ec31ba2674c0111ec131",
            licence="Apache-2.0",
            licence_url="https://www.apache.org/licenses/LICENSE-2.0",
            source=(
                "https://github.com/kvcache-ai/Mooncake "
                "FAST25-release/traces/synthetic_trace.jsonl"
            ),
            attribution=_MOONCAKE,
            description="multi-turn conversations from public datasets, Poisson arrivals",
        ),
        ShippedTrace(
            name="sharegpt-lengths",
            file="sharegpt_8k_filtered_stats_llama2_tokenizer.csv.gz",
            format="vidur",
            rows=30731,
            sha256="6d6c296302a853e2669a674a96f269283e60c57e60363bd450588a1066919f9f",
            licence="Apache-2.0",
            licence_url="https://www.apache.org/licenses/LICENSE-2.0",
            source=(
                "https://github.com/project-etalon/etalon "
                "data/processed_traces/sharegpt_8k_filtered_stats_llama2_tokenizer.csv"
            ),
            attribution=_ETALON,
            description=(
                "ShareGPT chat turns' prompt and output token counts (Llama-2 tokenizer; no "
                "times, no text; a prompt holds the conversation so far; totals up to 8,192, "
                "outputs up to 1,024 tokens)"
            ),
        ),
        ShippedTrace(
            name="azure-code-2023",
            file="AzureLLMInferenceTrace_code.csv",
            format="azure",
            rows=8819,
            sha256="54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
            licence="CC-BY-4.0",
            licence_url="https://creativecommons.org/licenses/by/4.0/",
            source=(
                "https://github.com/Azure/AzurePublicDataset "
                "data/AzureLLMInferenceTrace_code.csv"
            ),
            attribution=_AZURE,
            description="1 hour of Azure code-completion LLM requests (2023-11-16)",
        ),
        ShippedTrace(
            name="azure-conv-2023",
            file="AzureLLMInferenceTrace_conv.csv",
            format="azure",
            rows=19366,
            sha256="2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
            licence="CC-BY-4.0",
            licence_url="https://creativecommons.org/licenses/by/4.0/",
            source=(
                "https://github.com/Azure/AzurePublicDataset "
                "data/AzureLLMInferenceTrace_conv.csv"
            ),
            attribution=_AZURE,
            description="1 hour of Azure conversation LLM requests (2023-11-16)",
        ),
    )
}


def shipped_path(name: str) -> Path:
    """Path of a shipped trace's file; unknown names raise ``ValueError`` with close matches."""
    if name not in SHIPPED:
        raise unknown_name_error("dataset", name, SHIPPED)
    return DATA_DIR / SHIPPED[name].file


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (of the decompressed bytes for ``*.gz``)."""
    import gzip

    h = hashlib.sha256()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(name: str) -> bool:
    """Whether the shipped file of ``name`` still has its recorded sha256."""
    return sha256_of(shipped_path(name)) == SHIPPED[name].sha256
