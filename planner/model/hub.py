"""A Hugging Face model id (`moonshotai/Kimi-K2.5`) as a model: its config.json, never its weights.

Through huggingface_hub (1.x-2.x): the local cache first (`try_to_load_from_cache`, the cache that
`HF_HUB_CACHE`/`HF_HOME` name), then `hf_hub_download(id, "config.json")` unless `HF_HUB_OFFLINE` is set; offline
and not cached is one line naming the id. The returned path is a config.json inside the cache's snapshot folder
(`.../models--owner--name/snapshots/<revision>/config.json`), which every command already reads as a model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from planner.base.errors import PlannerError

# owner/name as the Hub spells repo ids (huggingface_hub validate_repo_id: letters, digits, - _ . ; 96 chars)
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_TRUE = {"1", "on", "yes", "true"}


def is_model_id(text: str) -> bool:
    """Whether `text` reads as a Hub id and names no local path."""
    return bool(REPO_ID.match(text)) and not os.path.exists(text) and not text.endswith((".json", ".yaml"))


def config_path(model_id: str, revision: str | None = None) -> str:
    """The local path of the id's config.json: from the cache, else downloaded (config.json only)."""
    try:  # the `files` extra; 120-150 ms of import (httpx), paid only when a model is a Hub id
        from huggingface_hub import errors, hf_hub_download, try_to_load_from_cache
    except ImportError:
        raise PlannerError(f"{model_id}: reading a Hugging Face id needs huggingface_hub (pip install -e '.[files]')",
                           field="model") from None
    cache = os.environ.get("HF_HUB_CACHE") or None  # read per call: tests and users may set it after import
    try:
        cached = try_to_load_from_cache(model_id, "config.json", cache_dir=cache, revision=revision)
    except errors.HFValidationError as err:
        raise PlannerError(f"{model_id!r} is not a Hugging Face model id: {err}"[:300], field="model") from None
    if isinstance(cached, str):
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise PlannerError(f"{model_id}: config.json is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                           field="model")
    try:
        return hf_hub_download(model_id, "config.json", revision=revision, cache_dir=cache)
    except (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, OSError, ValueError) as err:
        raise PlannerError(f"{model_id}: cannot fetch config.json from the Hugging Face Hub "
                           f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"[:300],
                           field="model") from None


def revision_of(path: str) -> str | None:
    """The commit a cached config.json belongs to: its snapshot folder's name (`snapshots/<revision>/config.json`)."""
    p = Path(path)
    return p.parent.name if p.parent.parent.name == "snapshots" else None
