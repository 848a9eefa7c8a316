"""vLLM's hybrid KV pages (planner.deploy.hybrid_pages): block size, padded state page and per-request bytes per GPU,
pinned against vLLM's formula worked by hand (vllm/model_executor/models/config.py HybridAttentionMambaModelConfig:
block = a x cdiv(state page, a x attention bytes of one token), page = block x attention bytes of one token).

Worked by hand (bf16 = 2 B, fp32 = 4 B, conv kernel 4 -> 3 rows):
- Qwen3-Next-80B-A3B, bf16, TP1 (GDN: Hk 16, Hv 32, dk = dv 128; attention 2 KV heads x 256):
  state 3 x (2 x 16 x 128 + 32 x 128) x 2 + 32 x 128 x 128 x 2 = 49,152 + 1,048,576 = 1,097,728 B;
  token 2 x (256 + 256) x 2 = 2,048 B; block 16 x cdiv(1,097,728, 32,768) = 16 x 34 = 544;
  page 544 x 2,048 = 1,114,112 B.
  On B200 (SM100, head 256: a = 32): 32 x cdiv(1,097,728, 65,536) = 32 x 17 = 544, the same.
  Groups: 12 full + 36 linear layers -> group_size 12, 1 attention + 3 linear groups.
  Per request: (cdiv(L, 544) + 3) x 1,114,112 x 12 -> 100 tokens: 4 x 13,369,344 = 53,477,376 B;
  32,768 tokens: (61 + 3) x 13,369,344 = 855,638,016 B.
- Qwen3.5-397B-A17B, TP8 (Hk 16, Hv 64, fp32 recurrent state; 2 KV heads -> 1 per rank):
  state 3 x (12,288 / 8) x 2 + (64 / 8) x 128 x 128 x 4 = 9,216 + 524,288 = 533,504 B.
  bf16 on H200: token 1 x 512 x 2 = 1,024 B; block 16 x cdiv(533,504, 16,384) = 16 x 33 = 528; page 540,672 B.
  fp8 on B200: token 512 B, a = 32; block 32 x cdiv(533,504, 16,384) = 32 x 33 = 1,056; page 540,672 B (+1.34%).
  Groups: 15 full + 45 linear -> 15, 1 + 3.
- Kimi-K3 (KDA: H 96, d 128, fp32 recurrent; MLA 576-wide latent, a = 64), bf16:
  TP1 state 3 x 3 x 12,288 x 2 + 96 x 128 x 128 x 4 = 221,184 + 6,291,456 = 6,512,640 B; token 576 x 2 = 1,152 B;
  block 64 x cdiv(6,512,640, 73,728) = 64 x 89 = 5,696; page 6,561,792 B.
  TP8 state 3 x 3 x 1,536 x 2 + 12 x 128 x 128 x 4 = 27,648 + 786,432 = 814,080 B; token 1,152 B (MLA: not split);
  block 64 x cdiv(814,080, 73,728) = 64 x 12 = 768; page 884,736 B (+8.68%).
  Groups: 24 MLA + 69 KDA -> 24, 1 + 3 (the KDA groups hold 23 layers each; a block still spans 24 tensors).
- Nemotron-3 Super (Mamba-2: H 128 x p 64, G 8 x n 128, fp32 SSM state; attention 2 KV heads x 128), bf16 TP1:
  state 3 x (8,192 + 2 x 8 x 128) x 2 + 128 x 64 x 128 x 4 = 61,440 + 4,194,304 = 4,255,744 B;
  token 2 x 256 x 2 = 1,024 B; block 16 x cdiv(4,255,744, 16,384) = 16 x 260 = 4,160; page 4,259,840 B.
  TP16 (G 8 replicated to 16): conv 3 x (8,192 + 2 x 16 x 128) / 16 x 2 = 4,608, SSM 8 x 64 x 128 x 4 = 262,144;
  token 1 head x 256 x 2 = 512 B; block 16 x cdiv(266,752, 8,192) = 16 x 33 = 528; page 270,336 B.
  Groups: 8 attention + 40 Mamba -> 8, 1 + 5.
"""

from __future__ import annotations

import pytest

from planner.deploy.hybrid_pages import block_tokens, state_page_bytes, vllm_hybrid_pages
from planner.deploy.memory import memory_report
from planner.deploy.scenario import make_scenario
from planner.model.kv import kv_layout, paged_tokens
from planner.model.models import load_model
from planner.serving.estimate import estimate

HYBRID = ("qwen3-next-80b-a3b", "qwen3.5-397b-a17b", "kimi-k3", "nemotron-3-super-120b-a12b")
H200, B200 = "Hopper (GH100, SM90)", "Blackwell (SM100)"


def pages(model: str, tp: int, kv: str = "bf16", arch: str = H200, **kw):
    spec = load_model(model).spec
    layout = kv_layout(spec, kv)
    block = 64 if spec.attention == "mla" else 16
    return vllm_hybrid_pages(spec, layout, tp, arch=arch, min_block_tokens=block, **kw)


@pytest.mark.parametrize("model, tp, kv, arch, state, block, page, groups", [
    ("qwen3-next-80b-a3b", 1, "bf16", H200, 1_097_728, 544, 1_114_112, (12, 1, 3)),
    ("qwen3-next-80b-a3b", 1, "bf16", B200, 1_097_728, 544, 1_114_112, (12, 1, 3)),
    ("qwen3.5-397b-a17b", 8, "bf16", H200, 533_504, 528, 540_672, (15, 1, 3)),
    ("qwen3.5-397b-a17b", 8, "fp8", B200, 533_504, 1_056, 540_672, (15, 1, 3)),
    ("kimi-k3", 1, "bf16", B200, 6_512_640, 5_696, 6_561_792, (24, 1, 3)),
    ("kimi-k3", 8, "bf16", B200, 814_080, 768, 884_736, (24, 1, 3)),
    ("nemotron-3-super-120b-a12b", 1, "bf16", H200, 4_255_744, 4_160, 4_259_840, (8, 1, 5)),
    ("nemotron-3-super-120b-a12b", 16, "bf16", H200, 4_608 + 262_144, 528, 270_336, (8, 1, 5)),
])
def test_block_and_padded_page(model, tp, kv, arch, state, block, page, groups):
    p = pages(model, tp, kv, arch)
    assert (p.state_page_bytes, p.block_tokens, p.page_bytes) == (state, block, page)
    assert (p.group_layers, p.attention_groups, p.state_groups) == groups
    assert p.page_bytes >= p.state_page_bytes and p.page_bytes - p.state_page_bytes < p.page_bytes / p.block_tokens * 64


@pytest.mark.parametrize("model", HYBRID)
def test_state_page_matches_the_planners_state_where_tp_divides(model):
    """vLLM's state shapes (mamba_utils) and planner.model.kv's per-request state agree: one layer, TP1 and TP8."""
    spec = load_model(model).spec
    layout = kv_layout(spec, "bf16")
    for tp in (1, 2, 4, 8):
        assert state_page_bytes(spec, layout, tp) * layout.linear_layers == layout.state_bytes_per_gpu(tp)


def test_per_request_bytes_short_and_long():
    p = pages("qwen3-next-80b-a3b", 1)
    assert p.bytes_for(100) == 4 * 13_369_344 == 53_477_376
    assert p.bytes_for(5_000) == 13 * 13_369_344 == 173_801_472
    assert p.bytes_for(32_768) == 64 * 13_369_344 == 855_638_016
    # per-token paging charged 12 layers x 2,048 B x 112 tokens + 36 x 1,097,728 B = 42.3 MB for 100 tokens: +26.5%
    layout = kv_layout(load_model("qwen3-next-80b-a3b").spec, "bf16")
    today = layout.bytes_for_context(paged_tokens(100, 16), 1, 2) + layout.state_bytes_per_gpu(1)
    assert today == 42_270_720 and p.bytes_for(100) / today == pytest.approx(1.265, abs=1e-3)


def test_prefix_caching_block_and_draft_tokens():
    """vLLM's own comment: a 788 kB state over 2 kB per token fits 394 tokens, rounded up to chunk 256 -> 512."""
    assert block_tokens(788_000, 2_000, 16, chunk=256) == 512
    # one MTP draft token: the GDN conv state gains a row (4 x 8,192 x 2 + 1,048,576 = 1,114,112 B, exactly 544 tokens
    # of attention: no padding) and each linear group holds 2 blocks
    p = pages("qwen3-next-80b-a3b", 1, spec_tokens=1)
    assert (p.state_page_bytes, p.block_tokens, p.padding, p.state_blocks) == (1_114_112, 544, 0.0, 2)
    assert p.bytes_for(100) == (1 + 3 * 2) * 13_369_344


def test_pipeline_stage_takes_its_share_of_each_group():
    assert pages("qwen3-next-80b-a3b", 1, layers_fraction=0.5).group_layers == 6
    assert pages("nemotron-3-super-120b-a12b", 1, layers_fraction=1 / 3).group_layers == 3


@pytest.mark.parametrize("model", HYBRID)
@pytest.mark.parametrize("kv", ["bf16", "fp8"])
def test_hybrid_pages_never_hold_less_than_per_token_paging(model, kv):
    """Whole enlarged blocks and padded pages: a request never takes fewer bytes than per-token KV + its state, so
    capacity with hybrid pages is never above the per-token estimate."""
    spec = load_model(model).spec
    layout = kv_layout(spec, kv)
    block = 64 if spec.attention == "mla" else 16
    for tp in (1, 2, 3, 4, 8, 16, 32):
        for arch in (H200, B200):
            p = vllm_hybrid_pages(spec, layout, tp, arch=arch, min_block_tokens=block)
            for tokens in (1, 100, 1_000, 5_000, 131_072):
                today = layout.bytes_for_context(paged_tokens(tokens, block), tp, spec.num_kv_heads) \
                    + layout.state_bytes_per_gpu(tp)
                assert p.bytes_for(tokens) >= today, (tp, arch, tokens)


def _today_per_seq(sc) -> int:
    spec, par = sc.model.spec, sc.parallelism
    layout = kv_layout(spec, sc.kv_cache)
    block = sc.engine.mla_kv_block_tokens if spec.attention == "mla" else sc.engine.kv_block_tokens
    return layout.bytes_for_context(paged_tokens(sc.workload.context_len, block), par.tp, spec.num_kv_heads) \
        + layout.state_bytes_per_gpu(par.tp)


@pytest.mark.parametrize("model, weights, gpu, tp, kv", [
    ("qwen3-next-80b-a3b", "bf16", "h100-sxm", 4, "bf16"),
    ("qwen3.5-397b-a17b", "fp8", "b200", 8, "fp8"),
    ("nemotron-3-super-120b-a12b", "fp8", "h100-sxm", 2, "fp8"),
])
@pytest.mark.parametrize("input_len", [200, 4_000])
def test_memory_report_capacity_falls_to_the_pages(model, weights, gpu, tp, kv, input_len):
    sc = make_scenario(model, weights=weights, gpu=gpu, gpus_per_node=8, parallelism={"tp": tp}, kv_cache=kv,
                       workload={"phase": "decode", "input_len": input_len, "output_len": 100})
    mem = memory_report(sc)
    p = pages(model, tp, kv, sc.accelerator.arch)
    assert mem.fits and mem.kv_bytes_per_sequence_per_gpu == p.bytes_for(sc.workload.context_len)
    today = _today_per_seq(sc)
    assert mem.kv_bytes_per_sequence_per_gpu >= today
    pools = sc.parallelism.dp_attention * sc.parallelism.replicas
    assert mem.max_concurrency == pytest.approx(mem.kv_cache_bytes_per_gpu / mem.kv_bytes_per_sequence_per_gpu * pools)
    assert mem.max_concurrency <= mem.kv_cache_bytes_per_gpu / today * pools
    assert len(mem.notes) == 1 and mem.notes[0].startswith(f"vLLM hybrid pages: attention block {p.block_tokens:,}")


@pytest.mark.parametrize("model, weights, gpu, tp, engine", [
    ("llama-3.1-70b", "bf16", "h100-sxm", 4, "vllm"),
    ("deepseek-v3", "fp8", "h200-sxm", 8, "vllm"),
    ("gpt-oss-120b", "mxfp4", "h100-sxm", 1, "vllm"),
    ("gemma-4-26b-a4b", "bf16", "h100-sxm", 1, "vllm"),
    ("qwen3-next-80b-a3b", "bf16", "h100-sxm", 4, "sglang"),
    ("nemotron-3-super-120b-a12b", "fp8", "h100-sxm", 2, "sglang"),
    ("kimi-k3", "mxfp4", "b200", 8, "trtllm"),
])
def test_other_models_and_engines_keep_per_token_paging(model, weights, gpu, tp, engine):
    """No linear layers, or not vLLM: the request is its paged tokens' KV + its state, as before."""
    sc = make_scenario(model, weights=weights, gpu=gpu, gpus_per_node=8, parallelism={"tp": tp}, engine=engine,
                       workload={"phase": "decode", "input_len": 900, "output_len": 100})
    mem = memory_report(sc)
    assert mem.notes == ()
    assert mem.kv_bytes_per_sequence_per_gpu == _today_per_seq(sc)


def test_estimate_names_the_pages_in_its_assumptions():
    from_planner = estimate(make_scenario("qwen3-next-80b-a3b", gpu="b200", gpus_per_node=1,
                                          workload={"phase": "decode", "input_len": 4_000, "output_len": 1_000}))
    line = [a for a in from_planner["assumptions"] if a.startswith("vLLM hybrid pages")]
    assert line == [
        "vLLM hybrid pages: attention block 544 tokens, linear-attention state page 1,097,728 B padded 1.5% to "
        "1,114,112 B per GPU (vLLM HybridAttentionMambaModelConfig); 1 attention + 3 state groups of 12 layers share "
        "one block pool, so a 5,000-token request holds 13 blocks = 173.8 MB per GPU (per-token KV + state would be "
        "162.6 MB)"]
    assert from_planner["capacity"]["kv_bytes_per_sequence_per_gpu"] == 173_801_472
