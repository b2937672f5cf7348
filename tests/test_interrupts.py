"""Signals inside a native loop: recorded, then raised where zoo can take them."""

from __future__ import annotations

import os
import signal

import pytest

from zoo.base.interrupts import Terminated, deferred


@pytest.mark.parametrize(
    ("sent", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_a_signal_is_raised_when_the_block_ends(sent, raised):
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    steps = []
    try:
        with pytest.raises(raised), deferred() as pending:
            for step in range(5):
                steps.append(step)
                if step == 1:
                    os.kill(os.getpid(), sent)
                if pending:
                    break
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert steps == [0, 1]
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored


def test_a_second_ctrl_c_is_raised_at_once():
    with pytest.raises(KeyboardInterrupt), deferred():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        pytest.fail("the second signal did not interrupt the block")


def test_without_a_signal_nothing_is_raised():
    with deferred() as pending:
        result = sum(range(10))
    assert result == 45 and not pending
