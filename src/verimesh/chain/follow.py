"""Follow a contract's events block by block: what a node does to learn about new jobs.

A cursor remembers the next block to read, so each ``poll`` returns every event exactly
once, in chain order, however often or rarely it is called. Nodes persist ``next_block`` in
their journal to resume after a restart without missing or repeating an event.
"""

from __future__ import annotations

from collections.abc import Iterable

from verimesh.chain.abi import Event
from verimesh.chain.contract import ContractClient


class EventCursor:
    """New events of ``client`` (all, or only ``names``) since the last poll."""

    def __init__(
        self,
        client: ContractClient,
        from_block: int = 0,
        names: Iterable[str] | None = None,
        max_range: int = 5_000,
    ) -> None:
        self.client = client
        self.next_block = from_block
        self.names = set(names) if names is not None else None
        self.max_range = max_range  # public RPC nodes cap eth_getLogs ranges
        for name in self.names or ():
            client.abi.event(name)  # unknown event names fail here, not silently later

    def poll(self) -> list[Event]:
        head = self.client.backend.block_number()
        events: list[Event] = []
        while self.next_block <= head:
            last = min(head, self.next_block + self.max_range - 1)
            batch = self.client.get_all_events(self.next_block, last)
            events.extend(e for e in batch if self.names is None or e.name in self.names)
            self.next_block = last + 1
        return events
