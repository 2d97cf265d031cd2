"""The follower lease: one server process scores at a time, another takes over when it stops."""

from __future__ import annotations

from rhip.bootstrap.container import Platform
from rhip.bootstrap.quality import build_quality
from rhip.quality.follower import QualityFollower
from rhip.quality.repository import FollowerLease


def test_one_holder_at_a_time(platform: Platform) -> None:
    first, second = FollowerLease(platform.db), FollowerLease(platform.db)
    assert first.acquire()
    assert first.acquire()  # held: asking again keeps it
    assert not second.acquire()
    first.release()
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_a_stopped_follower_gives_the_lease_up(platform: Platform) -> None:
    follower = QualityFollower(build_quality(platform), interval_s=0.01)
    follower.start()
    follower.wake()
    follower.stop()
    other = FollowerLease(platform.db)
    assert other.acquire()
    other.release()
