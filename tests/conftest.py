"""Shared pytest setup: an offline, headless environment and session-cached oracle checkpoints.

The environment variables are set at import, before any test module imports huggingface_hub (which
reads HF_HUB_OFFLINE once, at import) or Qt. transformers is imported lazily by tests/oracle.py, so
test modules that never ask for a checkpoint do not pay for it.
"""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the network; the hub is a fake cache
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# never read or write the user's real hub cache: a repo id resolves only in caches the tests build
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="surtitle-hf-home-")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # widgets tests without a display
# tiny models: one torch thread, also where app code calls core.runtime.configure_threads() and in
# the `surtitle` subprocesses of the end-to-end tests (see the set_num_threads note below)
os.environ["SURTITLE_THREADS"] = "1"
# journal and session audio: never the user's own (tests that need one set their own folder)
os.environ["SURTITLE_DATA_DIR"] = tempfile.mkdtemp(prefix="surtitle-data-")

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models are all small ops: on a 2-core VM, torch's thread pool costs far more than it gives
# (seen here: 6 s instead of 0.08 s for the same stream), so tests run torch single-threaded.
torch.set_num_threads(1)

# A made-up repo id: the fake cache holds the tiny "base" checkpoint, not a real model.
HUB_REPO_ID = "surtitle-tests/stt-tiny-trfs"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Factory: tiny_checkpoint(variant="base", *, sharded=False, legacy_config=False, seed=0) -> Path.

    Each combination is built once per session (a fraction of a second each) in its own folder.
    The folders are shared between tests: read them, do not modify them.
    """
    built = {}

    def get(variant="base", *, sharded=False, legacy_config=False, seed=0):
        key = (variant, sharded, legacy_config, seed)
        if key not in built:
            from tests.oracle import build_checkpoint

            name = f"ckpt-{variant}-s{seed}" + ("-sharded" if sharded else "") + ("-legacy" if legacy_config else "")
            built[key] = build_checkpoint(
                tmp_path_factory.mktemp(name), variant, seed=seed, sharded=sharded, legacy_config=legacy_config
            )
        return built[key]

    return get


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_checkpoint):
    """The "base" tiny checkpoint folder (hub -trfs layout)."""
    return tiny_checkpoint("base")


@pytest.fixture(scope="session")
def tiny_oracle(tiny_checkpoint):
    """Factory: tiny_oracle(variant="base") -> (transformers model, processor), loaded once per session.

    The model is the one oracle_model() returns (float32, whole clip encoded at once). Shared: do
    not change its weights or generation config.
    """
    loaded = {}

    def get(variant="base"):
        if variant not in loaded:
            from tests.oracle import oracle_model, oracle_processor

            path = tiny_checkpoint(variant)
            loaded[variant] = (oracle_model(path), oracle_processor(path))
        return loaded[variant]

    return get


@pytest.fixture(scope="session")
def hub_cache(tiny_ckpt, tmp_path_factory):
    """(cache_dir, repo_id): the base checkpoint installed in a fake huggingface_hub cache.

    `snapshot_download(repo_id, cache_dir=cache_dir)` resolves it offline.
    """
    from tests.oracle import install_in_hub_cache

    cache_dir = tmp_path_factory.mktemp("hf-cache")
    install_in_hub_cache(tiny_ckpt, cache_dir, HUB_REPO_ID)
    return cache_dir, HUB_REPO_ID
