"""Limits on what an input may ask for, in one place, each with its reason.

Every limit is far outside what any published model, machine or service needs (the reason beside it says how far),
and close enough that the planner answers in well under a second at the limit: past it, an input is a typo or an
attack, and the loader refuses it with one line naming the file and the field (planner.base.errors.PlannerError).
Kimi K2.5, the largest model the planner ships, has 61 layers, 384 routed experts, 7,168 hidden, 64 heads and a
262,144-token context: every figure is at least 8x inside its limit.
"""

from __future__ import annotations

# ---------------------------------------------------------------- input files (planner.base.yamlio)
MAX_INPUT_BYTES = 16 * 1024 * 1024  # no real profile, scenario or config.json comes near 16 MiB
MAX_NESTING = 64  # deeper documents are refused: no real input nests more than ~6 levels
MAX_NODES = 1_000_000  # values after YAML alias expansion; the largest real input (a validate file) holds ~10,000
# cases in one validate file: the shipped file holds 36; a case costs ~40 ms of CPU to estimate (an SLO search more),
# so 1,000 cases answer within a minute. A file of 100,000 alias copies of one case (134 s) is refused before any runs
MAX_VALIDATE_CASES = 1_000
# prompts a simulated benchmark run sends (workload.num_prompts): the serving simulator takes ~0.1 s per 1,000
# requests on a 2-core machine, so 100,000 stay within about 10 s; published benchmarks send 100 to 10,000
MAX_PROMPTS = 100_000

# ---------------------------------------------------------------- model configs (planner.model.spec)
# The tensor inventory and the op records hold a few entries per layer, so time and memory grow with layers:
# 1,000,000 layers took 61 s and 4 GB in `inspect`. The deepest published LLMs have 126 decoder layers
# (Llama 3.1 405B); 1,024 is 8x that and answers in milliseconds.
MAX_LAYERS = 1024
# multi-token-prediction layers: DeepSeek-V3, Kimi K2 and GLM-4.5 publish 1 (MiMo 3 in its drafts); 64 is ample
MAX_MTP_LAYERS = 64
# routed experts per MoE layer: Kimi K2 384, Qwen3-Next 512, DeepSeek-V3 256; 16,384 is 32x the most published
MAX_EXPERTS = 16_384
# d_model and attention widths (head_dim, MLA ranks): Llama 3.1 405B has 16,384; 65,536 is 4x that
MAX_HIDDEN = 65_536
# MLP widths: Llama 3.1 405B's 53,248 is the widest published dense MLP; 1,048,576 is ~20x that
MAX_INTERMEDIATE = 1 << 20
# attention heads: Llama 3.1 405B 128, Kimi K2 64; 4,096 is 32x
MAX_HEADS = 4096
# vocabulary: Gemma 3 262,144 is the largest published; 4,194,304 is 16x
MAX_VOCAB = 1 << 22
# tokens of context: Llama 4 Scout is configured for 10M; 100M is 10x and far past any KV cache that fits
MAX_TOKENS = 10**8
# any other integer field of a config.json (patch sizes, position tables, sliding windows, group sizes)
MAX_CONFIG_INT = 10**8
# config.json field -> its limit (fields not listed take MAX_CONFIG_INT); the field names are transformers' own
CONFIG_LIMITS = {
    "num_hidden_layers": MAX_LAYERS, "vt_num_hidden_layers": MAX_LAYERS, "first_k_dense_replace": MAX_LAYERS,
    "decoder_sparse_step": MAX_LAYERS, "num_nextn_predict_layers": MAX_MTP_LAYERS,
    "n_routed_experts": MAX_EXPERTS, "num_experts": MAX_EXPERTS, "num_local_experts": MAX_EXPERTS,
    "num_experts_per_tok": MAX_EXPERTS, "n_shared_experts": MAX_EXPERTS,
    "hidden_size": MAX_HIDDEN, "vt_hidden_size": MAX_HIDDEN, "mm_hidden_size": MAX_HIDDEN,
    "text_hidden_size": MAX_HIDDEN, "head_dim": MAX_HIDDEN, "q_lora_rank": MAX_HIDDEN, "kv_lora_rank": MAX_HIDDEN,
    "qk_nope_head_dim": MAX_HIDDEN, "qk_rope_head_dim": MAX_HIDDEN, "v_head_dim": MAX_HIDDEN,
    "intermediate_size": MAX_INTERMEDIATE, "moe_intermediate_size": MAX_INTERMEDIATE,
    "shared_expert_intermediate_size": MAX_INTERMEDIATE, "vt_intermediate_size": MAX_INTERMEDIATE,
    "num_attention_heads": MAX_HEADS, "num_key_value_heads": MAX_HEADS,
    "vocab_size": MAX_VOCAB, "max_position_embeddings": MAX_TOKENS, "sliding_window": MAX_TOKENS,
}

# ---------------------------------------------------------------- hardware and deployments
# GPUs (and nodes) of one scenario: the largest published training clusters hold ~100,000 GPUs; 1,048,576 is 10x
MAX_GPUS = 1 << 20
# installed host DRAM: the largest shared-memory servers (HPE Superdome Flex 280) take 24 TB; 1 PB is 40x
MAX_HOST_MEMORY_GB = 1e6
# any price in USD (a GPU, a server, an hour, a million API tokens): no single item of a plan costs a billion;
# a bound keeps every cost a plan sums finite (1e308 became `inf` in --json output)
MAX_PRICE_USD = 1e9

# ---------------------------------------------------------------- traffic (scenario workloads and sizing)
# requests in flight: 100,000 requests/s for 100 s each
MAX_CONCURRENCY = 10**7
# request rate: ChatGPT's 2.5 billion prompts a day (2025) average ~29,000 per second; 100,000/s is ~3x that.
# Past it, `size` needs over a million GPUs and refused the plan naming hardware.nodes, a field the workload lacks
MAX_REQUESTS_PER_S = 1e5
# tokens a day, stated or carried by a request rate: Google reported 980 trillion tokens a month (2025), ~3.3e13 a
# day; 1e14 is 3x that. 100,000 requests/s of 200,000 tokens (1.7e15 a day) needed 8 million nodes and was refused
# naming hardware.nodes; at the limit the heaviest shape (decode only) needs ~2.6 million H100s and answers in 2 s
MAX_TOKENS_PER_DAY = 1e14
