"""Writing a file the user named, without destroying what is there.

Every command that writes a path the user gave (`transcribe -o`, `export -o`, the window's Export)
goes through `write_output`. What it does depends on what the path is now:

- nothing yet, or a regular file: written atomically (a temporary file beside it takes the text, is
  synced, takes the old file's mode and owner, then replaces it), so the path holds the old text or
  all of the new, never a part, and an existing file keeps its permissions;
- a regular file with other hard links: rewritten in place, so every name sees the new text (a
  rename would detach this name from the others); so is a file whose folder we cannot write to;
  a file we may not write (made read-only by its owner) is left alone, as a shell's `>` would;
- a symbolic link: followed; its target is written by these same rules and the link stays a link;
- a file owned by someone else (where we are not root): rewritten in place, so it keeps its owner;
- a character device or a FIFO (/dev/null, a terminal, a pipe another program reads): written in
  place, never replaced by a file; stderr under any name is written through stderr;
- a folder, a block device (a disk) or a socket: refused, with the reason as an OSError.

`write_text_atomic` is the plain atomic write, for the files Surtitle owns (its settings, rescues).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import time
import uuid
from pathlib import Path

FIFO_READER_WAIT_S = 10.0  # how long a FIFO may wait for the program that is to read it
_POLL_S = 0.1
# What this OS offers: posix_fallocate on Linux only (not macOS), owners and O_NOCTTY on POSIX.
_CAN_RESERVE = sys.platform.startswith("linux")
_HAS_OWNERS = os.name == "posix"
_NOCTTY = os.O_NOCTTY if _HAS_OWNERS else 0  # opening a terminal must not make it our controlling one


class OutputRefused(OSError):
    """The path exists and is something a transcript must not be written over (a disk, a socket...)."""


def check_output(path: str | os.PathLike) -> None:
    """Raise OutputRefused if `path` is something `write_output` would refuse (ask before the work)."""
    try:
        info = os.stat(path)  # through any symbolic link
    except OSError:
        return  # absent, or unreachable: the write itself will say why
    _refuse_unwritable(Path(path), info)


def is_stdout(path: str | os.PathLike) -> bool:
    """Whether `path` is this process's standard output (/dev/stdout, /proc/self/fd/1, the very
    file or terminal stdout goes to): written through stdout, where the shell placed it."""
    try:
        return _standard_stream(os.stat(path)) == 1
    except OSError:
        return False


def _standard_stream(info: os.stat_result) -> int | None:
    """1 or 2 when the file `info` describes is what stdout or stderr already writes to, else None.
    Opened anew, a file the shell redirected a stream to would be written from its start, over
    what is there."""
    for fd in (1, 2):
        try:
            if os.path.samestat(info, os.fstat(fd)):
                return fd
        except OSError:  # that stream is closed
            continue
    return None


def write_output(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to the user's `path` by the rules above; raises OSError when it cannot."""
    data = text.encode("utf-8")
    path = Path(path)
    try:
        info = path.stat()  # through any symbolic link: what the write would land on
    except FileNotFoundError:  # nothing there yet, or a link to nothing yet: create it
        _replace_atomically(_final_target(path), data, None)
        return
    _refuse_unwritable(path, info)
    if _standard_stream(info) == 2:  # /dev/stderr and the like: where stderr already writes
        _write_all(2, data)
    elif stat.S_ISCHR(info.st_mode):
        _write_stream(os.open(path, os.O_WRONLY | _NOCTTY), data)
    elif stat.S_ISFIFO(info.st_mode):
        _write_stream(_open_fifo(path), data)
    elif not os.access(path, os.W_OK):  # a file its owner made read-only is not ours to replace
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    elif info.st_nlink > 1 or not _may_give_away(info):
        _rewrite_in_place(path, data)  # a new file could not have the others' content, or this owner
    else:
        target = _final_target(path)
        try:
            _replace_atomically(target, data, info)
        except PermissionError:
            if not os.access(target, os.W_OK):
                raise
            _rewrite_in_place(target, data)  # the file may be written, its folder may not


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text so that `path` holds either its old content or all of the new, never a part."""
    target = Path(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    _replace_atomically(target, text.encode("utf-8"), info)


def _final_target(path: Path) -> Path:
    """The path a write lands on: symbolic links followed (a dangling one names the file to create)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _refuse_unwritable(path: Path, info: os.stat_result) -> None:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise OutputRefused(errno.EISDIR, "it is a folder", str(path))
    if stat.S_ISBLK(mode):
        raise OutputRefused(errno.EINVAL, "it is a disk (a block device), which a transcript would overwrite",
                            str(path))
    if stat.S_ISSOCK(mode):
        raise OutputRefused(errno.EINVAL, "it is a socket, not a file", str(path))


def _may_give_away(info: os.stat_result) -> bool:
    """Whether a new file can be given this one's owner and group: ours already, or we are root."""
    return not _HAS_OWNERS or os.geteuid() == 0 or (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())


def _replace_atomically(target: Path, data: bytes, old: os.stat_result | None) -> None:
    # The temporary file sits in the same folder: os.replace is only atomic within one file system.
    # A short name of its own: the target's name may already be as long as the file system allows.
    # Mode 0o666 lets the umask apply to a new file, as for a plain open().
    temp = target.with_name(f".surtitle-{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            if old is not None:
                _take_ownership_of(f.fileno(), old)
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _take_ownership_of(fd: int, old: os.stat_result) -> None:
    """Give the new file the old one's owner and exactly its mode (`_may_give_away` said we may)."""
    if not _HAS_OWNERS:
        return  # Windows: a new file takes its folder's permissions
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        os.fchown(fd, old.st_uid, old.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode))  # after chown, which clears set-id bits


def _rewrite_in_place(target: Path, data: bytes) -> None:
    """Overwrite the file's own inode: its links, mode and owner stay as they are.

    Where the OS can (Linux), the room the longer text needs is reserved first, so a full disk
    fails before a byte changes; then the text goes over the old from the start and the file is cut
    to its length. A failure part-way (a copy-on-write file system may still run out of room) leaves
    the file part new, part old; the caller then saves the whole text elsewhere.
    """
    fd = os.open(target, os.O_WRONLY | _NOCTTY)
    try:
        old_size = os.fstat(fd).st_size
        if len(data) > old_size and _CAN_RESERVE:
            try:
                os.posix_fallocate(fd, old_size, len(data) - old_size)
            except OSError as exc:
                os.ftruncate(fd, old_size)  # give back what a failed reservation took
                if exc.errno != errno.EOPNOTSUPP:  # a file system that cannot reserve: just write
                    raise
        view = memoryview(data)
        written = 0
        while written < len(data):
            written += os.pwrite(fd, view[written:], written)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_fifo(path: Path) -> int:
    """Open a FIFO for writing once a program reads it; a FIFO nobody opens is refused, not waited on forever."""
    deadline = time.monotonic() + FIFO_READER_WAIT_S
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() >= deadline:
                raise OutputRefused(errno.ENXIO, f"it is a FIFO and no program read it within "
                                                 f"{FIFO_READER_WAIT_S:g} s", str(path)) from None
            time.sleep(_POLL_S)
            continue
        os.set_blocking(fd, True)  # the reader sets the pace from here on
        return fd


def _write_stream(fd: int, data: bytes) -> None:
    """Write all of `data` to a device or FIFO, closing it whatever happens."""
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
