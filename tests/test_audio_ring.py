"""AudioRing: absolute positions, wrap-around, overflow accounting, and readers woken without polling."""

import threading

import numpy as np
import pytest

from app.audio.ring import AudioRing


def ramp(start, n):
    return np.arange(start, start + n, dtype=np.float32)


def test_reads_return_absolute_positions_across_wraparound():
    ring = AudioRing(10)
    got = []
    for k in range(7):  # 7 writes of 4 into a ring of 10: wraps several times, reader keeps up
        ring.write(ramp(4 * k, 4))
        start, samples = ring.read(4, timeout=0)
        got.append((start, samples))
    assert [s for s, _ in got] == [0, 4, 8, 12, 16, 20, 24]
    np.testing.assert_array_equal(np.concatenate([x for _, x in got]), ramp(0, 28))
    assert ring.written == 28 and ring.dropped == 0 and ring.available == 0


def test_partial_reads_and_max_samples():
    ring = AudioRing(16)
    ring.write(ramp(0, 10))
    start, a = ring.read(3, timeout=0)
    start2, b = ring.read(100, timeout=0)
    assert (start, start2) == (0, 3)
    np.testing.assert_array_equal(np.concatenate([a, b]), ramp(0, 10))


def test_overflow_overwrites_oldest_and_counts_dropped():
    ring = AudioRing(8)
    ring.write(ramp(0, 5))
    ring.write(ramp(5, 6))  # 11 written into 8: the 3 oldest are gone
    assert ring.dropped == 3
    start, samples = ring.read(100, timeout=0)
    assert start == 3  # the jump from 0 tells the reader exactly what it lost
    np.testing.assert_array_equal(samples, ramp(3, 8))


def test_block_longer_than_the_ring_keeps_its_newest_samples():
    ring = AudioRing(4)
    ring.write(ramp(0, 2))
    ring.write(ramp(2, 9))
    start, samples = ring.read(100, timeout=0)
    assert (start, ring.dropped, ring.written) == (7, 7, 11)
    np.testing.assert_array_equal(samples, ramp(7, 4))


def test_write_copies_its_input():
    ring = AudioRing(8)
    block = ramp(0, 4)
    ring.write(block)
    block[:] = -1  # PortAudio reuses its buffer: the ring must not hold a view
    np.testing.assert_array_equal(ring.read(4, timeout=0)[1], ramp(0, 4))


def test_write_never_raises():
    ring = AudioRing(8)
    ring.write(None)  # a bug in the caller must not kill the audio thread
    ring.write(np.zeros((2, 2), np.float32))  # wrong shape
    assert ring.write_errors == 2


def test_read_times_out_empty():
    ring = AudioRing(8)
    start, samples = ring.read(4, timeout=0.01)
    assert start == 0 and samples.size == 0 and samples.dtype == np.float32


def test_a_waiting_reader_wakes_on_write():
    ring = AudioRing(64)
    waiting = threading.Event()
    result = []

    def reader():
        waiting.set()
        result.append(ring.read(32, timeout=10, min_samples=8))

    t = threading.Thread(target=reader)
    t.start()
    assert waiting.wait(5)
    ring.write(ramp(0, 4))  # fewer than min_samples: the reader keeps waiting
    ring.write(ramp(4, 6))
    t.join(5)
    assert not t.is_alive()
    start, samples = result[0]
    assert start == 0 and len(samples) == 10


@pytest.mark.parametrize("how", ["wake", "close"])
def test_wake_and_close_release_a_waiting_reader(how):
    ring = AudioRing(64)
    waiting = threading.Event()
    result = []

    def reader():
        waiting.set()
        result.append(ring.read(32, timeout=30))

    t = threading.Thread(target=reader)
    t.start()
    assert waiting.wait(5)
    getattr(ring, how)()
    t.join(5)
    assert not t.is_alive() and result[0][1].size == 0


def test_closed_ring_drains_then_returns_at_once():
    ring = AudioRing(16)
    ring.write(ramp(0, 5))
    ring.close()
    assert len(ring.read(100, timeout=30)[1]) == 5
    assert ring.read(100, timeout=30)[1].size == 0  # returns immediately, no 30 s wait


def test_skip_jumps_to_live():
    ring = AudioRing(16)
    ring.write(ramp(0, 10))
    ring.read(3, timeout=0)
    assert ring.skip() == (3, 7)
    ring.write(ramp(10, 2))
    assert ring.read(100, timeout=0)[0] == 10
