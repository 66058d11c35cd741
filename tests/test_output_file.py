"""The output writer: what is at the user's path decides how it is written, and nothing is clobbered.

Device nodes are made with mknod, which needs root (CI runs as root); elsewhere those cases skip
and say so.
"""

import errno
import os
import socket
import stat
import threading

import pytest

from app import output_file
from app.output_file import OutputRefused, check_output, is_stdout, write_output, write_text_atomic
from tests.disks import device_node


def test_new_and_existing_files_are_written_whole_with_no_temporary_left(tmp_path):
    path = tmp_path / "out.srt"
    write_output(path, "first\n")
    write_output(path, "ça marche\n")
    assert path.read_text(encoding="utf-8") == "ça marche\n"
    assert os.listdir(tmp_path) == ["out.srt"]


def test_a_new_file_gets_the_umasks_mode(tmp_path):
    old = os.umask(0o027)
    try:
        write_output(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604])
def test_overwriting_keeps_the_files_permissions(tmp_path, mode):
    path = tmp_path / "private.txt"
    path.write_text("old")
    path.chmod(mode)
    write_output(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_overwriting_keeps_the_files_owner(tmp_path):
    if os.getuid() != 0:
        pytest.skip("giving a file to another owner needs root")
    path = tmp_path / "theirs.txt"
    path.write_text("old")
    os.chown(path, 65534, 65534)
    write_output(path, "new")
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)


def test_a_file_made_read_only_is_left_alone(tmp_path, monkeypatch):
    path = tmp_path / "keep.txt"
    path.write_text("the owner's")
    path.chmod(0o444)
    if os.getuid() == 0:  # root may write anything: answer as the kernel answers its owner
        monkeypatch.setattr(output_file.os, "access", lambda p, mode: not mode & os.W_OK or
                            bool(os.stat(p).st_mode & stat.S_IWUSR))
    with pytest.raises(PermissionError):
        write_output(path, "new")
    assert path.read_text() == "the owner's" and os.listdir(tmp_path) == ["keep.txt"]


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_output(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "later.txt")
    write_output(link, "new")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "new"


def test_every_hard_link_sees_the_new_text(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("old old old")
    os.link(first, second)
    write_output(first, "new")
    assert second.read_text() == "new" and first.read_text() == "new"
    assert first.stat().st_ino == second.stat().st_ino


def test_a_file_in_a_folder_that_refuses_new_files_is_rewritten_in_place(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("a longer old text")
    real_open = os.open

    def no_new_files(file, flags, *args):  # the folder is read-only, the file itself is not
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", file)
        return real_open(file, flags, *args)

    monkeypatch.setattr(output_file.os, "open", no_new_files)
    write_output(path, "new")
    assert path.read_text() == "new"


def test_a_character_device_is_written_in_place_not_replaced(tmp_path):
    null = device_node(tmp_path / "null", stat.S_IFCHR, 1, 3)
    write_output(null, "words\n")
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_a_full_device_fails_and_stays_a_device(tmp_path):
    full = device_node(tmp_path / "full", stat.S_IFCHR, 1, 7)  # what /dev/full is
    with pytest.raises(OSError) as raised:
        write_output(full, "words\n")
    assert raised.value.errno == errno.ENOSPC
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_a_symlink_to_a_device_is_written_through(tmp_path):
    link = tmp_path / "to-null"
    link.symlink_to("/dev/null")
    write_output(link, "words\n")
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_to_its_reader_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_output(fifo, "live words\n")
    reader.join(timeout=10)
    assert received == ["live words\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_fifo_nobody_reads_is_refused_not_waited_on_forever(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    monkeypatch.setattr(output_file, "FIFO_READER_WAIT_S", 0.2)
    with pytest.raises(OutputRefused, match="no program read it"):
        write_output(fifo, "words")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_folders_disks_and_sockets_are_refused_before_and_at_writing(tmp_path):
    sock_path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        refused = {tmp_path: "folder", sock_path: "socket"}
        try:
            refused[device_node(tmp_path / "disk", stat.S_IFBLK, 7, 0)] = "disk"
        except pytest.skip.Exception:
            pass  # the other kinds are still checked
        for path, kind in refused.items():
            with pytest.raises(OutputRefused, match=kind):
                check_output(path)
            with pytest.raises(OutputRefused, match=kind):
                write_output(path, "words")
    finally:
        server.close()
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)


def test_the_old_file_stays_when_replacing_fails(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old\n")

    def fail(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output_file.os, "replace", fail)
    with pytest.raises(OSError):
        write_output(path, "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_missing_folder_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        write_output(tmp_path / "missing" / "out.txt", "text")


def test_stdout_is_recognised_by_what_it_is_not_by_its_name(tmp_path, capfd):
    # capfd points fd 1 at a file of pytest's: /dev/stdout and /proc/self/fd/1 name it, other files do not
    assert is_stdout("/dev/stdout") and is_stdout("/proc/self/fd/1")
    assert not is_stdout(tmp_path) and not is_stdout(tmp_path / "missing")


def test_write_text_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{}")
    path.chmod(0o600)
    write_text_atomic(path, '{"a": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == '{"a": 1}'
