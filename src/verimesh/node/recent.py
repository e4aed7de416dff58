"""A few recently built values kept, the oldest dropped first.

Nodes and validators serve trace leaves of jobs whose dispute is over (to a committee member
reading late, to a watcher). Each is built from a traced re-run, which holds every op's
input tensors: keeping every one until restart grows without bound, and building it again
for every leaf asked costs a whole job per leaf. ``Recent`` keeps the last few.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``size`` values by key, in the order they were last used."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"keep at least one value, not {size}")
        self.size = size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()  # HTTP handler threads read while the loop writes
        self._building: dict[K, threading.Lock] = {}  # one build per key at a time

    def get(self, key: K, build: Callable[[], V]) -> V:
        """The value kept for ``key``, or ``build()``'s, kept. A build may take as long as a
        job, and every member of a committee asks for leaves at once: threads asking for
        the same key wait for one build; other keys are served meanwhile."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._values:  # built while we waited
                    self._values.move_to_end(key)
                    return self._values[key]
            try:
                value = build()
                self.put(key, value)  # kept before the key's lock goes: a new asker finds it
            finally:
                with self._lock:
                    self._building.pop(key, None)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` as the most recent, dropping the oldest beyond ``size``."""
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    def __iter__(self) -> Iterator[K]:
        """The keys, oldest first (a snapshot)."""
        with self._lock:
            return iter(list(self._values))

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)
