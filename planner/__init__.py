"""Analytical capacity planner for MoE LLMs: exact bytes, KV cache, memory fit (pure Python, no torch)."""
