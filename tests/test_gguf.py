"""GGUF recipe profiles (profiles/quant/gguf-*.yaml): load, reproduce published file sizes, keep mix order.

Sizes are the sum over the text model's tensors (vision tower and DeepSeek MTP layer excluded, as in the GGUF
files); GGUF metadata (tokenizer, a few MB) is not counted. GiB figures are converted exactly (x 2**30).
"""

from __future__ import annotations

import pytest

from planner.model.inventory import tensor_inventory
from planner.model.models import load_model
from planner.model.quant import list_formats, load_format

GiB = 2**30
GB = 10**9

STANDARD = ["gguf-q8_0", "gguf-q6_k", "gguf-q5_k_m", "gguf-q4_k_m", "gguf-q3_k_m", "gguf-q2_k"]
LOW = ["gguf-iq2_xxs", "gguf-iq1_s", "gguf-tq1_0"]
UD = ["gguf-ud-tq1_0", "gguf-ud-iq1_s", "gguf-ud-iq1_m", "gguf-ud-iq2_xxs", "gguf-ud-q2_k_xl", "gguf-ud1-q2_k_xl",
      "gguf-ud-q4_k_xl"]


def gguf_bytes(model: str, fmt: str) -> int:
    m = load_model(model)
    f = load_format(fmt)
    return sum(f.tensor_bytes(t, m.spec) for t in tensor_inventory(m.spec) if t.part not in f.exclude_parts)


def test_every_gguf_profile_loads():
    names = [n for n in list_formats() if n.startswith("gguf-")]
    assert set(STANDARD + LOW + UD) <= set(names)
    for name in names:
        f = load_format(name)
        assert f.family == "gguf" and f.vector_type == "F32" and f.source
        assert {"vision", "mtp"} <= set(f.exclude_parts)


PUBLISHED = [
    # unsloth DeepSeek-R1 Q4_K_M, llama-bench "deepseek2 671B Q4_K - Medium 376.65 GiB"
    # (github.com/ikawrakow/ik_llama.cpp pull 259, 2025-03-16)
    pytest.param("deepseek-r1", "gguf-q4_k_m", 376.65 * GiB, id="r1-q4_k_m-376.65GiB-ik_llama#259"),
    # bartowski/Meta-Llama-3.1-70B-Instruct-GGUF, Meta-Llama-3.1-70B-Instruct-Q4_K_M.gguf 42.5 GB
    pytest.param("llama-3.1-70b", "gguf-q4_k_m", 42.5 * GB, id="llama70b-q4_k_m-42.5GB-bartowski"),
    # mradermacher/Mixtral-8x7B-v0.1-GGUF: Q2_K 17.3, Q3_K_M 22.5, Q4_K_M 28.4, Q5_K_M 33.2 GB
    pytest.param("mixtral-8x7b", "gguf-q2_k", 17.3 * GB, id="mixtral-q2_k-17.3GB-mradermacher"),
    pytest.param("mixtral-8x7b", "gguf-q3_k_m", 22.5 * GB, id="mixtral-q3_k_m-22.5GB-mradermacher"),
    pytest.param("mixtral-8x7b", "gguf-q4_k_m", 28.4 * GB, id="mixtral-q4_k_m-28.4GB-mradermacher"),
    pytest.param("mixtral-8x7b", "gguf-q5_k_m", 33.2 * GB, id="mixtral-q5_k_m-33.2GB-mradermacher"),
    # gobean/Mixtral-8x7B-Instruct-v0.1-GGUF q6-k 38.4 GB; shenberg1/Mixtral-8x7B-Instruct-v0.1-GGUF q8_0 49.6 GB
    pytest.param("mixtral-8x7b", "gguf-q6_k", 38.4 * GB, id="mixtral-q6_k-38.4GB-gobean"),
    pytest.param("mixtral-8x7b", "gguf-q8_0", 49.6 * GB, id="mixtral-q8_0-49.6GB-shenberg1"),
    # unsloth.ai/blog/deepseekr1-dynamic "131GB"; the shards sum to 140,231,438,464 B = 130.60 GiB
    # (gpustack/gguf-parser-go README: DeepSeek-R1-UD-IQ1_S 130.60 GiB, 671.03 B params, 1.67 bpw)
    pytest.param("deepseek-r1", "gguf-ud-iq1_s", 140_231_438_464, id="r1-ud-iq1_s-130.60GiB-unsloth-blog"),
    # unsloth blog "212GB"; llama-bench "DS-R1 671B unsloth UD-Q2_K_XL 211.03 GiB" (several llama.cpp threads)
    pytest.param("deepseek-r1", "gguf-ud1-q2_k_xl", 211.03 * GiB, id="r1-ud1-q2_k_xl-211.03GiB-unsloth-blog"),
    # unsloth.ai/docs/models/tutorials/kimi-k2.5: UD-TQ1_0 240GB
    pytest.param("kimi-k2.5", "gguf-ud-tq1_0", 240 * GB, id="kimi-k2.5-ud-tq1_0-240GB-unsloth-docs"),
    # Dynamic 2.0 UD-Q2_K_XL: unsloth.ai/docs/models/tutorials/kimi-k2.5 "375GB"; unsloth Kimi-K2 docs "381GB"
    # (Kimi-K2-Instruct has the same text architecture; its GGUF has no vision tower either)
    pytest.param("kimi-k2.5", "gguf-ud-q2_k_xl", 375 * GB, id="kimi-k2.5-ud-q2_k_xl-375GB-unsloth-docs"),
    pytest.param("kimi-k2-instruct", "gguf-ud-q2_k_xl", 381 * GB, id="kimi-k2-ud-q2_k_xl-381GB-unsloth-docs"),
    # unsloth Kimi-K2 docs: UD-TQ1_0 "245GB"
    pytest.param("kimi-k2-instruct", "gguf-ud-tq1_0", 245 * GB, id="kimi-k2-ud-tq1_0-245GB-unsloth-docs"),
]

GAPS = [
    # unsloth blog table (same table as 131/212, which are GiB): UD-IQ1_M 158, UD-IQ2_XXS 183 -> read as GiB.
    # The stated recipe (experts IQ1_M / IQ2_XXS, down_proj 2.06 / 2.5-2.06 bit) gives -4% / -8%: unsloth's files
    # hold more high-bit tensors than the blog describes.
    pytest.param("deepseek-r1", "gguf-ud-iq1_m", 158 * GiB, id="r1-ud-iq1_m-158GiB-unsloth-blog"),
    pytest.param("deepseek-r1", "gguf-ud-iq2_xxs", 183 * GiB, id="r1-ud-iq2_xxs-183GiB-unsloth-blog"),
]


@pytest.mark.parametrize(("model", "fmt", "published"), PUBLISHED)
def test_published_size_within_3_percent(model, fmt, published):
    computed = gguf_bytes(model, fmt)
    assert abs(computed / published - 1) <= 0.03, f"{computed / GB:.2f} GB vs {published / GB:.2f} GB"


@pytest.mark.xfail(reason="known gap: faithful rules miss the published size by more than 3%", strict=True)
@pytest.mark.parametrize(("model", "fmt", "published"), GAPS)
def test_known_gaps(model, fmt, published):
    computed = gguf_bytes(model, fmt)
    assert abs(computed / published - 1) <= 0.03


@pytest.mark.parametrize("model", ["deepseek-r1", "llama-3.1-70b", "mixtral-8x7b", "qwen3-30b-a3b", "kimi-k2.5"])
def test_standard_mixes_ordered(model):
    sizes = [gguf_bytes(model, f) for f in STANDARD]
    assert sizes == sorted(sizes, reverse=True)
    assert gguf_bytes(model, "gguf-q2_k") > gguf_bytes(model, "gguf-iq2_xxs") > gguf_bytes(model, "gguf-iq1_s")


@pytest.mark.parametrize("model", ["deepseek-r1", "kimi-k2.5"])
def test_ud_mixes_ordered(model):
    chain = ["gguf-ud-iq1_s", "gguf-ud-iq1_m", "gguf-ud-iq2_xxs", "gguf-ud-q2_k_xl", "gguf-ud-q4_k_xl"]
    sizes = [gguf_bytes(model, f) for f in chain]
    assert sizes == sorted(sizes)
    assert sizes[0] < gguf_bytes(model, "gguf-ud-tq1_0") < sizes[2]


def test_ud_keeps_attention_and_shared_experts_high():
    m = load_model("deepseek-r1")
    f = load_format("gguf-ud-iq1_s")
    types = {(t.role, t.layer): f.storage_for(t, m.spec).name for t in tensor_inventory(m.spec) if t.is_matrix}
    assert types[("ffn_gate_exps", 30)] == "IQ1_S" and types[("ffn_down_exps", 30)] == "IQ1_S"
    assert types[("ffn_down_exps", 3)] == "IQ2_XXS"
    assert types[("ffn_up_shexp", 30)] == "Q6_K" and types[("output", None)] == "Q6_K"
    assert types[("attn_q_b", 30)] in ("Q4_K", "Q6_K") and types[("ffn_gate_inp", 30)] == "F32"
