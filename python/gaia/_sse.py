"""Server-sent events (the ``text/event-stream`` format) read from a stream of text lines."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional


@dataclass
class Event:
    """One server-sent event: its type (``event``, ``rows``, ``job``, ...), data and id."""

    kind: str
    data: str
    id: Optional[str] = None


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """The events in ``lines`` (without line ends), as the HTML standard reads them: fields
    until a blank line; ``retry`` is skipped. A comment line (``: ping``, the server's
    keep-alive) gives an event of kind ``comment``, so a reader can look at its clock."""
    kind, data, event_id = "", [], None  # type: str, list[str], Optional[str]
    for line in lines:
        if line == "":
            if data:
                yield Event(kind or "message", "\n".join(data), event_id)
            kind, data, event_id = "", [], None
            continue
        if line.startswith(":"):
            yield Event("comment", line[1:].strip())
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    if data:
        yield Event(kind or "message", "\n".join(data), event_id)
