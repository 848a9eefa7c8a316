"""Load a model by profile name (`profiles/models/<name>.yaml`) or from a Hugging Face `config.json` (a file, a
folder that holds one, or a Hub id such as `moonshotai/Kimi-K2.5`, resolved to its config.json through
planner.model.hub). All go through `model_spec_from_config`, so a profile and the config.json it copies give
identical results.

A profile is `{source, hf_repo, native_weights, config}` where `config` is the config.json mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from planner.base.errors import PlannerError
from planner.base.yamlio import (
    PROFILES,
    check_keys,
    file_problem,
    get_str,
    is_file,
    load_document,
    profile_names,
    require_mapping,
)
from planner.model.hub import config_path, is_model_id, revision_of
from planner.model.kv import KV_DTYPES
from planner.model.quant import native_format_name
from planner.model.spec import ModelSpec, model_spec_from_config

MODELS_DIR = PROFILES / "models"
PROFILE_KEYS = ("source", "hf_repo", "native_weights", "config", "notes", "published")


@dataclass(frozen=True)
class Model:
    """A loaded model: its spec, the raw config, and where it came from."""

    name: str  # profile name, or the config's folder name
    spec: ModelSpec  # architecture facts
    native_weights: str  # format of the official checkpoint (from quantization_config)
    source: str  # profile source line, or the config path
    file: str  # file the config was read from
    # checkpoints someone publishes, format -> Hugging Face repo id: the official one in its native format (the
    # profile's hf_repo) plus the profile's `published:` entries (community quantizations, each with its source)
    published: tuple[tuple[str, str], ...] = ()
    # format -> the KV cache dtype a published checkpoint declares (its quantization config's kv_cache_scheme or
    # hf_quant_config.json kv_cache_quant_algo: calibrated FP8 scales), where it declares one
    declared_kv_cache: tuple[tuple[str, str], ...] = ()
    hub_id: str | None = None  # the Hugging Face id the config.json was resolved from (planner.model.hub)
    revision: str | None = None  # the commit of that config.json (its cache snapshot)

    def checkpoint(self, fmt: str) -> str | None:
        """The published checkpoint of this model in `fmt`, or None (the user would quantize it themselves)."""
        return dict(self.published).get(fmt)

    def checkpoint_kv_cache(self, fmt: str) -> str | None:
        """The KV cache dtype the published checkpoint in `fmt` declares, or None (it declares none)."""
        return dict(self.declared_kv_cache).get(fmt)


def list_models() -> list[str]:
    return profile_names(MODELS_DIR)


@lru_cache(maxsize=64)
def load_model(ref: str) -> Model:
    """`ref` is a profile name, a path to a config.json, a folder holding config.json, or a Hugging Face id
    (`owner/name`: its config.json only, from the local cache first; planner.model.hub)."""
    if not ref.strip():
        raise PlannerError(f"unknown model {ref!r}: give a profile name or a config.json path", field="model")
    path = Path(ref)
    if _is_dir(path):
        path = path / "config.json"
        if not is_file(path):
            what = file_problem(path)
            raise PlannerError("folder holds no config.json" if what == "file not found" else f"config.json is {what}",
                               file=ref)
    if path.suffix.lower() == ".json" or path.name == "config.json":
        return _config_model(path)
    if is_model_id(ref):  # owner/name: a Hugging Face id, its config.json from the local cache first
        cached = config_path(ref)
        return _config_model(Path(cached), ref, revision_of(cached))
    # a name is a file stem in profiles/models/ (`../quant/x` would leave the folder); a path ends in .yaml
    profile = path if path.suffix in (".yaml", ".yml") else None if "/" in ref or "\\" in ref \
        else MODELS_DIR / f"{ref}.yaml"
    if profile is None or not is_file(profile):
        raise PlannerError(f"unknown model {ref!r}: not a profile ({', '.join(list_models())}) "
                           "nor a config.json file or folder", field="model")
    file = str(profile)
    doc = require_mapping(load_document(profile), file)
    check_keys(doc, PROFILE_KEYS, file)
    config = require_mapping(doc.get("config"), file, "config")
    spec = model_spec_from_config(config, name=profile.stem, file=f"{file}: config")
    native = native_format_name(config, spec, f"{file}: config")
    stated = get_str(doc, "native_weights", file, default=native)
    if stated != native:
        raise PlannerError(f"says {stated!r} but config.quantization_config gives {native!r}",
                           file=file, field="native_weights")
    published, kv = _published(doc, native, file)
    return Model(profile.stem, spec, native, get_str(doc, "source", file), file, published, kv)


def _config_model(path: Path, hub_id: str | None = None, revision: str | None = None) -> Model:
    """A model from a config.json: named by the profile it equals, else by the Hub id or its folder."""
    file = str(path)
    config = require_mapping(load_document(path), file)
    name = _profile_named_by(config) or hub_id or (path.stem if path.name != "config.json" else path.parent.name)
    spec = model_spec_from_config(config, name=name, file=file)
    native = native_format_name(config, spec, file)
    # the user's own checkpoint (or the Hub repo), in the config's native format, is the one they have
    source = file if hub_id is None else f"{hub_id} config.json at revision {revision} ({file})"
    return Model(name, spec, native, source, file, ((native, hub_id or str(path.parent)),),
                 hub_id=hub_id, revision=revision)


def model_config(model: Model) -> dict | None:
    """Where a model's config.json came from when it was a Hub id: the id, the revision, the cached file."""
    return {"hub_id": model.hub_id, "revision": model.revision, "file": model.file} if model.hub_id else None


def _published(doc: dict, native: str, file: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(format -> repo, format -> declared KV cache dtype) from `published: {format: {repo: owner/name, source: ...,
    kv_cache: fp8}}` beside the official checkpoint (hf_repo, native)."""
    out = {native: get_str(doc, "hf_repo", file)} if doc.get("hf_repo") else {}
    kv = {}
    entries = require_mapping(doc.get("published") or {}, file, "published")
    for fmt, entry in entries.items():
        entry = require_mapping(entry, file, f"published.{fmt}")
        check_keys(entry, ("repo", "source", "notes", "kv_cache"), file, f"published.{fmt}.")
        get_str(entry, "source", file, prefix=f"published.{fmt}.")
        out[str(fmt)] = get_str(entry, "repo", file, prefix=f"published.{fmt}.")
        if "kv_cache" in entry:
            kv[str(fmt)] = get_str(entry, "kv_cache", file, prefix=f"published.{fmt}.")
            if kv[str(fmt)] not in KV_DTYPES:
                raise PlannerError(f"expected one of {', '.join(KV_DTYPES)}", file=file,
                                   field=f"published.{fmt}.kv_cache")
    return tuple(out.items()), tuple(kv.items())


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name no folder can have (too long, NUL bytes)
        return False


def _profile_named_by(config: dict) -> str | None:
    """The profile whose config equals this config.json (so a copied config reports the profile's name)."""
    for name in list_models():
        try:
            doc = load_document(MODELS_DIR / f"{name}.yaml")
        except PlannerError:
            continue
        if isinstance(doc, dict) and doc.get("config") == config:
            return name
    return None


def raw_config(model: Model) -> dict[str, Any]:
    """The config.json mapping behind a loaded model (for cross-checks)."""
    doc = require_mapping(load_document(model.file), model.file)
    return dict(doc.get("config", doc))
