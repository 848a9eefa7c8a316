"""Real torch runs of MLA/MoE layers beside the planner's predictions (issue: kernels_bench)."""
