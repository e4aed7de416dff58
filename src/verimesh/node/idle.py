"""Is the device idle by its owner's policy? (the rule volunteer-computing clients use)

BOINC has run science on people's laptops for twenty years with one rule owners trust:
compute only while the owner is not using the machine. We take it as is:

- the CPU load of OTHER processes (everything except this node and its worker) must stay
  under ``max_other_cpu_percent`` of all cores for ``grace_seconds`` before work starts or
  resumes, and one measurement above the limit stops it at once;
- never on battery unless the owner allows it (``psutil.sensors_battery()`` is ``None`` on
  a desktop: mains power);
- only inside ``allowed_hours`` if the owner set some.

The node's own CPU time is subtracted because a node that counted its own worker as "the
owner is busy" would pause itself every time it worked. Own = this process and all its
descendants, including children already reaped (their time moves to ``children_user``).

Clock, sleep, sampler, battery probe and local time are injectable so tests can drive the
policy through exact scenarios; ``PsutilSampler`` is the real one.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
from pydantic import BaseModel

from verimesh.node.config import IdlePolicy, parse_hours


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU counters at one instant (seconds since boot / process start)."""

    at: float  # clock seconds when sampled
    busy: float  # CPU-seconds all cores spent running anything
    own: float  # CPU-seconds spent by the node process and its descendants
    cores: int


class PsutilSampler:
    """Real counters: system-wide busy time from /proc/stat, own time from the process tree."""

    def __init__(self, pid: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.process = psutil.Process(pid)
        self.clock = clock
        self.cores = psutil.cpu_count() or 1

    def __call__(self) -> CpuSample:
        at = self.clock()
        t = psutil.cpu_times()
        # Idle and iowait are not load; steal is time the hypervisor gave to other VMs.
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)
        busy -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)  # already in user/nice
        return CpuSample(at=at, busy=busy, own=self._own(), cores=self.cores)

    def _own(self) -> float:
        with self.process.oneshot():
            c = self.process.cpu_times()
            own = c.user + c.system + c.children_user + c.children_system
            children = self.process.children(recursive=True)
        for child in children:
            try:
                ct = child.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # exited since the listing: its time shows up in children_* once reaped
            own += ct.user + ct.system
        return own


def on_battery() -> bool:
    """True only when a battery exists and the charger is unplugged (desktops: False)."""
    battery = psutil.sensors_battery()
    return battery is not None and battery.power_plugged is False


class IdleState(BaseModel):
    """The verdict, with the reason an owner reads in ``verimesh node status``."""

    idle: bool
    reason: str
    other_cpu_percent: float | None = None
    on_battery: bool = False
    quiet_seconds: float = 0.0
    checked_at: float  # unix time of the measurement


def in_windows(windows: list[str], minute_of_day: int) -> bool:
    for window in windows:
        start, end = parse_hours(window)
        inside = (
            start <= minute_of_day < end
            if start < end
            else minute_of_day >= start or minute_of_day < end
        )
        if inside:
            return True
    return False


class IdleMonitor:
    """``state()`` measures (at most every ``policy.check_seconds``) and applies the policy.

    Thread-safe: the daemon loop asks whether to take a job while the worker's supervisor
    asks whether to pause it.
    """

    def __init__(
        self,
        policy: IdlePolicy,
        sampler: Callable[[], CpuSample] | None = None,
        battery: Callable[[], bool] = on_battery,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        local_now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.sampler = sampler or PsutilSampler(clock=clock)
        self.battery = battery
        self.sleep = sleep
        self.local_now = local_now
        self._lock = threading.Lock()
        self._last: CpuSample | None = None
        self._quiet_since: float | None = None
        self._state: IdleState | None = None

    def state(self) -> IdleState:
        with self._lock:
            now = self.clock()
            if (
                self._state is not None
                and self._last is not None
                and now - self._last.at < self.policy.check_seconds
            ):
                return self._state
            if self._last is None:  # the first verdict needs a load measured over an interval
                self._last = self.sampler()
                self.sleep(self.policy.check_seconds)
            sample = self.sampler()
            self._state = self._judge(self._last, sample)
            self._last = sample
            return self._state

    def _judge(self, before: CpuSample, after: CpuSample) -> IdleState:
        p = self.policy
        span = max(after.at - before.at, 1e-9) * after.cores
        other = 100.0 * ((after.busy - before.busy) - (after.own - before.own)) / span
        other = min(100.0, max(0.0, other))
        if other > p.max_other_cpu_percent:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = before.at  # quiet over the whole interval just measured
        quiet = 0.0 if self._quiet_since is None else after.at - self._quiet_since
        battery = self.battery()
        common: dict[str, Any] = {
            "other_cpu_percent": round(other, 1),
            "on_battery": battery,
            "quiet_seconds": round(quiet, 1),
            "checked_at": time.time(),
        }

        if battery and not p.allow_on_battery:
            return IdleState(idle=False, reason="on battery (allow_on_battery = false)", **common)
        if p.allowed_hours:
            local = self.local_now()
            if not in_windows(p.allowed_hours, local.hour * 60 + local.minute):
                hours = ", ".join(p.allowed_hours)
                return IdleState(
                    idle=False,
                    reason=f"outside allowed hours {hours} (now {local:%H:%M})",
                    **common,
                )
        if self._quiet_since is None:
            reason = f"other processes use {other:.0f}% CPU (limit {p.max_other_cpu_percent:g}%)"
            return IdleState(idle=False, reason=reason, **common)
        if quiet < p.grace_seconds:
            reason = f"waiting for quiet: {quiet:.0f} s of the {p.grace_seconds:g} s grace period (other CPU {other:.0f}%)"
            return IdleState(idle=False, reason=reason, **common)
        return IdleState(
            idle=True, reason=f"idle for {quiet:.0f} s (other CPU {other:.0f}%)", **common
        )

    def wait_until_idle(
        self, stop: threading.Event, on_state: Callable[[IdleState], None] | None = None
    ) -> IdleState | None:
        """Block until the policy allows work (returns the state) or ``stop`` is set (None)."""
        while not stop.is_set():
            state = self.state()
            if on_state is not None:
                on_state(state)
            if state.idle:
                return state
            stop.wait(self.policy.check_seconds)
        return None
