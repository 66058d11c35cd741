"""Real disks that are full or read-only, for the tests of what survives them: small tmpfs mounts.

Mounting needs root (CI runs as root); elsewhere the test that asks skips and says why.
"""

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(path: Path, size: str = "1m"):
    """A fresh file system of `size` mounted at `path` (created), unmounted afterwards."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "surtitle-test", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a small file system needs root: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def make_read_only(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)


def fill(disk: Path) -> None:
    """Write zeros into `disk` until no byte more fits."""
    filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # ENOSPC: full
        while os.write(filler, b"\0" * 4096):
            pass
    os.close(filler)


def device_node(path: Path, kind: int, major: int, minor: int) -> Path:
    """A device file (stat.S_IFCHR or S_IFBLK) at `path`, such as /dev/full is (c 1 7)."""
    try:
        os.mknod(path, 0o666 | kind, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path
