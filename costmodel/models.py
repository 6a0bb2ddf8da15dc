"""Model catalog: transformer shapes that set FLOPs, weight bytes and KV-cache bytes.

A :class:`ModelSpec` holds what the cost model needs and nothing else: layers, hidden size, query
heads, **KV heads** (grouped-query attention stores only those), head size, the MLP's intermediate
size and whether it is gated (SwiGLU: three matrices; else two), the vocabulary, mixture-of-experts
routing (experts, top-k, shared experts, per-expert size, leading dense layers) and multi-head
latent attention (MLA, DeepSeek-V3 / Kimi-K2: the KV cache holds one compressed latent of
``kv_lora_rank + qk_rope_head_dim`` elements per token and layer).

Parameter counts include embeddings (twice unless tied), attention, MLP or experts plus routers,
and norms; they ignore biases and learned position embeddings (under 0.5% for every catalog model).

The catalog covers the models the seed papers use; every entry cites its Hugging Face
``config.json``.
Lookups are case-insensitive, treat ``_``, spaces and ``-`` alike, and accept the Hugging Face
``org/name`` (for instance ``'meta-llama/Llama-2-7b-hf'``); an instance is returned unchanged.

>>> m = get_model("meta-llama/Meta-Llama-3-70B")
>>> m.name, m.kv_bytes_per_token()
('llama-3-70b', 327680)
>>> round(get_model("mixtral-8x7b").active_params() / 1e9, 1)
12.9
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schedlab.costmodel.hardware import canonical_name, resolve_name
from schedlab.errors import check_nonneg_int, check_positive_int

__all__ = ["MODELS", "ModelSpec", "get_model"]


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"The {name!r} parameter of ModelSpec must be a non-empty str. Got {value!r} instead."
        )
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Shape of a decoder-only transformer (dense or MoE, MHA, GQA or MLA).

    Fields: ``num_heads`` query heads, ``num_kv_heads`` KV heads (``num_heads`` for multi-head
    attention), ``head_dim`` per-head size (for MLA: the non-rotary query/key part and the value
    size, which DeepSeek-V3 and Kimi-K2 set equal), ``ffn_hidden`` intermediate size of a dense MLP
    (per branch: a gated MLP has two ``hidden x ffn_hidden`` input matrices), ``gated_mlp``,
    ``vocab_size``, ``dtype_bytes`` of weights and KV (2 for bf16/fp16), ``num_experts`` routed
    experts (0: dense), ``experts_top_k`` routed experts per token, ``num_shared_experts``
    always-on experts, ``moe_ffn_hidden`` per-expert intermediate size, ``first_dense_layers``
    leading layers that are dense in an MoE, ``kv_lora_rank`` / ``qk_rope_head_dim`` /
    ``q_lora_rank`` for MLA (``kv_lora_rank == 0``: standard attention), ``rotary_fraction`` of
    the head size that gets RoPE (Phi-2: 0.4), ``max_context`` tokens, ``tie_embeddings``.

    >>> m = ModelSpec(name="toy", num_layers=2, hidden_size=64, num_heads=4, num_kv_heads=2,
    ...               head_dim=16, ffn_hidden=128, gated_mlp=True, vocab_size=100,
    ...               max_context=512, source="doctest")
    >>> m.kv_bytes_per_token(), m.num_params(), m.is_moe
    (256, 86848, False)
    >>> ModelSpec(name="bad", num_layers=2, hidden_size=64, num_heads=3, num_kv_heads=2,
    ...           head_dim=16, ffn_hidden=128, gated_mlp=True, vocab_size=100,
    ...           max_context=512, source="doctest")
    Traceback (most recent call last):
    ...
    ValueError: The 'num_kv_heads' parameter of ModelSpec must divide num_heads=3. Got 2 instead.
    """

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffn_hidden: int
    gated_mlp: bool
    vocab_size: int
    dtype_bytes: int = 2
    num_experts: int = 0
    experts_top_k: int = 0
    num_shared_experts: int = 0
    moe_ffn_hidden: int = 0
    first_dense_layers: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    q_lora_rank: int = 0
    rotary_fraction: float = 1.0
    max_context: int
    tie_embeddings: bool = False
    source: str

    def __post_init__(self) -> None:
        _check_text(self.name, "name")
        _check_text(self.source, "source")
        for field in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                      "vocab_size", "dtype_bytes", "max_context"):
            check_positive_int(getattr(self, field), field, "ModelSpec")
        for field in ("ffn_hidden", "num_experts", "experts_top_k", "num_shared_experts",
                      "moe_ffn_hidden", "first_dense_layers", "kv_lora_rank", "qk_rope_head_dim",
                      "q_lora_rank"):
            check_nonneg_int(getattr(self, field), field, "ModelSpec")
        for field in ("gated_mlp", "tie_embeddings"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(
                    f"The {field!r} parameter of ModelSpec must be a bool. "
                    f"Got {getattr(self, field)!r} instead."
                )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                "The 'num_kv_heads' parameter of ModelSpec must divide "
                f"num_heads={self.num_heads}. Got {self.num_kv_heads} instead."
            )
        if (
            isinstance(self.rotary_fraction, bool)
            or not isinstance(self.rotary_fraction, (int, float))
            or not 0 < self.rotary_fraction <= 1
        ):
            raise ValueError(
                "The 'rotary_fraction' parameter of ModelSpec must be a float in (0, 1]. "
                f"Got {self.rotary_fraction!r} instead."
            )
        if self.num_experts:
            self._check_moe()
        else:
            for field in ("experts_top_k", "num_shared_experts", "moe_ffn_hidden",
                          "first_dense_layers"):
                if getattr(self, field):
                    raise ValueError(
                        f"The {field!r} parameter of ModelSpec must be 0 for a dense model "
                        f"(num_experts=0). Got {getattr(self, field)} instead."
                    )
        if self.dense_layers and not self.ffn_hidden:
            raise ValueError(
                f"The 'ffn_hidden' parameter of ModelSpec must be >= 1 when the model has "
                f"{self.dense_layers} dense layer(s). Got 0 instead."
            )
        if bool(self.kv_lora_rank) != bool(self.qk_rope_head_dim):
            raise ValueError(
                "The 'qk_rope_head_dim' parameter of ModelSpec must be >= 1 exactly when "
                f"kv_lora_rank >= 1 (multi-head latent attention). Got qk_rope_head_dim="
                f"{self.qk_rope_head_dim} with kv_lora_rank={self.kv_lora_rank} instead."
            )
        if self.q_lora_rank and not self.kv_lora_rank:
            raise ValueError(
                "The 'q_lora_rank' parameter of ModelSpec must be 0 without multi-head latent "
                f"attention (kv_lora_rank=0). Got {self.q_lora_rank} instead."
            )

    def _check_moe(self) -> None:
        if not 1 <= self.experts_top_k <= self.num_experts:
            raise ValueError(
                f"The 'experts_top_k' parameter of ModelSpec must be an int in [1, num_experts="
                f"{self.num_experts}]. Got {self.experts_top_k} instead."
            )
        if self.moe_ffn_hidden < 1:
            raise ValueError(
                "The 'moe_ffn_hidden' parameter of ModelSpec must be an int in [1, inf) for an "
                f"MoE model. Got {self.moe_ffn_hidden} instead."
            )
        if self.first_dense_layers >= self.num_layers:
            raise ValueError(
                f"The 'first_dense_layers' parameter of ModelSpec must be < num_layers="
                f"{self.num_layers} for an MoE model. Got {self.first_dense_layers} instead."
            )

    # ---------------------------------------------------------------- structure
    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model (``num_experts > 0``)."""
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention (``kv_lora_rank > 0``)."""
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        """Number of layers whose MLP is a mixture of experts."""
        return self.num_layers - self.first_dense_layers if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        """Number of layers with a dense MLP of size ``ffn_hidden``."""
        return self.num_layers - self.moe_layers

    # ---------------------------------------------------------------- memory
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes per token over all layers (one copy, no tensor-parallel split).

        Standard attention: ``2 * num_layers * num_kv_heads * head_dim * dtype_bytes`` (keys and
        values of the KV heads only). MLA: ``num_layers * (kv_lora_rank + qk_rope_head_dim) *
        dtype_bytes`` (one compressed latent plus the shared rotary key).

        >>> get_model("llama-2-7b").kv_bytes_per_token()
        524288
        >>> get_model("deepseek-v3").kv_bytes_per_token()
        70272
        """
        if self.is_mla:
            per_layer = self.kv_lora_rank + self.qk_rope_head_dim
        else:
            per_layer = 2 * self.num_kv_heads * self.head_dim
        return self.num_layers * per_layer * self.dtype_bytes

    # ---------------------------------------------------------------- parameters
    def attention_params(self) -> int:
        """Weights of one layer's attention: Q, K, V and output projections (MLA: its factors).

        >>> get_model("llama-3-8b").attention_params()
        41943040
        """
        h, nh, d = self.hidden_size, self.num_heads, self.head_dim
        if not self.is_mla:
            return h * (nh + 2 * self.num_kv_heads) * d + nh * d * h
        qk_dim = d + self.qk_rope_head_dim
        if self.q_lora_rank:
            q = h * self.q_lora_rank + self.q_lora_rank * nh * qk_dim
        else:
            q = h * nh * qk_dim
        kv_down = h * (self.kv_lora_rank + self.qk_rope_head_dim)
        kv_up = self.kv_lora_rank * nh * 2 * d
        return q + kv_down + kv_up + nh * d * h

    def mlp_params(self, intermediate: int) -> int:
        """Weights of one MLP (or one expert) with the given intermediate size.

        >>> get_model("llama-2-7b").mlp_params(11008)
        135266304
        """
        return (3 if self.gated_mlp else 2) * self.hidden_size * intermediate

    def embedding_params(self) -> int:
        """Input embedding plus output (LM head) weights; counted once when tied."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_embeddings else 2)

    def _layer_params(self, experts_per_token: int) -> int:
        norms = 2 * self.hidden_size
        dense = self.dense_layers * self.mlp_params(self.ffn_hidden)
        moe = 0
        if self.is_moe:
            router = self.hidden_size * self.num_experts
            expert = self.mlp_params(self.moe_ffn_hidden)
            experts = experts_per_token + self.num_shared_experts
            moe = self.moe_layers * (experts * expert + router)
        return self.num_layers * (self.attention_params() + norms) + dense + moe

    def num_params(self) -> int:
        """Total parameters (all experts), including embeddings and norms.

        >>> round(get_model("llama-2-7b").num_params() / 1e9, 2)
        6.74
        """
        return self._layer_params(self.num_experts) + self.embedding_params() + self.hidden_size

    def active_params(self) -> int:
        """Parameters used per token: MoE layers count top-k routed plus shared experts.

        >>> round(get_model("deepseek-v3").active_params() / 1e9, 1)
        37.6
        """
        return self._layer_params(self.experts_top_k) + self.embedding_params() + self.hidden_size

    def weight_bytes(self) -> int:
        """Bytes of all weights at ``dtype_bytes`` per parameter.

        >>> get_model("llama-2-7b").weight_bytes() / 1e9
        13.476831232
        """
        return self.num_params() * self.dtype_bytes

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], name: str | None = None, *,
                       ignore_keys: Iterable[str] = ()) -> ModelSpec:
        """Build a spec from a Hugging Face ``config.json`` dict (no network).

        Families (by ``model_type``): ``llama``, ``mistral``, ``qwen2``, ``qwen3``, ``internlm``
        (gated SiLU MLP; ``num_key_value_heads`` and ``head_dim`` optional), ``mixtral``
        (``num_local_experts``, ``num_experts_per_tok``), ``deepseek_v2``, ``deepseek_v3`` and
        ``kimi_k2`` (routed and shared experts, ``first_k_dense_replace``, MLA), ``opt``
        (``ffn_dim``, ReLU, tied embeddings), ``phi`` (GELU, ``partial_rotary_factor``) and the
        original ``qwen`` (Qwen-7B/72B: its ``intermediate_size`` counts both MLP branches, so
        ``ffn_hidden`` is half of it). ``torch_dtype`` (or ``dtype``) sets ``dtype_bytes``
        (absent: 2). ``max_context`` is ``max_position_embeddings`` (rope scaling is not applied).

        Nothing that changes the cost is dropped: a missing required key, a key this function
        does not know (beyond a list of keys that do not change the cost, such as token ids,
        dropout rates and norm epsilons), ``quantization_config``, an active ``sliding_window``
        or an OPT ``word_embed_proj_dim`` different from ``hidden_size`` raise ``ValueError``
        naming the key. Pass ``ignore_keys`` to cost a model without some keys on purpose.

        >>> cfg = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
        ...        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
        ...        "vocab_size": 128256, "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}
        >>> m = ModelSpec.from_hf_config(cfg, name="my-llama")
        >>> m.kv_bytes_per_token(), m.head_dim
        (131072, 128)
        >>> ModelSpec.from_hf_config({**cfg, "num_local_experts": 8})
        Traceback (most recent call last):
        ...
        ValueError: ModelSpec.from_hf_config does not know the key(s) ['num_local_experts'] ...
        """
        return _from_hf_config(config, name, ignore_keys)


# ------------------------------------------------------------------------------------------------
# Catalog
# ------------------------------------------------------------------------------------------------

_HF = "Hugging Face config.json of "


def _dense(name: str, *, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int, vocab: int,
           ctx: int, hf: str, gated: bool = True, head_dim: int | None = None,
           tie: bool = False, rotary_fraction: float = 1.0, note: str = "") -> ModelSpec:
    return ModelSpec(
        name=name, num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=head_dim or hidden // heads, ffn_hidden=ffn, gated_mlp=gated, vocab_size=vocab,
        max_context=ctx, tie_embeddings=tie, rotary_fraction=rotary_fraction,
        source=_HF + hf + (f"; {note}" if note else ""),
    )


def _moe(name: str, *, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int, vocab: int,
         ctx: int, hf: str, experts: int, top_k: int, moe_ffn: int, shared: int = 0,
         first_dense: int = 0, kv_lora_rank: int = 0, q_lora_rank: int = 0,
         qk_rope_head_dim: int = 0, head_dim: int | None = None, note: str = "") -> ModelSpec:
    return ModelSpec(
        name=name, num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=head_dim or hidden // heads, ffn_hidden=ffn, gated_mlp=True, vocab_size=vocab,
        max_context=ctx, num_experts=experts, experts_top_k=top_k, num_shared_experts=shared,
        moe_ffn_hidden=moe_ffn, first_dense_layers=first_dense, kv_lora_rank=kv_lora_rank,
        q_lora_rank=q_lora_rank, qk_rope_head_dim=qk_rope_head_dim,
        source=_HF + hf + (f"; {note}" if note else ""),
    )


_MLA_NOTE = ("MLA: qk_nope_head_dim = v_head_dim = 128 -> head_dim; the multi-token-prediction "
             "layer (num_nextn_predict_layers) is not counted")

# (spec, aliases): aliases include the Hugging Face org/name forms, which must resolve (the Vidur
# profiles in ../shared/costmodel/vidur-profiling/compute/a100/<org>/<model>/ are named that way).
_CATALOG: tuple[tuple[ModelSpec, tuple[str, ...]], ...] = (
    (_dense("llama-2-7b", layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008, vocab=32000,
            ctx=4096, hf="meta-llama/Llama-2-7b-hf"),
     ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf", "llama2-7b")),
    (_dense("llama-2-13b", layers=40, hidden=5120, heads=40, kv_heads=40, ffn=13824, vocab=32000,
            ctx=4096, hf="meta-llama/Llama-2-13b-hf"),
     ("meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-13b-chat-hf", "llama2-13b")),
    (_dense("llama-2-70b", layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, vocab=32000,
            ctx=4096, hf="meta-llama/Llama-2-70b-hf"),
     ("meta-llama/Llama-2-70b-hf", "meta-llama/Llama-2-70b-chat-hf", "llama2-70b")),
    (_dense("llama-33b", layers=60, hidden=6656, heads=52, kv_heads=52, ffn=17920, vocab=32000,
            ctx=2048, hf="huggyllama/llama-30b", gated=True,
            note="LLaMA-1 'LLaMA-33B' (Touvron et al. 2023, Table 2: 32.5B parameters)"),
     ("huggyllama/llama-30b", "llama-30b", "llama1-33b")),
    (_dense("llama-65b", layers=80, hidden=8192, heads=64, kv_heads=64, ffn=22016, vocab=32000,
            ctx=2048, hf="huggyllama/llama-65b", gated=True,
            note="LLaMA-1 65B (Touvron et al. 2023, Table 2: 65.2B parameters)"),
     ("huggyllama/llama-65b", "llama1-65b")),
    (_dense("llama-3-8b", layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256,
            ctx=8192, hf="meta-llama/Meta-Llama-3-8B"),
     ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct", "llama3-8b",
      "meta-llama-3-8b")),
    (_dense("llama-3-70b", layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, vocab=128256,
            ctx=8192, hf="meta-llama/Meta-Llama-3-70B"),
     ("meta-llama/Meta-Llama-3-70B", "meta-llama/Meta-Llama-3-70B-Instruct", "llama3-70b",
      "meta-llama-3-70b")),
    (_dense("opt-13b", layers=40, hidden=5120, heads=40, kv_heads=40, ffn=20480, vocab=50272,
            ctx=2048, hf="facebook/opt-13b", gated=False, tie=True,
            note="ReLU MLP (ffn_dim), tied embeddings"),
     ("facebook/opt-13b",)),
    (_dense("opt-66b", layers=64, hidden=9216, heads=72, kv_heads=72, ffn=36864, vocab=50272,
            ctx=2048, hf="facebook/opt-66b", gated=False, tie=True,
            note="ReLU MLP (ffn_dim), tied embeddings"),
     ("facebook/opt-66b",)),
    (_dense("opt-175b", layers=96, hidden=12288, heads=96, kv_heads=96, ffn=49152, vocab=50272,
            ctx=2048, hf="facebook/opt-175b", gated=False, tie=True,
            note="weights by request only; shape from Zhang et al. 2022 (OPT), Table 1"),
     ("facebook/opt-175b",)),
    (_dense("qwen2.5-7b", layers=28, hidden=3584, heads=28, kv_heads=4, ffn=18944, vocab=152064,
            ctx=32768, hf="Qwen/Qwen2.5-7B", note="131072 with YaRN rope scaling"),
     ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct", "qwen2-5-7b")),
    (_dense("qwen2.5-32b", layers=64, hidden=5120, heads=40, kv_heads=8, ffn=27648, vocab=152064,
            ctx=32768, hf="Qwen/Qwen2.5-32B", note="131072 with YaRN rope scaling"),
     ("Qwen/Qwen2.5-32B", "Qwen/Qwen2.5-32B-Instruct", "qwen2-5-32b")),
    (_dense("qwen2.5-72b", layers=80, hidden=8192, heads=64, kv_heads=8, ffn=29568, vocab=152064,
            ctx=32768, hf="Qwen/Qwen2.5-72B", note="131072 with YaRN rope scaling"),
     ("Qwen/Qwen2.5-72B", "Qwen/Qwen2.5-72B-Instruct", "qwen2-5-72b")),
    (_dense("qwen-72b", layers=80, hidden=8192, heads=64, kv_heads=64, ffn=24576, vocab=152064,
            ctx=32768, hf="Qwen/Qwen-72B",
            note="original Qwen: config intermediate_size 49152 is twice the per-branch size "
                 "(w1, w2: hidden x 24576), so ffn_hidden = 24576"),
     ("Qwen/Qwen-72B", "Qwen/Qwen-72B-Chat", "qwen1-72b")),
    (_dense("codellama-34b", layers=48, hidden=8192, heads=64, kv_heads=8, ffn=22016, vocab=32000,
            ctx=16384, hf="codellama/CodeLlama-34b-hf"),
     ("codellama/CodeLlama-34b-hf", "codellama/CodeLlama-34b-Instruct-hf",
      "codellama/CodeLlama-34b-Python-hf", "code-llama-34b")),
    (_dense("internlm-20b", layers=60, hidden=5120, heads=40, kv_heads=40, ffn=13824,
            vocab=103168, ctx=16384, hf="internlm/internlm-20b",
            note="trained at 4k, 16k context by extrapolation (InternLM-20B model card)"),
     ("internlm/internlm-20b", "internlm/internlm-chat-20b")),
    (_dense("phi-2", layers=32, hidden=2560, heads=32, kv_heads=32, ffn=10240, vocab=51200,
            ctx=2048, hf="microsoft/phi-2", gated=False, rotary_fraction=0.4,
            note="GELU MLP, partial_rotary_factor 0.4"),
     ("microsoft/phi-2", "phi2")),
    (_dense("lwm-text-1m", layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008, vocab=32000,
            ctx=1048576, hf="LargeWorldModel/LWM-Text-1M",
            note="Llama-2-7B shape with a 1M-token context (Liu et al. 2024, World Model on "
                 "Million-Length Video and Language)"),
     ("LargeWorldModel/LWM-Text-1M", "LargeWorldModel/LWM-Text-Chat-1M", "lwm-1m")),
    (_moe("mixtral-8x7b", layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=32000,
          ctx=32768, hf="mistralai/Mixtral-8x7B-v0.1", experts=8, top_k=2, moe_ffn=14336,
          note="every layer MoE; intermediate_size is per expert"),
     ("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral")),
    (_moe("moonlight-16b-a3b", layers=27, hidden=2048, heads=16, kv_heads=16, ffn=11264,
          vocab=163840, ctx=8192, hf="moonshotai/Moonlight-16B-A3B", experts=64, top_k=6,
          moe_ffn=1408, shared=2, first_dense=1, kv_lora_rank=512, qk_rope_head_dim=64,
          head_dim=128, note="DeepSeek-V3 architecture, q_lora_rank null; " + _MLA_NOTE),
     ("moonshotai/Moonlight-16B-A3B", "moonshotai/Moonlight-16B-A3B-Instruct", "moonlight")),
    (_moe("deepseek-v3", layers=61, hidden=7168, heads=128, kv_heads=128, ffn=18432,
          vocab=129280, ctx=163840, hf="deepseek-ai/DeepSeek-V3", experts=256, top_k=8,
          moe_ffn=2048, shared=1, first_dense=3, kv_lora_rank=512, q_lora_rank=1536,
          qk_rope_head_dim=64, head_dim=128,
          note="released weights are fp8 (dtype_bytes=2 here: bf16 serving); " + _MLA_NOTE),
     ("deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-V3-Base", "deepseek-ai/DeepSeek-V3-0324")),
    (_moe("kimi-k2", layers=61, hidden=7168, heads=64, kv_heads=64, ffn=18432, vocab=163840,
          ctx=131072, hf="moonshotai/Kimi-K2-Instruct", experts=384, top_k=8, moe_ffn=2048,
          shared=1, first_dense=1, kv_lora_rank=512, q_lora_rank=1536, qk_rope_head_dim=64,
          head_dim=128,
          note="released weights are fp8 (dtype_bytes=2 here: bf16 serving); " + _MLA_NOTE),
     ("moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2-Base", "kimi-k2-instruct")),
)

MODELS: Mapping[str, ModelSpec] = types.MappingProxyType({m.name: m for m, _ in _CATALOG})

_MODEL_ALIASES: Mapping[str, str] = types.MappingProxyType({
    canonical_name(alias): m.name for m, aliases in _CATALOG for alias in aliases
})


def get_model(name: str | ModelSpec) -> ModelSpec:
    """The catalog :class:`ModelSpec` called ``name`` or its Hugging Face ``org/name``.

    >>> get_model("Meta-Llama/Llama-2-7B-HF").name
    'llama-2-7b'
    >>> get_model("llama-2-7")
    Traceback (most recent call last):
    ...
    ValueError: Unknown model 'llama-2-7'. Close matches: ...
    """
    return resolve_name("model", name, MODELS, _MODEL_ALIASES, ModelSpec)


# ------------------------------------------------------------------------------------------------
# Hugging Face config.json
# ------------------------------------------------------------------------------------------------

_WHERE_HF = "ModelSpec.from_hf_config"

#: Keys that do not change FLOPs, bytes or KV size (ids, dropout, init, norm eps, rope base,
#: router training losses, runtime flags). Biases are among them: under 0.1% of the weights.
_COST_FREE_KEYS = frozenset({
    "_name_or_path", "architectures", "auto_map", "transformers_version", "model_type",
    "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "pad_token_id", "tokenizer_class",
    "initializer_range", "initializer_factor", "init_std", "use_cache", "pretraining_tp",
    "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "rope_theta", "rope_scaling",
    "rotary", "rotary_emb_base", "attention_dropout", "attention_bias", "mlp_bias", "bias",
    "hidden_act", "activation_function", "dropout", "activation_dropout", "resid_pdrop",
    "embd_pdrop", "attn_pdrop", "emb_dropout_prob", "attn_dropout_prob", "layerdrop",
    "tie_word_embeddings", "max_position_embeddings", "max_window_layers", "use_sliding_window",
    "sliding_window", "router_aux_loss_coef", "output_router_logits", "router_jitter_noise",
    "aux_loss_alpha", "seq_aux", "norm_topk_prob", "routed_scaling_factor", "scoring_func",
    "topk_method", "n_group", "topk_group", "ep_size", "moe_layer_freq",
    "num_nextn_predict_layers", "qk_layernorm", "do_layer_norm_before",
    "_remove_final_layer_norm", "enable_bias", "layer_norm_elementwise_affine", "prefix",
    "no_bias", "use_dynamic_ntk", "use_logn_attn", "use_flash_attn", "softmax_in_fp32",
    "scale_attn_weights", "onnx_safe", "use_cache_quantization", "use_cache_kernel",
    "bf16", "fp16", "fp32", "seq_length", "kv_channels", "rotary_pct",
})

_DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2,
                "float8_e4m3fn": 1, "float8_e5m2": 1}

_LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "internlm")
_DEEPSEEK_LIKE = ("deepseek_v2", "deepseek_v3", "kimi_k2")
_FAMILIES = (*_LLAMA_LIKE, "mixtral", *_DEEPSEEK_LIKE, "opt", "phi", "qwen")


class _Reader:
    """Reads keys from a config and remembers which ones it used."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return self.config.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.config.get(key)
        return default if value is None else value

    def integer(self, key: str, default: int | None = None, *, positive: bool = True) -> int:
        value = self.raw(key, default)
        if value is None:
            raise ValueError(f"{_WHERE_HF}: the config has no {key!r} (required).")
        check = check_positive_int if positive else check_nonneg_int
        return check(value, key, _WHERE_HF)


def _dtype_bytes(r: _Reader) -> int:
    for key in ("torch_dtype", "dtype"):
        if r.has(key):
            value = str(r.raw(key)).removeprefix("torch.")
            if value not in _DTYPE_BYTES:
                raise ValueError(
                    f"The {key!r} key of the config given to {_WHERE_HF} must be one of "
                    f"{sorted(_DTYPE_BYTES)}. Got {value!r} instead."
                )
            return _DTYPE_BYTES[value]
    for flag, nbytes in (("bf16", 2), ("fp16", 2), ("fp32", 4)):  # original Qwen's flags
        if r.raw(flag, False) is True:
            return nbytes
    return 2


def _check_sliding_window(r: _Reader, model_type: str, max_context: int) -> None:
    window = r.raw("sliding_window")
    if window is None:
        return
    enabled = r.raw("use_sliding_window", True) if model_type in ("qwen2", "qwen3") else True
    if enabled and window < max_context:
        raise ValueError(
            f"The 'sliding_window' key of the config given to {_WHERE_HF} is {window} (< "
            f"max_position_embeddings={max_context}): sliding-window attention is not modelled. "
            "Pass ignore_keys=['sliding_window'] to cost full attention."
        )


def _from_hf_config(config: Mapping[str, Any], name: str | None,
                    ignore_keys: Iterable[str]) -> ModelSpec:
    if not isinstance(config, Mapping):
        raise ValueError(
            f"The 'config' parameter of {_WHERE_HF} must be a dict (a parsed config.json). "
            f"Got {type(config).__name__} instead."
        )
    ignored = {ignore_keys} if isinstance(ignore_keys, str) else set(ignore_keys)
    r = _Reader({k: v for k, v in config.items() if k not in ignored})
    if not r.has("model_type"):
        raise ValueError(f"{_WHERE_HF}: the config has no 'model_type' (required).")
    model_type = str(r.raw("model_type"))
    if model_type not in _FAMILIES:
        raise ValueError(
            f"The 'model_type' key of the config given to {_WHERE_HF} must be one of "
            f"{sorted(_FAMILIES)}. Got {model_type!r} instead."
        )
    if r.has("quantization_config"):
        raise ValueError(
            f"The 'quantization_config' key of the config given to {_WHERE_HF} is not modelled "
            "(ModelSpec has one element size for weights and KV). Pass "
            "ignore_keys=['quantization_config'] to cost the model at its torch_dtype, or set "
            "dtype_bytes with dataclasses.replace."
        )
    layers, hidden = r.integer("num_hidden_layers"), r.integer("hidden_size")
    heads = r.integer("num_attention_heads")
    fields: dict[str, Any] = {
        "num_layers": layers, "hidden_size": hidden, "num_heads": heads,
        "num_kv_heads": r.integer("num_key_value_heads", heads),
        "vocab_size": r.integer("vocab_size"),
        "dtype_bytes": _dtype_bytes(r), "gated_mlp": True,
        "tie_embeddings": bool(r.raw("tie_word_embeddings", model_type == "opt")),
    }
    if model_type in _DEEPSEEK_LIKE:
        fields.update(_deepseek_fields(r))
    else:
        default_head_dim = hidden // heads if hidden % heads == 0 else None
        key = "kv_channels" if model_type == "qwen" else "head_dim"
        fields["head_dim"] = r.integer(key, default_head_dim)
        fields.update(_mlp_fields(r, model_type))
    if model_type == "qwen":
        fields["max_context"] = r.integer("max_position_embeddings", r.raw("seq_length"))
        fields["rotary_fraction"] = float(r.raw("rotary_pct", 1.0))
    else:
        fields["max_context"] = r.integer("max_position_embeddings")
    _check_sliding_window(r, model_type, fields["max_context"])
    unknown = sorted(set(r.config) - r.used - _COST_FREE_KEYS)
    if unknown:
        raise ValueError(
            f"{_WHERE_HF} does not know the key(s) {unknown} for model_type {model_type!r}, "
            "which may change the cost. Remove them or pass ignore_keys=[...] to cost the model "
            "without them."
        )
    label = name if name is not None else str(config.get("_name_or_path") or f"{model_type}-custom")
    return ModelSpec(name=label, source=f"{_WHERE_HF} (model_type {model_type!r})", **fields)


def _mlp_fields(r: _Reader, model_type: str) -> dict[str, Any]:
    if model_type == "opt":
        proj = r.integer("word_embed_proj_dim", r.raw("hidden_size"))
        if proj != r.raw("hidden_size"):
            raise ValueError(
                f"The 'word_embed_proj_dim' key of the config given to {_WHERE_HF} must equal "
                f"hidden_size={r.raw('hidden_size')} (OPT's project_in/out layers are not "
                f"modelled). Got {proj} instead."
            )
        return {"ffn_hidden": r.integer("ffn_dim"), "gated_mlp": False}
    if model_type == "phi":
        return {"ffn_hidden": r.integer("intermediate_size"), "gated_mlp": False,
                    "rotary_fraction": float(r.raw("partial_rotary_factor", 1.0))}
    if model_type == "qwen":
        both = r.integer("intermediate_size")
        if both % 2:
            raise ValueError(
                f"The 'intermediate_size' key of the config given to {_WHERE_HF} must be even for "
                f"the original Qwen (it counts both MLP branches). Got {both} instead."
            )
        return {"ffn_hidden": both // 2}
    ffn = r.integer("intermediate_size")
    if model_type != "mixtral":
        return {"ffn_hidden": ffn}
    return {"ffn_hidden": ffn, "moe_ffn_hidden": ffn, "num_experts": r.integer("num_local_experts"),
                "experts_top_k": r.integer("num_experts_per_tok")}


def _deepseek_fields(r: _Reader) -> dict[str, Any]:
    nope, v = r.integer("qk_nope_head_dim"), r.integer("v_head_dim")
    if nope != v:
        raise ValueError(
            f"The 'v_head_dim' key of the config given to {_WHERE_HF} must equal "
            f"qk_nope_head_dim={nope} (ModelSpec.head_dim stands for both). Got {v} instead."
        )
    if r.raw("moe_layer_freq", 1) != 1:
        raise ValueError(
            f"The 'moe_layer_freq' key of the config given to {_WHERE_HF} must be 1 (every layer "
            f"after first_k_dense_replace is MoE). Got {r.raw('moe_layer_freq')!r} instead."
        )
    experts = r.integer("n_routed_experts", 0, positive=False)
    fields = {
        "head_dim": nope, "num_kv_heads": r.raw("num_attention_heads"),
        "ffn_hidden": r.integer("intermediate_size"), "kv_lora_rank": r.integer("kv_lora_rank"),
        "q_lora_rank": r.integer("q_lora_rank", 0, positive=False),
        "qk_rope_head_dim": r.integer("qk_rope_head_dim"), "num_experts": experts,
    }
    if experts:
        fields.update(
            experts_top_k=r.integer("num_experts_per_tok"),
            num_shared_experts=r.integer("n_shared_experts", 0, positive=False),
            moe_ffn_hidden=r.integer("moe_intermediate_size"),
            first_dense_layers=r.integer("first_k_dense_replace", 0, positive=False),
        )
    return fields
