"""Each channel's electrode contact as the board last reported it, and its changes."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence


class Contacts:
    """Per channel: is its electrode in contact. Reads go through `read(channel)` (the
    board's), one channel at a time, so the engine can act on a change before the next
    channel is read."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.ok = [True] * len(self.labels)

    def __len__(self) -> int:
        return len(self.ok)

    def poll(self, read: Callable[[int], bool]) -> tuple[bool, ...]:
        """Read every channel now; returns the contacts."""
        for i in range(len(self.ok)):
            self.ok[i] = bool(read(i))
        return tuple(self.ok)

    def changes(self, read: Callable[[int], bool]) -> Iterator[tuple[int, bool]]:
        """Read the channels in turn, yielding `(channel, contact)` for each that changed
        (lazily: the next channel is read after the caller has handled this one)."""
        for i in range(len(self.ok)):
            contact = bool(read(i))
            if contact != self.ok[i]:
                self.ok[i] = contact
                yield i, contact

    @property
    def all_ok(self) -> bool:
        """Every electrode is in contact."""
        return all(self.ok)

    def missing(self) -> list[str]:
        """The labels of the channels without contact."""
        return [label for label, ok in zip(self.labels, self.ok) if not ok]
