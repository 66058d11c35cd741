"""Process-wide settings made when the engine is imported (core/runtime.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import os, torch, core.runtime
x = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
huge = [l for l in open("/proc/self/smaps_rollup") if l.startswith("AnonHugePages:")]
print(os.environ.get("THP_MEM_ALLOC_ENABLE"), int(huge[0].split()[1]) if huge else -1)
"""


def child(env_value: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    value, huge_kb = out.stdout.split()
    return value, int(huge_kb)


def thp_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    return text[text.index("[") + 1:text.index("]")]


def test_large_tensors_go_in_huge_pages_unless_the_user_said_otherwise():
    if thp_mode() not in ("madvise", "always") or not Path("/proc/self/smaps_rollup").exists():
        pytest.skip(f"this kernel offers no transparent huge pages to ask for (mode {thp_mode()})")
    value, huge_kb = child(None)
    assert value == "1" and huge_kb >= 32 * 1024  # most of the 64 MB tensor sits in 2 MB pages
    value, huge_kb = child("0")
    assert value == "0"  # kept
    if thp_mode() == "madvise":  # only torch's request gives huge pages here: none without it
        assert huge_kb < 32 * 1024
