"""Lines held back for output, in input order: in memory up to a budget, then on disk.

Design notes
------------
A FIFO in two parts. ``_memory`` holds the oldest entries; the spill, a temporary file
(in $TMPDIR, deleted as it is created, so nothing is left behind whatever ends the
process), holds the newer lines as length-prefixed records, appended through the file's
own buffer. A line goes to memory only while the spill is empty and memory is within its
budget (or empty), so every entry in memory is older than every spilled line and order
holds. When memory runs dry, about a MiB of the oldest records is read back (``pread``,
leaving the append position alone) and each line ``revive``d into an entry: only the line
is stored, whatever else an entry carries is found again from it. Once every record is
read back the file is truncated, giving its disk space back.

Memory is counted as the lines' bytes plus a fixed estimate of each entry's objects.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections import deque
from collections.abc import Callable
from typing import IO, Any, Generic, TypeVar

E = TypeVar("E", bound=tuple[bytes, Any, Any])

_OVERHEAD = 200
"""Bytes an entry costs besides its line: the tuples, the bytes header, the deque slot."""
_CHUNK = 1 << 20
_RECORD = struct.Struct("<Q")


class Backlog(Generic[E]):
    """Entries ``(line, ...)`` in order; at most about ``budget`` bytes of them in memory."""

    __slots__ = ("spilled", "held", "_budget", "_revive", "_memory", "_file", "_read", "_unread")

    def __init__(self, budget: int, revive: Callable[[bytes], E]) -> None:
        """:param revive: rebuilds the entry of a line read back from the spill."""
        self.spilled = 0
        """Lines that went through the spill file."""
        self._budget = budget
        self._revive = revive
        self._memory: deque[E] = deque()
        self.held = 0
        """Bytes the entries in memory take (lines plus the estimate)."""
        self._file: IO[bytes] | None = None
        self._read = 0
        """Offset of the oldest record not yet read back."""
        self._unread = 0
        """Records in the spill file not yet read back."""

    def push(self, entry: E) -> None:
        """Add ``entry`` at the tail."""
        line = entry[0]
        if not self._unread and (
            not self._memory or self.held + len(line) + _OVERHEAD <= self._budget
        ):
            self._memory.append(entry)
            self.held += len(line) + _OVERHEAD
        else:
            self._spill(line)

    def __bool__(self) -> bool:
        return bool(self._memory) or bool(self._unread)

    def head(self) -> E | None:
        """The oldest entry (read back from the spill if need be); None when empty.

        :raises OSError: the spill file cannot be read.
        """
        if self._memory:
            return self._memory[0]
        if self._unread:
            assert self._file is not None
            self._refill(self._file)
            return self._memory[0] if self._memory else None
        return None

    def pop(self) -> None:
        """Drop the oldest entry (the one :meth:`head` returned)."""
        self.held -= len(self._memory.popleft()[0]) + _OVERHEAD

    def close(self) -> None:
        """Close (and so free) the spill file."""
        if self._file is not None:
            self._file.close()

    def _spill(self, line: bytes) -> None:
        """Append ``line`` to the spill file, creating the file on first use.

        :raises OSError: the file cannot be created or written ($TMPDIR full, say).
        """
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="webresolve-", buffering=_CHUNK)
        self._file.write(_RECORD.pack(len(line)))
        self._file.write(line)
        self.spilled += 1
        self._unread += 1

    def _refill(self, spill: IO[bytes]) -> None:
        """Move the oldest spilled lines into memory: at least one, at most a MiB or the
        budget."""
        spill.flush()
        end = spill.tell()
        want = max(_RECORD.size, min(_CHUNK, end - self._read, self._budget))
        data = _pread(spill, want, self._read)
        at = 0
        while at + _RECORD.size <= len(data):
            (size,) = _RECORD.unpack_from(data, at)
            start = at + _RECORD.size
            if at and (start + size > len(data) or self.held + size + _OVERHEAD > self._budget):
                break
            if start + size > len(data):
                data = data[:start] + _pread(spill, size, self._read + start)
            line = data[start : start + size]
            self._memory.append(self._revive(line))
            self.held += size + _OVERHEAD
            at = start + size
            self._unread -= 1
        self._read += at
        if not self._unread:
            spill.seek(0)
            spill.truncate()
            self._read = 0


def _pread(spill: IO[bytes], size: int, offset: int) -> bytes:
    """Exactly ``size`` bytes at ``offset`` of the spill file.

    :raises OSError: reading failed, or the file is shorter than what was written to it.
    """
    parts = []
    while size > 0:
        part = os.pread(spill.fileno(), size, offset)
        if not part:
            raise OSError("spill file: shorter than written")
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts)
