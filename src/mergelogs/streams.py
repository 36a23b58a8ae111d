"""Byte streams at the edges: compressed or plain inputs, stdin, and atomic output files."""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import io
import itertools
import lzma
import os
import stat
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, BinaryIO

from mergelogs.errors import InputError
from mergelogs.shell import signals_held


def _gunzip(raw: BinaryIO) -> IO[bytes]:
    return io.BufferedReader(gzip.GzipFile(fileobj=raw, mode="rb"), _READ_BUFFER)


_MAGIC: tuple[tuple[bytes, Callable[[BinaryIO], IO[bytes]]], ...] = (
    (b"\x1f\x8b", _gunzip),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
_READ_BUFFER = 1 << 20


class Input:
    """An opened input: decompressed lines, plus how far into the raw file reading has got."""

    __slots__ = ("name", "raw", "stream", "size")

    def __init__(self, name: str, raw: BinaryIO, stream: IO[bytes], size: int | None) -> None:
        self.name = name
        self.raw = raw
        self.stream = stream
        self.size = size

    def position(self) -> int:
        """Raw (compressed) bytes consumed so far; 0 for pipes."""
        try:
            return self.raw.tell()
        except OSError:
            return 0

    def close(self) -> None:
        """Close the decompressor and the file (never stdin)."""
        self.stream.close()
        if self.raw is not sys.stdin.buffer:
            self.raw.close()


def open_input(name: str) -> Input:
    """Open ``name`` (``-`` is stdin) for reading bytes, decompressing gzip, bzip2 and xz.

    The compression is recognised by its magic bytes, not the file name, so a rotated
    ``access_log.1`` that happens to be gzipped is read too.

    :raises OSError: the file cannot be opened.
    """
    if name == "-":
        raw: BinaryIO = sys.stdin.buffer
        size = None
    else:
        raw = open(name, "rb", buffering=_READ_BUFFER)  # noqa: SIM115 - closed by Input.close
        size = os.fstat(raw.fileno()).st_size
    head = raw.peek(6)[:6] if hasattr(raw, "peek") else b""
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            return Input(name, raw, opener(raw), size)
    return Input(name, raw, raw, size)


def open_all(stack: contextlib.ExitStack[bool | None], names: list[str]) -> list[Input]:
    """Open every input, closed with ``stack``.

    :raises InputError: an input cannot be opened (named in the error).
    """
    inputs = []
    for name in names:
        try:
            inputs.append(open_input(name))
        except OSError as exc:
            raise InputError(name, exc.strerror or str(exc)) from exc
        stack.callback(inputs[-1].close)
    return inputs


class ReadError(OSError):
    """An input that broke while being read (I/O error, truncated or corrupt compression);
    ``filename`` names it."""


_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


LINE_MAX = 1 << 20
"""Bytes of one line held at most: a longer line is handed on in pieces."""


def read_lines(source: Input, limit: int = LINE_MAX) -> Iterator[bytes]:
    """Yield each line of ``source`` with its terminator; a missing final newline is added,
    so that a line can never be glued onto whatever is written after it.

    A line longer than ``limit`` comes in pieces of about ``limit`` bytes, each but the last
    without a newline, so that no line is ever held whole (a 1 GiB line without a newline
    would otherwise take twice that).

    Input is read a megabyte at a time and cut into lines by ``BytesIO.readlines``, in C, and
    handed on by ``itertools.chain``.

    :raises ReadError: reading or decompressing failed.
    """
    return itertools.chain.from_iterable(_batches(source, limit))


def _batches(source: Input, limit: int) -> Iterator[list[bytes]]:
    read = source.stream.read
    carry = b""
    """The unfinished last line of the blocks so far (at most ``limit`` bytes)."""
    ended = True
    """Whether what was handed on so far ends with a newline."""
    try:
        while block := read(_READ_BUFFER):
            lines = io.BytesIO(carry + block if carry else block).readlines()
            carry = b"" if lines[-1][-1] == 10 else lines.pop()
            if len(carry) > limit:  # a piece of a long line: hand it on, keep nothing
                lines.append(carry)
                carry = b""
            if lines:
                ended = lines[-1][-1] == 10
                yield lines
    except _READ_ERRORS as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ReadError(None, reason, source.name) from exc
    if carry or not ended:
        yield [carry + b"\n"]


class Spilled(bytes):
    """A long line set aside in a :class:`Spool`: as bytes, its first bytes and ``...`` (what
    ``-r`` shows); ``offset`` and ``length`` say where the whole line is."""

    offset: int
    length: int


SHOWN = 200
"""Bytes of a long line a :class:`Spilled` shows."""


class Spool:
    """Long lines kept on disk between reading and writing, so that memory holds none whole.

    The file is anonymous (removed whatever ends the run) and its offsets are absolute, so a
    forked worker can write a line that its parent reads back.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._fd = self._file.fileno()

    def put(self, first: bytes, rest: Iterator[bytes]) -> Spilled:
        """Write the line whose first piece is ``first`` and whose further pieces come from
        ``rest`` (up to the one ending with a newline); a reference to it."""
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        length = 0
        piece = first
        while True:
            length += os.pwrite(self._fd, piece, offset + length)
            if piece[-1:] == b"\n":
                break
            piece = next(rest, b"\n")
        spilled = Spilled(first[:SHOWN] + b"...\n")
        spilled.offset, spilled.length = offset, length
        return spilled

    def pieces(self, line: Spilled) -> Iterator[bytes]:
        """The line, a megabyte at a time."""
        done = 0
        while done < line.length:
            piece = os.pread(self._fd, min(_READ_BUFFER, line.length - done), line.offset + done)
            if not piece:
                raise OSError(errno.EIO, "spool file shrank")
            done += len(piece)
            yield piece

    def expand(self, lines: Iterable[bytes]) -> Iterator[list[bytes]]:
        """``lines`` as batches to write, each spilled line read back in pieces."""
        run: list[bytes] = []
        for line in lines:
            if type(line) is Spilled:
                if run:
                    yield run
                    run = []
                for piece in self.pieces(line):
                    yield [piece]
            else:
                run.append(line)
        if run:
            yield run

    def close(self) -> None:
        self._file.close()


_DIRECT_PREFIXES = ("/proc/", "/dev/fd/")
"""Links into these name an open file of some process (``/dev/stdout`` is one): written
into as they are, never replaced by a new file."""


def output_target(name: str) -> tuple[str, bool]:
    """Where output for ``name`` goes, and whether it is written into directly.

    A symlink is followed to the file it names, which is replaced (the link stays). A FIFO,
    a device, a socket or an open file named through /proc or /dev/fd is written into as it
    is; replacing it would leave its reader with nothing (or, as root, turn ``/dev/full``
    into a regular file).
    """
    path = name
    for _ in range(40):  # the kernel's limit on nested links
        if path.startswith(_DIRECT_PREFIXES):
            return path, True
        try:
            link = os.readlink(path)
        except OSError:  # not a link, or not there yet
            break
        path = os.path.join(os.path.dirname(path), link)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return os.path.realpath(path), False
    except OSError:
        return path, False  # a link loop or an unreadable directory: let opening tell
    return os.path.realpath(path), not stat.S_ISREG(mode)


@contextlib.contextmanager
def atomic_output(name: str | None) -> Iterator[BinaryIO]:
    """A binary stream for ``name``: stdout when None or ``-``; a FIFO, a device or an open
    file (``/dev/stdout``) written into directly; otherwise a temporary file in the target's
    directory renamed over it only when the block succeeds (the temporary file is removed
    whatever ends the block).

    :raises OSError: the output cannot be opened or written.
    """
    if name is None or name == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target, direct = output_target(name)
    if direct:
        with open(target, "wb", buffering=_READ_BUFFER) as out:
            yield out
        return
    directory = os.path.dirname(target)
    tmp = None
    try:
        with signals_held():  # a signal now would stop the run before it knew of ``tmp``
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb", buffering=_READ_BUFFER) as out:
            yield out
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
