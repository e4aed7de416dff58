"""The idle policy: scripted machines (exact scenarios) and the real psutil counters."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest

from verimesh.node.config import IdlePolicy
from verimesh.node.idle import CpuSample, IdleMonitor, PsutilSampler, in_windows


class ScriptedMachine:
    """A 2-core machine whose other/own load (in cores) the test sets; time is fake."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.busy = 0.0
        self.own = 0.0
        self.other_cores = 0.0
        self.own_cores = 0.0
        self.battery = False

    def advance(self, seconds: float) -> None:
        self.busy += (self.other_cores + self.own_cores) * seconds
        self.own += self.own_cores * seconds
        self.now += seconds

    def sample(self) -> CpuSample:
        return CpuSample(at=self.now, busy=self.busy, own=self.own, cores=2)

    def monitor(self, policy: IdlePolicy, local: dt.datetime | None = None) -> IdleMonitor:
        return IdleMonitor(
            policy,
            sampler=self.sample,
            battery=lambda: self.battery,
            clock=lambda: self.now,
            sleep=self.advance,
            local_now=lambda: local or dt.datetime(2026, 12, 1, 12, 0),
        )


POLICY = IdlePolicy(max_other_cpu_percent=25, grace_seconds=10, check_seconds=1)


def test_idle_after_grace_and_paused_at_once_by_other_load() -> None:
    m = ScriptedMachine()
    mon = m.monitor(POLICY)
    first = mon.state()
    assert not first.idle and "grace" in first.reason
    m.advance(8)
    assert not mon.state().idle
    m.advance(2)
    state = mon.state()
    assert state.idle and state.reason.startswith("idle for 11 s")
    m.other_cores = 1.2  # the owner starts something: 60% of 2 cores
    m.advance(1)
    busy = mon.state()
    assert not busy.idle
    assert busy.reason == "other processes use 60% CPU (limit 25%)"
    assert busy.other_cpu_percent == pytest.approx(60)
    m.other_cores = 0.0  # quiet again: the grace period starts over
    m.advance(1)
    assert not mon.state().idle
    m.advance(10)
    assert mon.state().idle


def test_own_load_is_not_the_owner_using_the_machine() -> None:
    m = ScriptedMachine()
    m.own_cores = 2.0  # the node's worker uses both cores flat out
    m.other_cores = 0.2  # 10%: under the limit
    mon = m.monitor(POLICY)
    mon.state()  # measuring starts with the first question
    m.advance(20)
    state = mon.state()
    assert state.idle
    assert state.other_cpu_percent == pytest.approx(10)


def test_state_is_cached_within_the_check_interval() -> None:
    m = ScriptedMachine()
    mon = m.monitor(POLICY)
    first = mon.state()
    m.other_cores = 2.0
    m.advance(0.5)
    assert mon.state() is first  # not re-measured before check_seconds
    m.advance(0.6)
    assert not mon.state().idle and mon.state().other_cpu_percent == pytest.approx(100)


def test_battery_blocks_work_unless_allowed() -> None:
    m = ScriptedMachine()
    m.battery = True
    mon = m.monitor(POLICY)
    mon.state()
    m.advance(20)
    state = mon.state()
    assert (
        not state.idle
        and state.reason == "on battery (allow_on_battery = false)"
        and state.on_battery
    )
    allowed = m.monitor(POLICY.model_copy(update={"allow_on_battery": True}))
    allowed.state()
    m.advance(20)
    assert allowed.state().idle


def test_allowed_hours_wrap_midnight() -> None:
    policy = POLICY.model_copy(update={"allowed_hours": ["22:00-07:00"], "grace_seconds": 0})
    m = ScriptedMachine()
    noon = m.monitor(policy, local=dt.datetime(2026, 12, 1, 12, 30))
    state = noon.state()
    assert not state.idle and state.reason == "outside allowed hours 22:00-07:00 (now 12:30)"
    assert m.monitor(policy, local=dt.datetime(2026, 12, 1, 23, 15)).state().idle
    assert m.monitor(policy, local=dt.datetime(2026, 12, 1, 6, 59)).state().idle
    assert in_windows(["09:00-17:00", "20:00-21:00"], 20 * 60 + 30)
    assert not in_windows(["09:00-17:00"], 17 * 60)


def test_wait_until_idle_reports_states_and_honours_stop() -> None:
    m = ScriptedMachine()
    mon = m.monitor(POLICY)
    seen: list[str] = []

    class FakeStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            m.advance(timeout or 0)
            return self.is_set()

    state = mon.wait_until_idle(FakeStop(), on_state=lambda s: seen.append(s.reason))
    assert state is not None and state.idle and len(seen) >= 10
    stop = FakeStop()
    stop.set()
    assert mon.wait_until_idle(stop) is None


def _burn_child(seconds: float) -> subprocess.Popen[bytes]:
    # Burns a fixed amount of CPU time (not wall time) and exits, whatever the machine's load.
    code = f"import time\nwhile time.process_time() < {seconds}: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def test_real_counters_attribute_a_child_to_its_parent_not_to_others() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = PsutilSampler()  # this test process and its descendants
        theirs = PsutilSampler(sleeper.pid)  # a process the burner does not descend from
        mine0, theirs0 = mine(), theirs()
        burner = _burn_child(0.3)
        burner.wait(timeout=60)
        mine1, theirs1 = mine(), theirs()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert mine1.own - mine0.own >= 0.28  # the reaped child's time counts as ours
    assert theirs1.own - theirs0.own < 0.1  # ... and not as the sleeper's
    assert theirs1.busy - theirs0.busy >= 0.28  # the machine saw it either way
    assert mine1.cores >= 1 and mine1.at > mine0.at


def test_real_monitor_gives_a_verdict_with_a_measured_load() -> None:
    mon = IdleMonitor(IdlePolicy(max_other_cpu_percent=100, grace_seconds=0, check_seconds=0.2))
    state = mon.state()
    assert state.other_cpu_percent is not None and 0 <= state.other_cpu_percent <= 100
    assert state.idle == (not state.on_battery)
