"""`python -m planner compare RESULT`: a benchmark result file beside the planner's prediction for the same workload.

One reader module per tool (vllm, sglang, aiperf, llamabench, plain), each recognising its files by content and
turning them into `Run`s (planner.compare.result): what the file states about the workload and what it measured,
in CONTRACT.md's metric names. planner.compare.read tries the readers; planner.compare.run builds the scenario (the
hardware and plan from flags or a scenario file, the workload from the result), runs planner.serving.estimate and
lines up measured and predicted per metric.
"""
