"""Two live streams through one model in one batch (app/engine_lanes.py): each gets the words it
gets alone, however their pushes interleave, and a stream whose partner stalls still goes on."""

import numpy as np
import pytest

from app.engine_lanes import HOLD_S, EngineLanes
from core import StreamingTranscriber
from tests.signals import noise


@pytest.fixture(scope="module")
def engine(tiny_ckpt):
    return StreamingTranscriber.from_pretrained(tiny_ckpt, quantize="none")  # float32: the pool is exact there


def alone(engine, clip):
    engine.reset()
    return engine.push(clip) + engine.flush()


def test_two_streams_in_one_batch_get_their_own_words(engine):
    ours, theirs = noise(3.0, seed=31), noise(3.0, seed=32)
    lanes = EngineLanes(engine, 2)
    mic, system = lanes.lanes
    words = {id(mic): [], id(system): []}
    rng = np.random.default_rng(5)
    at = {id(mic): 0, id(system): 0}
    for lane, clip in [(mic, ours), (system, theirs)] * 40:  # pushes of odd sizes, in turn, as a pipeline does
        n = int(rng.integers(500, 4000))
        words[id(lane)] += lane.push(clip[at[id(lane)]:at[id(lane)] + n])
        at[id(lane)] += n
    for lane, clip in [(mic, ours), (system, theirs)]:
        words[id(lane)] += lane.push(clip[at[id(lane)]:]) + lane.flush()
    assert words[id(mic)] == alone(engine, ours) and len(words[id(mic)]) > 3
    assert words[id(system)] == alone(engine, theirs) and len(words[id(system)]) > 3


def test_a_stream_whose_partner_stalls_is_stepped_alone(engine):
    clip = noise(2.0, seed=33)
    lanes = EngineLanes(engine, 2)
    mic, system = lanes.lanes
    system.reset()  # open, but nothing comes: the sink is suspended, say
    half = round(HOLD_S * 24_000)
    got = mic.push(clip[:half * 3])
    assert lanes.pool.buffered_seconds(mic.slot) < HOLD_S  # stepped without its partner
    got += mic.push(clip[half * 3:]) + mic.flush()
    assert got == alone(engine, clip)


def test_a_new_stream_on_a_lane_starts_clean(engine):
    first, second = noise(1.5, seed=34), noise(1.5, seed=35)
    lanes = EngineLanes(engine, 2)
    lane = lanes.lanes[0]
    lane.push(first)
    lane.flush()
    lane.reset()  # as a recorder does after a skip or a pause
    assert lane.push(second) + lane.flush() == alone(engine, second)
