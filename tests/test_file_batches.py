"""How `surtitle transcribe` groups several files to run them together (app/file_batches.py)."""

import pytest

from app.file_batches import plan_groups


def test_files_of_about_one_length_go_together_longest_first():
    #           0     1    2     3    4
    durations = [60.0, 5.0, 61.0, 45.0, 39.0]
    assert plan_groups(durations, max_batch=8) == [[2, 0, 3], [4], [1]]  # 39 < 2/3 of 61


def test_groups_never_exceed_the_batch():
    assert plan_groups([10.0] * 5, max_batch=2) == [[0, 1], [2, 3], [4]]


def test_batch_of_one_keeps_the_order_given():
    assert plan_groups([1.0, 9.0, 5.0], max_batch=1) == [[0], [1], [2]]


def test_no_files_no_groups_and_a_bad_batch_is_refused():
    assert plan_groups([], max_batch=4) == []
    with pytest.raises(ValueError, match="at least 1"):
        plan_groups([1.0], max_batch=0)
