"""The file formats :func:`schedlab.datasets.load` reads, and how a format is inferred.

============================  ======  =====================================================
format                        kind    columns read
============================  ======  =====================================================
``mooncake``                  JSONL   ``timestamp`` (ms), ``input_length``, ``output_length``,
                                      ``hash_ids`` (512-token prefix blocks)
``azure``                     CSV     ``TIMESTAMP`` (date-time), ``ContextTokens``,
                                      ``GeneratedTokens``
``vidur``                     CSV     ``num_prefill_tokens``, ``num_decode_tokens`` (no times)
``proxy-predictions``         CSV     ``output_token_length`` (true length, no prompt length,
                                      no times), ``predicted_length`` -> feature
                                      ``predicted_class``, ``latency`` -> feature
                                      ``predictor_latency_s``
``csv`` / ``jsonl``           either  a user ``columns`` mapping (see :func:`user_spec`)
============================  ======  =====================================================

>>> sorted(FORMATS)
['azure', 'csv', 'jsonl', 'mooncake', 'proxy-predictions', 'vidur']
>>> match_columns(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
'azure'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schedlab.datasets.assemble import ColumnSpec

__all__ = ["FORMATS", "FileFormat", "match_columns", "user_spec"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileFormat:
    """A named file format: its kind (``"csv"`` or ``"jsonl"``) and its column spec.

    ``spec`` is ``None`` for the generic ``csv``/``jsonl`` formats, which need a user mapping.
    """

    name: str
    kind: str
    spec: ColumnSpec | None
    block_tokens: int = 512
    description: str = ""


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in (
        FileFormat(
            name="mooncake",
            kind="jsonl",
            spec=ColumnSpec(
                arrival="timestamp",
                time_unit="ms",
                input_tokens="input_length",
                output_tokens="output_length",
                prefix_blocks="hash_ids",
            ),
            block_tokens=512,
            description=(
                "Mooncake FAST'25 JSONL: timestamp (ms), input_length, output_length, hash_ids"
            ),
        ),
        FileFormat(
            name="azure",
            kind="csv",
            spec=ColumnSpec(
                arrival="TIMESTAMP",
                time_unit="datetime",
                input_tokens="ContextTokens",
                output_tokens="GeneratedTokens",
            ),
            description="Azure LLM inference CSV: TIMESTAMP, ContextTokens, GeneratedTokens",
        ),
        FileFormat(
            name="vidur",
            kind="csv",
            spec=ColumnSpec(input_tokens="num_prefill_tokens", output_tokens="num_decode_tokens"),
            description=(
                "Vidur length statistics CSV: num_prefill_tokens, num_decode_tokens (no times)"
            ),
        ),
        FileFormat(
            name="proxy-predictions",
            kind="csv",
            spec=ColumnSpec(
                output_tokens="output_token_length",
                features={
                    "predicted_class": ("predicted_length", "int"),
                    "predictor_latency_s": ("latency", "float"),
                },
            ),
            description="SSJF proxy-model predictions CSV: output_token_length, predicted_length "
            "(class), latency (no prompt lengths, no times)",
        ),
        FileFormat(name="csv", kind="csv", spec=None, description="any CSV with a columns mapping"),
        FileFormat(
            name="jsonl", kind="jsonl", spec=None, description="any JSONL with a columns mapping"
        ),
    )
}


def match_columns(columns: list[str]) -> str | None:
    """The known format whose required columns all appear in ``columns`` (a header or JSON keys)."""
    have = set(columns)
    for f in FORMATS.values():
        if f.spec is not None and set(_required(f.spec)) <= have:
            return f.name
    return None


def _required(spec: ColumnSpec) -> list[str]:
    return spec.source_columns()


_FIELDS = ("arrival_s", "input_tokens", "output_tokens", "group_id")


def user_spec(columns: Mapping[str, str], *, time_unit: str = "s", kind: str = "csv") -> ColumnSpec:
    """A :class:`ColumnSpec` from a user mapping of workload field -> source column.

    Keys: ``arrival_s`` (optional; timestamps in ``time_unit``: ``s``, ``ms``, ``us``, ``ns`` or
    ``datetime`` text), ``input_tokens`` (optional), ``output_tokens`` (required), ``group_id``
    (optional), ``prefix_block_ids`` (JSONL only: a list of block ids per record) and
    ``feature.NAME`` for extra columns kept as they are.

    >>> user_spec({"arrival_s": "ts", "output_tokens": "gen", "feature.user": "u"}, time_unit="ms")
    ColumnSpec(output_tokens='gen', arrival='ts', time_unit='ms', input_tokens=None,
               group_id=None, features={'user': ('u', 'raw')}, prefix_blocks=None)
    """
    cols = dict(columns)
    unknown = [
        k
        for k in cols
        if k not in _FIELDS and not k.startswith("feature.") and k != "prefix_block_ids"
    ]
    if unknown or "output_tokens" not in cols:
        raise ValueError(
            "The 'columns' parameter of load must map workload fields to source columns, with "
            "'output_tokens' required and keys among "
            f"{[*_FIELDS, 'prefix_block_ids', 'feature.NAME']}. Got {cols!r} instead."
        )
    if "prefix_block_ids" in cols and kind != "jsonl":
        raise ValueError(
            "The 'columns' parameter of load can map 'prefix_block_ids' only for JSONL files "
            f"(lists of block ids). Got it for a {kind} file."
        )
    return ColumnSpec(
        arrival=cols.get("arrival_s"),
        time_unit=time_unit,
        input_tokens=cols.get("input_tokens"),
        output_tokens=cols["output_tokens"],
        group_id=cols.get("group_id"),
        features={
            k[len("feature.") :]: (v, "raw") for k, v in cols.items() if k.startswith("feature.")
        },
        prefix_blocks=cols.get("prefix_block_ids"),
    )
