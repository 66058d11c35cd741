"""Where a checkpoint comes from: a local folder, or the Hugging Face hub (downloaded if needed).

Below the config and the loader, which both resolve a source through it. No torch here, and
huggingface_hub only when a download is needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError

DEFAULT_MODEL = "kyutai/stt-1b-en_fr-trfs"  # what the app and the command line load unless told otherwise
_HUB_FILES = ["*.json", "*.safetensors"]


def resolve_checkpoint(source: str | os.PathLike, *, revision: str | None = None, cache_dir: str | None = None,
                       tqdm_class: Any = None) -> Path:
    """A local checkpoint folder, or the hub snapshot folder of a repo id (downloaded if needed)."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} has no config.json: point --model at a -trfs checkpoint folder")
        return path
    text = str(source)
    hint = f"give a folder holding config.json and model.safetensors, or a hub repo id such as {DEFAULT_MODEL}"
    if path.exists():
        raise CheckpointError(f"{text} is a file, not a model folder ({hint})")
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise CheckpointError(f"model folder {text} does not exist ({hint})")
    return _download(text, revision=revision, cache_dir=cache_dir, tqdm_class=tqdm_class)


def _download(repo_id: str, **kwargs) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub import errors as hub_errors

    hint = ("download it where the hub is reachable, or use a local checkpoint folder instead "
            "(one with config.json, tokenizer.json and model.safetensors)")
    try:
        folder = snapshot_download(repo_id, allow_patterns=_HUB_FILES, **{k: v for k, v in kwargs.items() if v is not None})
    except hub_errors.RepositoryNotFoundError:
        raise CheckpointError(f"there is no model {repo_id!r} on the Hugging Face hub (or it is private); {hint}") from None
    except hub_errors.RevisionNotFoundError:
        raise CheckpointError(f"model {repo_id!r} has no revision {kwargs.get('revision')!r}") from None
    except (hub_errors.LocalEntryNotFoundError, hub_errors.OfflineModeIsEnabled, OSError) as exc:
        reason = "offline mode is on (HF_HUB_OFFLINE)" if os.environ.get("HF_HUB_OFFLINE") else "the hub is unreachable"
        raise CheckpointError(f"cannot get {repo_id!r}: {reason} and it is not in the local cache ({type(exc).__name__}); {hint}") from None
    except hub_errors.HfHubHTTPError as exc:
        raise CheckpointError(f"downloading {repo_id!r} failed ({exc}); {hint}") from None
    return Path(folder)
