"""Malformed inputs for every command, generated deterministically; `write` puts one on disk for a test.

Two families:
- generic (file level, every planner command gets each): truncated YAML and JSON, empty and comment-only files,
  a list or scalar where a mapping belongs, several documents in one file, tags that would construct Python objects
  (`!!python/object/apply:os.system`, `!!python/name`, `!!python/module`, ...), tags the safe loader cannot build
  (`!!int 'abc'`, `!!timestamp 'x'`), a 5,000-digit integer, nesting 100 and 100,000 deep, a "billion laughs" alias
  bomb and a self-referencing alias, NUL and control characters, lone surrogates, Latin-1, UTF-16 and binary
  noise, a 17 MB file and a 3 GB sparse file (both refused by size before parsing), a folder and a missing file;
- field (per command): one field of a valid base document replaced by a wrong value (wrong type, negative count,
  fraction out of range, NaN, infinity, 1e300, a 40-digit integer, an unknown name, Unicode look-alikes and
  direction overrides, a 300-character name, a name with a NUL) or an unknown key added. The error must name it.

Every entry is malformed: each must give one line `error: <file>: <field>: ...` and exit code 2 (validate: a case
that is malformed is reported as skipped with the same one line, the other cases go on).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "data" / "hf-configs"
COMMANDS = ("inspect", "estimate", "validate", "size", "report")


@dataclass(frozen=True)
class Entry:
    id: str  # unique; the file stem
    command: str  # inspect | estimate | validate | size | report
    category: str  # what was tried (docs/robustness.md groups by it)
    suffix: str  # .yaml | .json
    data: bytes | None  # file content (None: see special)
    field: str | None = None  # text the error line must contain besides the file (the field at fault)
    special: str | None = None  # sparse-3gb | folder | missing
    xfail: str | None = None  # a known bug in a module this issue does not own
    case_level: bool = False  # validate: the malformed part is one case (reported as skipped, exit 0)


# ---------------------------------------------------------------- valid base documents (one per command)

SCENARIO = {
    "name": "fuzz-base", "model": "kimi-k2.5", "weights": "int4-g32", "kv_cache": "bf16",
    "hardware": {"gpu": "h200-sxm", "gpus_per_node": 8, "nodes": 1},
    "parallelism": {"tp": 8, "ep": 1, "pp": 1, "dp_attention": 1, "replicas": 1, "disaggregated": False},
    "offload": {"expert_layers_on_cpu": 0, "cpu_compute": True},
    "engine": "vllm", "engine_options": {"memory_fraction": 0.9, "max_num_seqs": 256},
    "speculative": {"mtp_tokens": 0},
    "workload": {"phase": "decode", "concurrency": 16, "input_len": 1024, "output_len": 1024, "prefix_cache_hit": 0.0},
    "slo": {"ttft_ms": 2000, "tpot_ms": 200},
}
CASES = {"schema_version": 1, "cases": [{**SCENARIO, "measured": [{"metric": "tpot_ms", "value": 40, "source": "x"}]}]}
WORKLOAD = {
    "name": "fuzz", "model": "qwen3-30b-a3b", "weights": ["int4-g128"], "kv_cache": ["fp8"], "context_len": 8192,
    "traffic": {"requests_per_s": 1.0, "input_len": 2000, "output_len": 500, "prefix_cache_hit": 0.0},
    "slo": {"ttft_ms": 3000, "tpot_ms": 50, "percentile": 99}, "purchase": "buy", "electricity_usd_per_kwh": 0.12,
    "pue": 1.5, "amortization_years": 3, "budget": {"capex_usd": 1_000_000},
    "api": {"input_per_m_usd": 0.6, "output_per_m_usd": 3.0}, "data_local": False, "objective": "usd_per_m_tokens",
    "top": 3, "search": {"classes": ["gpu_server"], "accelerators": ["h100-sxm"], "max_nodes": 1},
}
REPORT = {
    "title": "fuzz", "description": "d", "source": "s", "models": ["kimi-k2.5"], "formats": ["int4-g32"],
    "kv_cache": ["bf16"], "hardware": ["h200-sxm"],
    "workloads": {"chat": {"phase": "serve", "input_len": 1000, "output_len": 200}},
    "plans": [{"template": {"engine": "vllm", "hardware": {"gpus_per_node": 8}, "parallelism": {"tp": 8},
                            "workload": "chat"}}],
    "sections": ["model_card", "memory_per_gpu", {"kv_vs_context": {"max_context": 65536}}],
}
SCENARIO_HOST = {  # an offload scenario with an inline host (CONTRACT.md §6 form)
    "model": "kimi-k2.5", "weights": "gguf-ud-tq1_0", "engine": "llamacpp",
    "hardware": {"gpu": "rtx-4090", "gpus_per_node": 1,
                 "host": {"cpu": "xeon-8480", "sockets": 2, "memory_gb": 512, "dram": "ddr5-4800",
                          "channels_per_socket": 8}},
    "parallelism": {"tp": 1}, "offload": {"expert_layers_on_cpu": "all", "cpu_compute": True},
    "workload": {"phase": "serve", "concurrency": 1, "input_len": 2048, "output_len": 512},
}
_FITS = {"name": "2x H100 INT4", "weights": "int4-g32", "engine": "vllm", "hardware": {"gpu": "h100-sxm",
         "gpus_per_node": 2}, "parallelism": {"tp": 2}, "workload": "chat"}
CLAIMS_REPORT = {  # the claims audit with one check of each quick kind (claim ids of the vendored claims file)
    "title": "claims", "models": ["kimi-k2.5"], "formats": ["int4-g32"], "kv_cache": ["bf16"],
    "hardware": ["h200-sxm"], "workloads": {"chat": {"phase": "serve", "input_len": 1000, "output_len": 200}},
    "sections": [{"claims_audit": {"claims": "profiles/claims/kimi-k25-guide-claims.yaml", "checks": {
        "params-total": [{"check": "params", "quantity": "total_with_vision", "claimed": 1.04e12}],
        "layers": [{"check": "architecture", "claimed": {"layers": 61, "hidden_size": 7168}}],
        "experts": [{"check": "architecture_ratio", "versus": "deepseek-v3", "fact": "routed_experts",
                     "claimed": 1.5}],
        "mla-kv-formula": [{"check": "mla_kv_formula", "dtype": "bf16", "latent_copies": 2}],
        "mla-kv-ratio": [{"check": "kv_ratio", "dtype": "bf16", "claimed": 10}],
        "size-int4": [{"check": "weights_size", "weights": "int4-g32", "claimed_bytes": 630e9}],
        "enterprise": [{"check": "fits", "claimed": True, "scenario": _FITS},
                       {"check": "speed", "claimed": [50, 100], "scenario": _FITS}],
        "full-in-memory": [{"check": "experts_touched", "tokens": [1, 64], "claimed_all": True}],
    }}}],
}
KIMI_CONFIG = json.loads((CONFIGS / "moonshotai__Kimi-K2.5.json").read_text())
GPT_OSS_CONFIG = json.loads((CONFIGS / "openai__gpt-oss-120b.json").read_text())
QWEN_CONFIG = json.loads((CONFIGS / "Qwen__Qwen3-30B-A3B.json").read_text())
PROFILE = {"source": "fuzz", "hf_repo": "x/y", "native_weights": "bf16", "config": QWEN_CONFIG}

# ---------------------------------------------------------------- wrong values by what a field expects

NAN, INF = float("nan"), float("inf")
LONG = "a" * 300
WRONG: dict[str, list[tuple[str, object]]] = {
    "name": [("int", 5), ("bool", True), ("list", [[1]]), ("map", {"bogus": 1}), ("unknown", "no-such-profile"),
             ("fullwidth", "ｋｉｍｉ"), ("rtl-override", "h200\u202e-sxm"), ("emoji", "🦙-70b"), ("nul", "h200\x00"),
             ("empty", ""), ("long", LONG)],
    "count": [("negative", -1), ("fraction", 2.5), ("text", "eight"), ("bool", True), ("list", [8]),
              ("map", {"n": 8}), ("nan", NAN), ("inf", INF), ("huge", 10**40), ("1e300", 1e300)],
    "amount": [("negative", -1), ("text", "lots"), ("bool", True), ("list", [1]), ("nan", NAN), ("inf", INF),
               ("-inf", -INF)],
    "fraction": [("negative", -0.5), ("over-one", 1.5), ("nan", NAN), ("text", "half"), ("bool", True),
                 ("list", [0.5])],
    "bool": [("text", "yes"), ("int", 1), ("list", [True]), ("map", {"a": 1})],
    "mapping": [("int", 5), ("text", "text"), ("list", [1, 2]), ("bool", True)],
    "names": [("int", 5), ("list-int", [5]), ("unknown", ["no-such-profile"]), ("empty-list", []),
              ("nested", [["x"]]), ("map", {"a": 1}), ("long", [LONG])],
    "choice": [("unknown", "nope"), ("int", 5), ("list", ["x"]), ("upper", "DECODE"), ("bool", False)],
    "text": [("int", 5), ("list", [1]), ("map", {"a": 1}), ("bool", True)],
    "list": [("int", 5), ("text", "x"), ("map", {"a": 1})],
    "range": [("text", "fast"), ("one", [1]), ("three", [1, 2, 3]), ("reversed", [100, 50]), ("nan", [NAN, 1]),
              ("map", {"a": 1}), ("bool", True)],
}

# (path, kind, expected text in the error line; default: the dotted path)
SCENARIO_FIELDS = [
    (("model",), "name"), (("weights",), "name"), (("kv_cache",), "choice"), (("engine",), "name"),
    (("hardware",), "mapping"), (("hardware", "gpu"), "name"), (("hardware", "gpus_per_node"), "count"),
    (("hardware", "nodes"), "count"), (("hardware", "host"), "name"),
    (("parallelism",), "mapping"), (("parallelism", "tp"), "count"), (("parallelism", "ep"), "count"),
    (("parallelism", "pp"), "count"), (("parallelism", "dp_attention"), "count"),
    (("parallelism", "replicas"), "count"), (("parallelism", "disaggregated"), "bool"),
    (("offload",), "mapping"), (("offload", "expert_layers_on_cpu"), "count"), (("offload", "cpu_compute"), "bool"),
    (("engine_options",), "mapping"), (("engine_options", "memory_fraction"), "fraction"),
    (("engine_options", "max_num_seqs"), "count"), (("speculative",), "mapping"),
    (("speculative", "mtp_tokens"), "count"), (("speculative", "acceptance"), "fraction"),
    (("workload",), "mapping"), (("workload", "phase"), "choice"), (("workload", "concurrency"), "amount"),
    (("workload", "input_len"), "count"), (("workload", "output_len"), "count"),
    (("workload", "prefix_cache_hit"), "fraction"), (("slo",), "mapping"), (("slo", "ttft_ms"), "amount"),
    (("slo", "tpot_ms"), "amount"),
]
WORKLOAD_FIELDS = [
    (("model",), "names"), (("weights",), "names"), (("kv_cache",), "names"), (("context_len",), "count"),
    (("traffic",), "mapping"), (("traffic", "requests_per_s"), "amount"), (("traffic", "input_len"), "count"),
    (("traffic", "output_len"), "count"), (("traffic", "prefix_cache_hit"), "fraction"), (("slo",), "mapping"),
    (("slo", "ttft_ms"), "amount"), (("slo", "tpot_ms"), "amount"), (("slo", "percentile"), "amount"),
    (("purchase",), "choice"), (("electricity_usd_per_kwh",), "amount"), (("pue",), "amount"),
    (("amortization_years",), "amount"), (("budget",), "mapping"), (("budget", "capex_usd"), "amount"),
    (("api",), "name"), (("api", "input_per_m_usd"), "amount"), (("data_local",), "bool"), (("objective",), "choice"),
    (("top",), "count"), (("search",), "mapping"), (("search", "classes"), "names"),
    (("search", "accelerators"), "names"), (("search", "max_nodes"), "count"), (("name",), "text"),
]
REPORT_FIELDS = [
    (("title",), "text"), (("description",), "text"), (("models",), "names"), (("formats",), "names"),
    (("kv_cache",), "names"), (("hardware",), "names"), (("workloads",), "mapping"),
    (("workloads", "chat"), "mapping"), (("workloads", "chat", "input_len"), "count", "input_len"),
    (("workloads", "chat", "phase"), "choice", "phase"), (("plans",), "list"), (("plans", 0), "mapping"),
    (("plans", 0, "template"), "mapping"), (("plans", 0, "template", "engine"), "name", "engine"),
    (("plans", 0, "template", "hardware"), "mapping", "hardware"),
    (("plans", 0, "template", "hardware", "gpus_per_node"), "count", "gpus_per_node"),
    (("plans", 0, "template", "parallelism", "tp"), "count", "tp"),
    (("plans", 0, "template", "workload"), "name", "workload"), (("sections",), "list"),
    (("sections", 2, "kv_vs_context", "max_context"), "count", "max_context"),
]
HOST_FIELDS = [
    (("hardware", "host", "cpu"), "name"), (("hardware", "host", "sockets"), "count"),
    (("hardware", "host", "memory_gb"), "amount"), (("hardware", "host", "dram"), "choice"),
    (("hardware", "host", "channels_per_socket"), "count"), (("offload", "expert_layers_on_cpu"), "count"),
]
_CHECKS = ("sections", 0, "claims_audit", "checks")
CLAIMS_FIELDS = [
    ((*_CHECKS, "params-total", 0, "claimed"), "amount"), ((*_CHECKS, "params-total", 0, "quantity"), "choice"),
    ((*_CHECKS, "params-total", 0, "check"), "choice"), ((*_CHECKS, "params-total"), "list"),
    ((*_CHECKS, "layers", 0, "claimed"), "mapping"), ((*_CHECKS, "layers", 0, "claimed", "layers"), "amount"),
    ((*_CHECKS, "experts", 0, "versus"), "name"), ((*_CHECKS, "experts", 0, "fact"), "choice"),
    ((*_CHECKS, "experts", 0, "claimed"), "amount"), ((*_CHECKS, "mla-kv-formula", 0, "dtype"), "choice"),
    ((*_CHECKS, "mla-kv-formula", 0, "latent_copies"), "count"), ((*_CHECKS, "mla-kv-ratio", 0, "claimed"), "amount"),
    ((*_CHECKS, "size-int4", 0, "weights"), "name"), ((*_CHECKS, "size-int4", 0, "claimed_bytes"), "amount"),
    ((*_CHECKS, "enterprise", 0, "claimed"), "bool"), ((*_CHECKS, "enterprise", 0, "scenario"), "mapping"),
    ((*_CHECKS, "enterprise", 0, "scenario", "hardware", "gpus_per_node"), "count", "gpus_per_node"),
    ((*_CHECKS, "enterprise", 1, "claimed"), "range"), ((*_CHECKS, "full-in-memory", 0, "tokens"), "list"),
    ((*_CHECKS, "full-in-memory", 0, "claimed_all"), "bool"), (("sections", 0, "claims_audit", "claims"), "name"),
    (("sections", 0, "claims_audit", "checks"), "mapping"),
]
CONFIG_FIELDS = [  # Kimi K2.5 config.json: language model under text_config, MoonViT under vision_config
    (("model_type",), "choice"), (("text_config",), "mapping"),
    *((("text_config", k), "count") for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                "vocab_size", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                                                "v_head_dim", "n_routed_experts", "num_experts_per_tok",
                                                "moe_intermediate_size", "q_lora_rank", "n_shared_experts",
                                                "first_k_dense_replace", "max_position_embeddings")),
    (("text_config", "tie_word_embeddings"), "bool"), (("text_config", "quantization_config"), "mapping"),
    (("text_config", "quantization_config", "config_groups"), "mapping"), (("vision_config",), "mapping"),
    *((("vision_config", k), "count") for k in ("vt_hidden_size", "vt_num_hidden_layers", "patch_size",
                                                  "merge_kernel_size")),
]
GPT_OSS_FIELDS = [(("layer_types",), "list"), (("sliding_window",), "count"), (("num_local_experts",), "count"),
                  (("head_dim",), "count"), (("attention_bias",), "bool")]
PROFILE_FIELDS = [(("config",), "mapping"), (("native_weights",), "choice"), (("source",), "text"),
                  (("config", "num_experts"), "count", "num_experts"),
                  (("config", "mlp_only_layers"), "list", "mlp_only_layers")]
MEASURED_FIELDS = [(("measured",), "list"), (("measured", 0), "mapping"), (("measured", 0, "metric"), "choice"),
                   (("measured", 0, "value"), "amount")]

# wrong values a field accepts on purpose (not malformed): skipped when generating
ACCEPTED: set[tuple[str, str, str]] = set()


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _set(doc, path: tuple, value):
    doc = copy.deepcopy(doc)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _dump(doc, suffix: str) -> bytes:
    if suffix == ".json":
        return json.dumps(doc).encode()
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


def field_entries(command: str, base: dict, fields: list, suffix: str, prefix: str = "") -> list[Entry]:
    out = []
    for spec in fields:
        path, kind = spec[0], spec[1]
        expect = spec[2] if len(spec) > 2 else dotted(path)
        for label, value in WRONG[kind]:
            if (kind, path[-1], label) in ACCEPTED:
                continue
            if kind == "choice" and path[-1] == "native_weights" and label == "unknown":
                value = "int4-g32"  # a real format, but not what the config's quantization_config says
            doc = _set(base, path, value)
            out.append(Entry(f"{command}-{prefix}{dotted(path)}-{label}", command, f"field: {kind}", suffix,
                             _dump(doc, suffix), expect))
    return out


def unknown_key_entries(command: str, base: dict, mappings: list[tuple], suffix: str) -> list[Entry]:
    out = []
    for path in mappings:
        for label, key in (("ascii", "colour"), ("homoglyph", "mоdel"), ("zero-width", "tp\u200b"),
                           ("newline", "a\nb")):
            doc = copy.deepcopy(base)
            node = doc
            for p in path:
                node = node[p]
            node[key] = 1
            where = (dotted(path) + "." if path else "") + key.replace("\n", "\\n")
            out.append(Entry(f"{command}-unknown-{dotted(path) or 'top'}-{label}", command, "unknown key", suffix,
                             _dump(doc, suffix), where))
    return out


# ---------------------------------------------------------------- file-level malformations

def _laughs() -> bytes:
    text, prev = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
    for c in "bcdefghi":
        text += f"{c}: &{c} [" + ",".join(["*" + prev] * 9) + "]\n"
        prev = c
    return text.encode()


def generic(command: str, base: dict) -> list[Entry]:
    y = yaml.safe_dump(base, sort_keys=False, default_flow_style=True, width=10**9).encode()  # one flow line
    j = json.dumps(base).encode()
    rng = random.Random(f"fuzz-{command}")
    raw = [
        *((f"truncated-yaml-{k}", ".yaml", y[: len(y) * k // 8]) for k in (1, 2, 3, 4, 5, 6, 7)),
        *((f"truncated-json-{k}", ".json", j[: len(j) * k // 8]) for k in (1, 2, 3, 4, 5, 6, 7)),
        ("empty", ".yaml", b""), ("empty-json", ".json", b""), ("whitespace", ".yaml", b"  \n\t\n"),
        ("comment-only", ".yaml", b"# nothing here\n"), ("null", ".yaml", b"null\n"), ("tilde", ".yaml", b"~\n"),
        ("scalar", ".yaml", b"42\n"), ("text", ".yaml", b"just some text\n"), ("list", ".yaml", b"- a\n- b\n"),
        ("json-list", ".json", b"[1, 2, 3]"), ("json-string", ".json", b'"config"'),
        ("json-nan", ".json", b"NaN"), ("two-documents", ".yaml", b"a: 1\n---\nb: 2\n"),
        ("unclosed-flow", ".yaml", b"{model: [kimi\n"), ("bad-indent", ".yaml", b"a:\n  b: 1\n c: 2\n"),
        ("tab-indent", ".yaml", b"a:\n\tb: 1\n"), ("duplicate-anchor-use", ".yaml", b"a: *undefined\n"),
        ("python-apply", ".yaml", b"model: !!python/object/apply:os.system ['echo pwned']\n"),
        ("python-name", ".yaml", b"model: !!python/name:os.system\n"),
        ("python-module", ".yaml", b"model: !!python/module:os\n"),
        ("python-new", ".yaml", b"model: !!python/object/new:builtins.dict {}\n"),
        ("python-tuple", ".yaml", b"model: !!python/tuple [1, 2]\n"),
        ("custom-tag", ".yaml", b"model: !planner/evil {a: 1}\n"),
        ("top-level-tag", ".yaml", b"!!python/object/apply:subprocess.check_output [['id']]\n"),
        ("bad-int-tag", ".yaml", b"model: !!int 'abc'\n"), ("bad-float-tag", ".yaml", b"model: !!float 'abc'\n"),
        ("bad-timestamp-tag", ".yaml", b"model: !!timestamp 'yesterday'\n"),
        ("bad-binary-tag", ".yaml", b"model: !!binary '%%%'\n"),
        ("huge-int-yaml", ".yaml", b"model: " + b"9" * 5000 + b"\n"),
        ("huge-int-json", ".json", b'{"model": ' + b"9" * 5000 + b"}"),
        ("nested-100-yaml", ".yaml", b"a: " + b"{a: " * 100 + b"1" + b"}" * 100 + b"\n"),
        ("nested-100k-yaml", ".yaml", b"[" * 100_000 + b"]" * 100_000),
        ("nested-100k-json", ".json", b"[" * 100_000 + b"]" * 100_000),
        ("nested-100-json", ".json", b'{"a": ' * 100 + b"1" + b"}" * 100),
        ("alias-bomb", ".yaml", _laughs()), ("alias-self", ".yaml", b"a: &a [*a]\n"),
        ("nul-byte", ".yaml", b"model: kimi\x00-k2.5\n"), ("control-char", ".yaml", b"model: kimi\x07\n"),
        ("lone-surrogate-json", ".json", b'{"model": "\\ud800"}'),
        ("lone-surrogate-yaml", ".yaml", b'model: "\\ud800"\n'),
        ("latin-1", ".yaml", "model: kimi-k2.5\nname: caf\xe9\n".encode("latin-1")),
        ("utf-16", ".yaml", "model: kimi-k2.5\n".encode("utf-16")),
        ("binary-noise", ".yaml", bytes(rng.randrange(256) for _ in range(4096))),
        ("binary-noise-json", ".json", bytes(rng.randrange(256) for _ in range(4096))),
        ("long-line", ".yaml", b"k" * 1_000_000 + b": 1\n"),
        ("over-limit-17mb", ".yaml", b"# " + b"x" * (17 * 2**20) + b"\n"),
    ]
    out = [Entry(f"{command}-{name}", command, "file: " + name.split("-")[0], suffix, data)
           for name, suffix, data in raw]
    out += [Entry(f"{command}-sparse-3gb", command, "file: huge", ".yaml", None, special="sparse-3gb"),
            Entry(f"{command}-folder", command, "file: folder", ".yaml", None, special="folder"),
            Entry(f"{command}-missing", command, "file: missing", ".yaml", None, special="missing")]
    return out


# ---------------------------------------------------------------- the corpus

def _sections(base: dict) -> list[tuple]:
    return [()] + [(k,) for k, v in base.items() if isinstance(v, dict)]


@cache
def planner_entries() -> tuple[Entry, ...]:
    out = []
    for command, base in (("inspect", KIMI_CONFIG), ("estimate", SCENARIO), ("validate", CASES),
                          ("size", WORKLOAD), ("report", REPORT)):
        out += generic(command, base)
    out += field_entries("estimate", SCENARIO, SCENARIO_FIELDS, ".yaml")
    out += unknown_key_entries("estimate", SCENARIO, _sections(SCENARIO), ".yaml")
    out += field_entries("estimate", SCENARIO, SCENARIO_FIELDS[:12], ".json", "json-")
    out += field_entries("estimate", SCENARIO_HOST, HOST_FIELDS, ".yaml", "host-")
    out += unknown_key_entries("estimate", SCENARIO_HOST, [("hardware", "host")], ".yaml")
    out += field_entries("report", CLAIMS_REPORT, CLAIMS_FIELDS, ".yaml", "claims-")
    out += unknown_key_entries("report", CLAIMS_REPORT, [(*_CHECKS, "params-total", 0)], ".yaml")
    out += field_entries("size", WORKLOAD, WORKLOAD_FIELDS, ".yaml")
    out += unknown_key_entries("size", WORKLOAD, [(), ("traffic",), ("slo",), ("budget",), ("api",), ("search",)],
                               ".yaml")
    out += field_entries("report", REPORT, REPORT_FIELDS, ".yaml")
    out += unknown_key_entries("report", REPORT, [(), ("plans", 0), ("sections", 2, "kv_vs_context")], ".yaml")
    out += field_entries("inspect", KIMI_CONFIG, CONFIG_FIELDS, ".json")
    out += field_entries("inspect", GPT_OSS_CONFIG, GPT_OSS_FIELDS, ".json", "gpt-oss-")
    out += field_entries("inspect", PROFILE, PROFILE_FIELDS, ".yaml", "profile-")
    out += unknown_key_entries("inspect", PROFILE, [()], ".yaml")
    out += field_entries("validate", CASES, [(("cases",), "list")], ".yaml")
    out += unknown_key_entries("validate", CASES, [()], ".yaml")
    # one malformed case among good ones: reported as skipped (file: cases[0]: field: what), the run goes on
    case = CASES["cases"][0]
    for e in (field_entries("validate", case, SCENARIO_FIELDS + MEASURED_FIELDS, ".yaml", "case-")
              + unknown_key_entries("validate", case, _sections(case) + [("measured", 0)], ".yaml")):
        bad = {**yaml.safe_load(e.data), "name": "malformed"}
        doc = {"schema_version": 1, "cases": [bad, {**copy.deepcopy(case), "name": "good"}]}
        out.append(Entry(e.id.replace("validate-", "validate-case-", 1), "validate", e.category, ".yaml",
                         _dump(doc, ".yaml"), e.field, xfail=e.xfail, case_level=True))
    ids = [e.id for e in out]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    return tuple(out)


def write(entry: Entry, folder: Path) -> Path:
    """The entry on disk under `folder`; returns the path to give the command."""
    if entry.command == "inspect" and entry.suffix == ".json" and entry.special is None:
        target = folder / entry.id
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.json").write_bytes(entry.data)
        return target / "config.json"
    path = folder / f"{entry.id}{entry.suffix}"
    if entry.special == "sparse-3gb":
        with open(path, "wb") as fh:
            fh.truncate(3 * 2**30)  # sparse: no disk space used, but stat() says 3 GiB
    elif entry.special == "folder":
        path.mkdir(parents=True)
    elif entry.special == "missing":
        pass
    else:
        path.write_bytes(entry.data)
    return path
