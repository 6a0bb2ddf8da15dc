"""Hardware and model catalogs: published figures (source beside each), lookups, validation,
``from_hf_config`` and agreement with the shapes of the Vidur A100 profiles in ../shared."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import pickle
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import hardware, models
from schedlab.costmodel.hardware import (
    ACCELERATORS,
    INTERCONNECTS,
    MEMORY_DEVICES,
    Accelerator,
    Interconnect,
    MemoryDevice,
    get_accelerator,
    get_interconnect,
    get_memory_device,
)
from schedlab.costmodel.models import MODELS, ModelSpec, get_model

# ------------------------------------------------------------------------------------------------
# Published figures
# ------------------------------------------------------------------------------------------------

# KV-cache bytes per token in 16-bit precision.
PUBLISHED_KV_BYTES = [
    # Mooncake (Qin et al., FAST'25), Sec. 2: "LLaMA3-70B ... 320 KB" of KV cache per token.
    ("llama-3-70b", 327_680),
    # Zhao et al., "Insights into DeepSeek-V3" (ISCA'25), Table 1: Qwen-2.5 72B 327.680 KB/token.
    ("qwen2.5-72b", 327_680),
    # Same table: DeepSeek-V3 (MLA) 70.272 KB/token = 61 layers x (512 + 64) x 2 bytes.
    ("deepseek-v3", 70_272),
    # vLLM (Kwon et al., SOSP'23), Sec. 3: OPT-13B needs 2 x 5120 x 40 x 2 B = 800 KB per token.
    ("opt-13b", 819_200),
    # Llama-2-7B (MHA, 32 layers x 32 KV heads x 128): 2 x 32 x 4096 x 2 B = 0.5 MiB per token, as
    # quoted by e.g. the vLLM blog and DistServe (Zhong et al., OSDI'24).
    ("llama-2-7b", 524_288),
]


@pytest.mark.parametrize(("name", "expected"), PUBLISHED_KV_BYTES)
def test_kv_bytes_per_token_matches_published(name: str, expected: int) -> None:
    assert get_model(name).kv_bytes_per_token() == expected


# Exact parameter counts that Hugging Face reports from the safetensors of each model page
# (bias-free architectures, so the count is exact).
HF_EXACT_PARAMS = [
    ("llama-2-7b", 6_738_415_616),   # meta-llama/Llama-2-7b-hf
    ("llama-2-13b", 13_015_864_320),  # meta-llama/Llama-2-13b-hf
    ("llama-2-70b", 68_976_648_192),  # meta-llama/Llama-2-70b-hf
    ("llama-3-8b", 8_030_261_248),    # meta-llama/Meta-Llama-3-8B
    ("llama-3-70b", 70_553_706_496),  # meta-llama/Meta-Llama-3-70B
    ("mixtral-8x7b", 46_702_792_704),  # mistralai/Mixtral-8x7B-v0.1
]


@pytest.mark.parametrize(("name", "expected"), HF_EXACT_PARAMS)
def test_num_params_exact_for_bias_free_models(name: str, expected: int) -> None:
    assert get_model(name).num_params() == expected


# (name, advertised total, advertised active, relative tolerance, source)
ADVERTISED_PARAMS = [
    ("opt-13b", 13e9, None, 0.02, "OPT paper (Zhang et al. 2022), Table 1"),
    ("opt-66b", 66e9, None, 0.02, "OPT paper, Table 1"),
    ("opt-175b", 175e9, None, 0.02, "OPT paper, Table 1"),
    ("qwen2.5-7b", 7.61e9, None, 0.02, "Qwen2.5-7B model card: 7.61B"),
    ("qwen2.5-32b", 32.5e9, None, 0.02, "Qwen2.5-32B model card: 32.5B"),
    ("qwen2.5-72b", 72.7e9, None, 0.02, "Qwen2.5-72B model card: 72.7B"),
    ("qwen-72b", 72e9, None, 0.02, "Qwen-72B model card"),
    ("codellama-34b", 33.7e9, None, 0.02, "CodeLlama-34b-hf model page: 33.7B"),
    ("internlm-20b", 20e9, None, 0.02, "InternLM-20B model card"),
    ("phi-2", 2.7e9, None, 0.04, "Phi-2 model card: 2.7B (rounded down from 2.78B)"),
    ("lwm-text-1m", 6.74e9, None, 0.02, "LWM-Text-1M is Llama-2-7B shaped"),
    ("mixtral-8x7b", 46.7e9, 12.9e9, 0.02, "Mistral AI, 'Mixtral of experts' blog: 46.7B / 12.9B"),
    ("deepseek-v3", 671e9, 37e9, 0.02, "DeepSeek-V3 technical report: 671B total, 37B activated"),
    ("kimi-k2", 1.04e12, 32e9, 0.03, "Kimi K2 technical report: 1.04T total, 32B activated"),
    ("moonlight-16b-a3b", 16e9, 3e9, 0.05, "Moonlight-16B-A3B model card: 16B / 3B (rounded)"),
]


@pytest.mark.parametrize(("name", "total", "active", "rtol", "source"), ADVERTISED_PARAMS)
def test_param_counts_match_advertised(name, total, active, rtol, source) -> None:
    model = get_model(name)
    assert model.num_params() == pytest.approx(total, rel=rtol), source
    if active is None:
        assert model.active_params() == model.num_params()
    else:
        assert model.active_params() == pytest.approx(active, rel=rtol), source
        assert model.active_params() < model.num_params()


def test_weight_bytes_are_params_times_dtype() -> None:
    m = get_model("llama-2-7b")
    assert m.weight_bytes() == 2 * 6_738_415_616
    assert dataclasses.replace(m, dtype_bytes=1).weight_bytes() == 6_738_415_616


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(kv_heads=st.integers(1, 16), group=st.integers(1, 8), other_group=st.integers(1, 8),
       layers=st.integers(1, 96), head_dim=st.sampled_from([64, 80, 128]))
def test_kv_bytes_scale_with_kv_heads_not_query_heads(kv_heads, group, other_group, layers,
                                                      head_dim) -> None:
    def spec(num_heads: int, num_kv_heads: int) -> ModelSpec:
        return ModelSpec(name="p", num_layers=layers, hidden_size=num_heads * head_dim,
                         num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
                         ffn_hidden=4 * head_dim, gated_mlp=True, vocab_size=1000,
                         max_context=4096, source="test")

    a, b = spec(kv_heads * group, kv_heads), spec(kv_heads * other_group, kv_heads)
    assert a.kv_bytes_per_token() == b.kv_bytes_per_token()
    assert a.kv_bytes_per_token() == 2 * layers * kv_heads * head_dim * 2
    # Doubling the KV heads (same query heads) doubles the KV bytes.
    c = spec(2 * kv_heads * group, 2 * kv_heads)
    d = spec(2 * kv_heads * group, kv_heads)
    assert c.kv_bytes_per_token() == 2 * d.kv_bytes_per_token()


def test_gqa_models_cache_fewer_bytes_than_their_mha_twin() -> None:
    m = get_model("llama-2-70b")
    mha = dataclasses.replace(m, num_kv_heads=m.num_heads)
    assert mha.kv_bytes_per_token() == 8 * m.kv_bytes_per_token()


def test_mla_kv_does_not_depend_on_heads() -> None:
    kimi, deepseek = get_model("kimi-k2"), get_model("deepseek-v3")
    assert kimi.kv_bytes_per_token() == deepseek.kv_bytes_per_token()
    assert get_model("kimi-k2").num_heads != get_model("deepseek-v3").num_heads


@pytest.mark.parametrize("name", sorted(MODELS))
def test_catalog_models_are_consistent(name: str) -> None:
    m = MODELS[name]
    assert m.name == name
    assert m.source.startswith("Hugging Face config.json of ")
    assert m.is_moe == (m.num_experts > 0)
    assert m.dense_layers + m.moe_layers == m.num_layers
    assert 0 < m.active_params() <= m.num_params()
    assert m.kv_bytes_per_token() > 0
    assert get_model(name) is m


# ------------------------------------------------------------------------------------------------
# Lookups
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("A100", "a100-80gb"), ("a100_80GB", "a100-80gb"), ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
    ("H100", "h100-sxm"), ("h100 sxm", "h100-sxm"), ("H100-PCIe", "h100-pcie"),
    ("MI300X", "mi300x"), ("B200", "b200"), ("L40S", "l40s"), ("H20", "h20"),
])
def test_accelerator_lookup_is_forgiving(query: str, expected: str) -> None:
    assert get_accelerator(query).name == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("Llama-2-7B", "llama-2-7b"), ("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
    ("Qwen/Qwen-72B", "qwen-72b"), ("QWEN2.5_72B", "qwen2.5-72b"),
    ("mistralai/Mixtral-8x7B-v0.1", "mixtral-8x7b"), ("DeepSeek-V3", "deepseek-v3"),
    ("moonshotai/Kimi-K2-Instruct", "kimi-k2"), ("microsoft/phi-2", "phi-2"),
])
def test_model_lookup_is_forgiving(query: str, expected: str) -> None:
    assert get_model(query).name == expected


def test_other_lookups() -> None:
    assert get_interconnect("NVLink4").bytes_per_s == 450e9
    assert get_interconnect("100GbE").name == "ethernet-100g"
    assert get_memory_device("CXL").name == "cxl-memory"


@pytest.mark.parametrize(("lookup", "bad", "close"), [
    (get_accelerator, "H100-SXM5X", "h100-sxm"),
    (get_accelerator, "a100-80", "a100-80gb"),
    (get_model, "llama-2-7", "llama-2-7b"),
    (get_model, "mixtral-8x7", "mixtral-8x7b"),
    (get_interconnect, "nvlink6", "nvlink5"),
    (get_memory_device, "nvme-sd", "nvme-ssd"),
])
def test_unknown_names_raise_with_close_matches(lookup, bad, close) -> None:
    with pytest.raises(ValueError, match="Unknown") as info:
        lookup(bad)
    assert repr(close) in str(info.value).split("Known:")[0]


def test_lookups_reject_non_strings() -> None:
    with pytest.raises(ValueError, match="by name"):
        get_model(7)


def test_instances_pass_through_lookups() -> None:
    gpu, model = ACCELERATORS["h200"], MODELS["phi-2"]
    custom = dataclasses.replace(gpu, name="my-h200")
    assert get_accelerator(custom) is custom
    assert get_model(model) is model
    assert get_interconnect(INTERCONNECTS["pcie5-x16"]) is INTERCONNECTS["pcie5-x16"]
    assert get_memory_device(MEMORY_DEVICES["nvme-ssd"]) is MEMORY_DEVICES["nvme-ssd"]


@pytest.mark.parametrize("table", [ACCELERATORS, MEMORY_DEVICES, INTERCONNECTS, MODELS])
def test_catalogs_are_read_only(table) -> None:
    assert isinstance(table, types.MappingProxyType)
    with pytest.raises(TypeError):
        table["x"] = None  # type: ignore[index]


def test_specs_pickle_and_deepcopy() -> None:
    for obj in (*ACCELERATORS.values(), *MODELS.values(), *INTERCONNECTS.values(),
                *MEMORY_DEVICES.values()):
        assert pickle.loads(pickle.dumps(obj)) == obj
        assert copy.deepcopy(obj) == obj
    gpu = get_accelerator("h20")
    assert hash(pickle.loads(pickle.dumps(gpu))) == hash(gpu)


@pytest.mark.parametrize("module", [hardware, models])
def test_catalog_docstring_examples(module) -> None:
    # tests/test_doctests.py walks schedlab.__path__ only, which misses the mapped subpackages.
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(module, module.__name__)
    assert sum(len(t.examples) for t in tests) > 10
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_specs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_model("llama-2-7b").num_layers = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_accelerator("a100").price_per_hour = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        get_accelerator("a100").peak_flops_per_s["bf16"] = 1.0  # type: ignore[index]


# ------------------------------------------------------------------------------------------------
# Hardware datasheet figures (dense; source: the vendor datasheets named in each entry's source)
# ------------------------------------------------------------------------------------------------

# name: (bf16 dense TFLOPS, HBM TB/s, HBM GB)
DATASHEET = {
    "a100-40gb": (312, 1.555, 40),   # NVIDIA A100 datasheet
    "a100-80gb": (312, 2.039, 80),   # NVIDIA A100 datasheet
    "a800": (312, 2.039, 80),        # NVIDIA A800 datasheet
    "h100-sxm": (989.4, 3.35, 80),   # NVIDIA H100 datasheet (1,979 with sparsity, halved)
    "h100-pcie": (756, 2.0, 80),     # NVIDIA H100 datasheet, PCIe column
    "h800": (989.4, 3.35, 80),       # NVIDIA H800 product brief
    "h200": (989.4, 4.8, 141),       # NVIDIA H200 datasheet
    "h20": (148, 4.0, 96),           # NVIDIA HGX H20 (as reported)
    "a40": (149.7, 0.696, 48),       # NVIDIA A40 datasheet
    "l40s": (362.05, 0.864, 48),     # NVIDIA L40S datasheet (733 with sparsity, halved)
    "b200": (2250, 8.0, 180),        # NVIDIA DGX B200 datasheet (1,440 GB / 8 GPUs)
    "mi300x": (1307.4, 5.3, 192),    # AMD Instinct MI300X data sheet
}


def test_catalog_has_every_required_accelerator() -> None:
    assert set(DATASHEET) <= set(ACCELERATORS)


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_accelerator_datasheet_figures(name: str) -> None:
    tflops, tb_s, gb = DATASHEET[name]
    gpu = ACCELERATORS[name]
    assert gpu.peak_flops("bf16") == pytest.approx(tflops * 1e12)
    assert gpu.hbm_bytes_per_s == pytest.approx(tb_s * 1e12)
    assert gpu.hbm_capacity_bytes == pytest.approx(gb * 1e9)  # GB = 1e9 bytes, as vendors state
    assert gpu.peak_flops("fp16") == gpu.peak_flops("bf16")
    assert gpu.peak_flops("fp32") < gpu.peak_flops("bf16")
    assert get_interconnect(gpu.host_link) and get_interconnect(gpu.scale_up_link)
    assert gpu.price_per_hour > 0 and 0 < gpu.kernel_launch_s < 20e-6
    assert "datasheet" in gpu.source or "data sheet" in gpu.source or "brief" in gpu.source


def test_fp8_peak_where_the_datasheet_has_it() -> None:
    assert get_accelerator("h100-sxm").peak_flops("fp8") == pytest.approx(1978.9e12)
    assert get_accelerator("h20").peak_flops("fp8") == pytest.approx(296e12)
    assert get_accelerator("b200").peak_flops("fp8") == pytest.approx(4500e12)
    assert get_accelerator("mi300x").peak_flops("fp8") == pytest.approx(2614.9e12)
    with pytest.raises(ValueError, match=r"one of \['bf16', 'fp16', 'fp32', 'int8', 'tf32'\]"):
        get_accelerator("a100-80gb").peak_flops("fp8")


@pytest.mark.parametrize(("name", "per_direction_gb_s"), [
    ("nvlink3", 300), ("nvlink4", 450), ("nvlink5", 900),  # 600 / 900 / 1800 GB/s bidirectional
    ("nvswitch-a100", 300), ("nvswitch-h100", 450), ("nvlink-h800", 200), ("nvlink-a800", 200),
    ("pcie4-x16", 32), ("pcie5-x16", 64),  # PCIe 4.0 / 5.0 x16, ~31.5 / ~63 GB/s per direction
    ("rdma-200g", 25), ("rdma-400g", 50), ("ethernet-100g", 12.5),  # Gb/s / 8
])
def test_interconnect_bandwidths(name: str, per_direction_gb_s: float) -> None:
    link = INTERCONNECTS[name]
    assert link.bytes_per_s == pytest.approx(per_direction_gb_s * 1e9)
    assert 0 < link.latency_s < 1e-4
    assert link.transfer_time_s(1e9) == pytest.approx(link.latency_s + 1e9 / link.bytes_per_s)


def test_reduced_nvlink_parts() -> None:
    assert get_accelerator("h800").scale_up_link == "nvlink-h800"
    assert get_accelerator("a800").scale_up_link == "nvlink-a800"
    assert get_accelerator("h800").peak_flops() == get_accelerator("h100-sxm").peak_flops()


def test_memory_devices() -> None:
    for name in ("ddr5-host", "cxl-memory", "nvme-ssd"):
        dev = MEMORY_DEVICES[name]
        assert dev.capacity_bytes > 0 and dev.read_bytes_per_s >= dev.write_bytes_per_s > 0
    read = {name: MEMORY_DEVICES[name].read_bytes_per_s for name in MEMORY_DEVICES}
    assert read["ddr5-host"] > read["cxl-memory"] > read["nvme-ssd"]
    assert MEMORY_DEVICES["nvme-ssd"].latency_s > MEMORY_DEVICES["ddr5-host"].latency_s


def test_from_datasheet_converts_units_once() -> None:
    gpu = Accelerator.from_datasheet(
        name="x", tflops={"bf16": 312, "fp32": 19.5}, hbm_tb_per_s=2.039, hbm_gb=80,
        price_per_hour=1.0, host_link="PCIe4", scale_up_link="nvlink3", vendor="v", source="s",
        kernel_launch_us=3)
    ref = get_accelerator("a100-80gb")
    assert gpu.peak_flops() == ref.peak_flops()
    assert gpu.hbm_bytes_per_s == ref.hbm_bytes_per_s
    assert gpu.hbm_capacity_bytes == 80e9 < 80 * 2**30
    assert gpu.kernel_launch_s == pytest.approx(3e-6)
    assert gpu.host_link == "pcie4-x16"


def test_with_price_and_replace() -> None:
    gpu = get_accelerator("h100")
    cheap = gpu.with_price(1.25)
    assert cheap.price_per_hour == 1.25 and gpu.price_per_hour != 1.25
    assert dataclasses.replace(gpu, price_per_hour=1.25) == cheap
    assert hash(dataclasses.replace(gpu, price_per_hour=1.25)) == hash(cheap)
    with pytest.raises(ValueError, match="price_per_hour"):
        gpu.with_price(-1)


@pytest.mark.parametrize(("change", "field"), [
    ({"hbm_bytes_per_s": 0}, "hbm_bytes_per_s"),
    ({"hbm_capacity_bytes": -1.0}, "hbm_capacity_bytes"),
    ({"kernel_launch_s": float("nan")}, "kernel_launch_s"),
    ({"peak_flops_per_s": {}}, "peak_flops_per_s"),
    ({"peak_flops_per_s": {"bf17": 1e12}}, "peak_flops_per_s"),
    ({"peak_flops_per_s": {"bf16": -1e12}}, "peak_flops_per_s"),
    ({"host_link": "pcie9"}, "pcie9"),
    ({"name": ""}, "name"),
])
def test_bad_accelerator_fields(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(get_accelerator("a100"), **change)


@pytest.mark.parametrize(("cls", "kwargs", "field"), [
    (Interconnect, {"name": "l", "bytes_per_s": 0, "latency_s": 0, "source": "s"}, "bytes_per_s"),
    (Interconnect, {"name": "l", "bytes_per_s": 1, "latency_s": -1, "source": "s"}, "latency_s"),
    (MemoryDevice, {"name": "m", "capacity_bytes": 1, "read_bytes_per_s": 1, "write_bytes_per_s": 0,
                        "latency_s": 0, "price_per_hour": 0, "source": "s"}, "write_bytes_per_s"),
])
def test_bad_link_and_memory_fields(cls, kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


# ------------------------------------------------------------------------------------------------
# ModelSpec validation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"num_layers": 0}, "num_layers"),
    ({"hidden_size": -4096}, "hidden_size"),
    ({"num_kv_heads": 3}, "num_kv_heads"),
    ({"num_heads": 2.0}, "num_heads"),
    ({"vocab_size": 0}, "vocab_size"),
    ({"dtype_bytes": 0}, "dtype_bytes"),
    ({"gated_mlp": 1}, "gated_mlp"),
    ({"ffn_hidden": 0}, "ffn_hidden"),
    ({"num_experts": -1}, "num_experts"),
    ({"experts_top_k": 2}, "experts_top_k"),
    ({"qk_rope_head_dim": 64}, "qk_rope_head_dim"),
    ({"rotary_fraction": 0.0}, "rotary_fraction"),
    ({"max_context": 0}, "max_context"),
    ({"source": ""}, "source"),
])
def test_bad_dense_model_fields(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"'{field}'"):
        dataclasses.replace(get_model("llama-2-7b"), **change)


@pytest.mark.parametrize(("change", "field"), [
    ({"experts_top_k": 0}, "experts_top_k"),
    ({"experts_top_k": 300}, "experts_top_k"),
    ({"moe_ffn_hidden": 0}, "moe_ffn_hidden"),
    ({"first_dense_layers": 61}, "first_dense_layers"),
    ({"kv_lora_rank": 0}, "qk_rope_head_dim"),
    ({"num_shared_experts": -1}, "num_shared_experts"),
])
def test_bad_moe_model_fields(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"'{field}'"):
        dataclasses.replace(get_model("deepseek-v3"), **change)


# ------------------------------------------------------------------------------------------------
# from_hf_config (dicts abridged from the models' Hugging Face config.json files)
# ------------------------------------------------------------------------------------------------

LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 8192,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.0.dev0", "use_cache": True, "vocab_size": 128256,
}

MIXTRAL_8X7B = {
    "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral",
    "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": False,
    "rms_norm_eps": 1e-05, "rope_theta": 1e6, "router_aux_loss_coef": 0.02, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.36.0.dev0",
    "use_cache": True, "vocab_size": 32000,
}

DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1,
    "first_k_dense_replace": 3, "hidden_act": "silu", "hidden_size": 7168,
    "initializer_range": 0.02, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "model_type": "deepseek_v3", "moe_intermediate_size": 2048,
    "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256, "n_shared_experts": 1,
    "norm_topk_prob": True, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                            "quant_method": "fp8", "weight_block_size": [128, 128]},
    "rms_norm_eps": 1e-06, "rope_scaling": {"factor": 40, "type": "yarn"}, "rope_theta": 10000,
    "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": True,
    "tie_word_embeddings": False, "topk_group": 4, "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16", "transformers_version": "4.33.1", "use_cache": True,
    "v_head_dim": 128, "vocab_size": 129280,
}

DEEPSEEK_V3_BF16 = {k: v for k, v in DEEPSEEK_V3.items() if k != "quantization_config"}

QWEN_72B = {
    "architectures": ["QWenLMHeadModel"], "attn_dropout_prob": 0.0, "bf16": False,
    "emb_dropout_prob": 0.0, "fp16": False, "fp32": False, "hidden_size": 8192,
    "intermediate_size": 49152, "initializer_range": 0.02, "kv_channels": 128,
    "layer_norm_epsilon": 1e-06, "max_position_embeddings": 32768, "model_type": "qwen",
    "no_bias": True, "num_attention_heads": 64, "num_hidden_layers": 80, "rotary_emb_base": 1e6,
    "rotary_pct": 1.0, "scale_attn_weights": True, "seq_length": 32768,
    "tie_word_embeddings": False, "tokenizer_class": "QWenTokenizer", "use_cache": True,
    "use_dynamic_ntk": False, "use_flash_attn": "auto", "use_logn_attn": False,
    "vocab_size": 152064,
}

OPT_13B = {
    "_name_or_path": "facebook/opt-13b", "activation_dropout": 0.0, "activation_function": "relu",
    "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 2,
    "do_layer_norm_before": True, "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 20480,
    "hidden_size": 5120, "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 2048,
    "model_type": "opt", "num_attention_heads": 40, "num_hidden_layers": 40, "pad_token_id": 1,
    "prefix": "</s>", "torch_dtype": "float16", "transformers_version": "4.21.0.dev0",
    "use_cache": True, "vocab_size": 50272, "word_embed_proj_dim": 5120,
}

PHI_2 = {
    "_name_or_path": "microsoft/phi-2", "architectures": ["PhiForCausalLM"],
    "attention_dropout": 0.0, "bos_token_id": 50256, "embd_pdrop": 0.0, "eos_token_id": 50256,
    "hidden_act": "gelu_new", "hidden_size": 2560, "initializer_range": 0.02,
    "intermediate_size": 10240, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
    "model_type": "phi", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 32, "partial_rotary_factor": 0.4, "qk_layernorm": False,
    "resid_pdrop": 0.1, "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "torch_dtype": "float16", "transformers_version": "4.37.0", "use_cache": True,
    "vocab_size": 51200,
}


def _same_shape(a: ModelSpec, b: ModelSpec) -> None:
    assert dataclasses.replace(a, source="x") == dataclasses.replace(b, source="x")


@pytest.mark.parametrize(("config", "name", "ignore"), [
    (LLAMA3_8B, "llama-3-8b", ()),
    (MIXTRAL_8X7B, "mixtral-8x7b", ()),
    (DEEPSEEK_V3, "deepseek-v3", ("quantization_config",)),
    (DEEPSEEK_V3_BF16, "deepseek-v3", ()),
    (QWEN_72B, "qwen-72b", ()),
    (OPT_13B, "opt-13b", ()),
    (PHI_2, "phi-2", ()),
])
def test_from_hf_config_round_trips_to_catalog(config, name, ignore) -> None:
    spec = ModelSpec.from_hf_config(config, name=name, ignore_keys=ignore)
    _same_shape(spec, get_model(name))
    assert "model_type" in spec.source


def test_from_hf_config_reads_name_and_dtype() -> None:
    assert ModelSpec.from_hf_config(OPT_13B).name == "facebook/opt-13b"
    assert ModelSpec.from_hf_config({**OPT_13B, "torch_dtype": "float32"}).dtype_bytes == 4
    assert ModelSpec.from_hf_config({**QWEN_72B, "bf16": True}).dtype_bytes == 2
    assert ModelSpec.from_hf_config({**QWEN_72B, "fp32": True}).dtype_bytes == 4
    assert ModelSpec.from_hf_config(LLAMA3_8B).name == "llama-custom"


def test_from_hf_config_defaults_kv_heads_to_heads_and_reads_head_dim() -> None:
    cfg = {k: v for k, v in LLAMA3_8B.items() if k != "num_key_value_heads"}
    assert ModelSpec.from_hf_config(cfg).num_kv_heads == 32
    spec = ModelSpec.from_hf_config({**LLAMA3_8B, "head_dim": 64})
    assert spec.head_dim == 64 and spec.kv_bytes_per_token() == 65536


def test_from_hf_config_never_drops_experts() -> None:
    with pytest.raises(ValueError, match="num_local_experts"):
        ModelSpec.from_hf_config({**LLAMA3_8B, "num_local_experts": 8})
    spec = ModelSpec.from_hf_config({**MIXTRAL_8X7B, "num_local_experts": 16})
    assert spec.num_experts == 16 and spec.num_params() > get_model("mixtral-8x7b").num_params()


@pytest.mark.parametrize(("config", "key"), [
    ({k: v for k, v in LLAMA3_8B.items() if k != "num_hidden_layers"}, "num_hidden_layers"),
    ({k: v for k, v in LLAMA3_8B.items() if k != "model_type"}, "model_type"),
    ({**LLAMA3_8B, "model_type": "gpt2"}, "model_type"),
    ({k: v for k, v in MIXTRAL_8X7B.items() if k != "num_experts_per_tok"}, "num_experts_per_tok"),
    ({k: v for k, v in OPT_13B.items() if k != "ffn_dim"}, "ffn_dim"),
    ({**OPT_13B, "word_embed_proj_dim": 512}, "word_embed_proj_dim"),
    (DEEPSEEK_V3, "quantization_config"),
    ({**DEEPSEEK_V3_BF16, "v_head_dim": 64}, "v_head_dim"),
    ({**DEEPSEEK_V3_BF16, "moe_layer_freq": 2}, "moe_layer_freq"),
    ({k: v for k, v in DEEPSEEK_V3_BF16.items() if k != "kv_lora_rank"}, "kv_lora_rank"),
    ({**MIXTRAL_8X7B, "sliding_window": 4096}, "sliding_window"),
    ({**LLAMA3_8B, "torch_dtype": "int3"}, "torch_dtype"),
    ({**LLAMA3_8B, "num_hidden_layers": 0}, "num_hidden_layers"),
    ({**LLAMA3_8B, "num_key_value_heads": 5}, "num_kv_heads"),
    ({**QWEN_72B, "intermediate_size": 49151}, "intermediate_size"),
    ({**LLAMA3_8B, "text_config": {}}, "text_config"),
])
def test_from_hf_config_bad_or_missing_keys(config, key) -> None:
    with pytest.raises(ValueError, match=key):
        ModelSpec.from_hf_config(config)


def test_from_hf_config_ignore_keys_is_explicit() -> None:
    spec = ModelSpec.from_hf_config({**MIXTRAL_8X7B, "sliding_window": 4096},
                                    ignore_keys=["sliding_window"])
    assert spec.num_experts == 8
    with pytest.raises(ValueError, match="dict"):
        ModelSpec.from_hf_config([("model_type", "llama")])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# Agreement with the Vidur A100 profiles (../shared)
# ------------------------------------------------------------------------------------------------

# Vidur pads the Llama-2 family's vocabulary from 32000 to 32768 (a multiple of 1024) in its own
# model configs; the catalog keeps the real Hugging Face value. The vocabulary only affects the
# embedding and logits, which mlp.csv does not time except for the embedding gather.
VIDUR_PADDED_VOCAB = {32000: 32768}


@pytest.mark.shared
def test_catalog_matches_vidur_profile_shapes(shared_dir) -> None:
    import pandas as pd

    root = shared_dir / "costmodel" / "vidur-profiling" / "compute" / "a100"
    files = sorted(root.glob("*/*/mlp.csv"))
    assert len(files) >= 7
    for path in files:
        hf_name = f"{path.parent.parent.name}/{path.parent.name}"
        model = get_model(hf_name)
        cols = ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp"]
        shapes = pd.read_csv(path, usecols=cols).drop_duplicates()
        assert len(shapes) == 1, hf_name
        row = shapes.iloc[0]
        assert int(row.n_head) == model.num_heads, hf_name
        assert int(row.n_kv_head) == model.num_kv_heads, hf_name
        assert int(row.n_embd) == model.hidden_size, hf_name
        assert int(row.n_expanded_embd) == model.ffn_hidden, hf_name
        assert bool(row.use_gated_mlp) == model.gated_mlp, hf_name
        vocab = VIDUR_PADDED_VOCAB.get(model.vocab_size, model.vocab_size)
        assert int(row.vocab_size) == vocab, hf_name
