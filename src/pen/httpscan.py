"""Find the HTTP requests in a client's byte stream (sans-IO): bytes in, request heads out.

pen.log gets one line per request of a keep-alive or pipelined connection, never body bytes,
and -H adds X-Forwarded-For/-Proto to every request head, so the balancer follows the
request framing of the client->server direction only:

    HEAD --(head complete, Content-Length n)--> BODY(n) --> HEAD
    HEAD --(Transfer-Encoding: chunked)--> CHUNK_SIZE <-> CHUNK_DATA --(size 0)--> TRAILER --> HEAD
    HEAD --(not a request line, CONNECT, Upgrade, oversized head)--> TUNNEL (pass-through forever)

A connection whose first bytes are not an HTTP request line is a TUNNEL from the start and
its first chunk is reported as its only "head", which is what pen logs for other protocols.
Only in rewrite mode are head bytes held back until the head is complete.
"""

from __future__ import annotations

import re

MAX_HEAD = 65536
"""A head longer than this is not HTTP we rewrite: the rest of the connection passes through."""

HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, TRAILER, TUNNEL = range(6)

_METHOD = re.compile(rb"[A-Z][A-Z_-]{0,23} ")
_REQUEST_LINE = re.compile(rb"[A-Z][A-Z_-]{0,23} \S+ HTTP/\d\.\d\r?")


def _head_end(buf: bytes) -> int:
    """Offset just past the blank line ending the head, or -1."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 4
    return lf + 2 if lf >= 0 else -1


class RequestScanner:
    """Follows one client->server stream; ``feed`` returns (bytes to forward, heads found)."""

    __slots__ = ("_state", "_buf", "_remaining", "_first", "_rewrite", "_client", "_proto")

    def __init__(self, client: str = "", proto: str = "http", rewrite: bool = False) -> None:
        self._state = HEAD
        self._buf = b""
        self._remaining = 0
        self._first = True
        self._rewrite = rewrite
        self._client = client.encode()
        self._proto = proto.encode()

    @property
    def tunnel(self) -> bool:
        """True once the stream is no longer followed (nothing more will be reported)."""
        return self._state == TUNNEL

    def feed(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """Take the next chunk; return what to forward now and the request heads it completed."""
        heads: list[bytes] = []
        out: list[bytes] | None = [] if self._rewrite else None
        pos, size = 0, len(data)
        while pos < size:
            state = self._state
            if state == BODY or state == CHUNK_DATA:
                take = min(self._remaining, size - pos)
                if out is not None:
                    out.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = HEAD if state == BODY else CHUNK_SIZE
            elif state == HEAD:
                pos = self._head_step(data, pos, heads, out)
            elif state == TUNNEL:
                if out is not None:
                    out.append(data[pos:])
                break
            else:
                pos = self._line_step(data, pos, out)
        return (data if out is None else b"".join(out)), heads

    def _to_tunnel(self, buf: bytes, heads: list[bytes], out: list[bytes] | None) -> None:
        if self._first:
            heads.append(buf)
        self._first = False
        self._state = TUNNEL
        self._buf = b""
        if out is not None:
            out.append(buf)

    def _head_step(self, data: bytes, pos: int, heads: list[bytes], out: list[bytes] | None) -> int:
        """Collect a request head; on completion report it and choose the body state."""
        held = len(self._buf)
        buf = self._buf + data[pos:] if held else data[pos:]
        if not held:
            skip = len(buf) - len(buf.lstrip(b"\r\n"))
            if skip:
                if out is not None:
                    out.append(buf[:skip])
                return pos + skip
            if not _METHOD.match(buf[:25]) and len(buf) >= 25 or not buf[:1].isupper():
                self._to_tunnel(buf, heads, out)
                return len(data)
        end = _head_end(buf)
        if end < 0:
            newline = buf.find(b"\n")
            if newline >= 0 and not _REQUEST_LINE.fullmatch(buf[:newline]) or len(buf) > MAX_HEAD:
                self._to_tunnel(buf, heads, out)
            else:
                self._buf = buf
            return len(data)
        head = buf[:end]
        self._buf = b""
        newline = head.find(b"\n")
        if not _REQUEST_LINE.fullmatch(head[:newline]):
            self._to_tunnel(buf, heads, out)
            return len(data)
        self._first = False
        heads.append(head)
        self._choose_body(head)
        if out is not None:
            out.append(self._rewrite_head(head))
        return pos + end - held

    def _choose_body(self, head: bytes) -> None:
        """Set the state after a head from its method and framing headers."""
        length = 0
        state = HEAD
        if head.startswith(b"CONNECT "):
            state = TUNNEL
        for line in head.split(b"\n")[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                continue
            name = name.strip().lower()
            if name == b"content-length":
                value = value.strip()
                if not value.isdigit():
                    state = TUNNEL
                    break
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                state = CHUNK_SIZE
            elif name == b"upgrade":
                state = TUNNEL
        if state == HEAD and length:
            state, self._remaining = BODY, length
        self._state = state

    def _line_step(self, data: bytes, pos: int, out: list[bytes] | None) -> int:
        """Read one chunk-size or trailer line."""
        newline = data.find(b"\n", pos)
        if newline < 0:
            self._buf += data[pos:]
            if len(self._buf) > MAX_HEAD:
                self._to_tunnel(self._buf, [], out)
            elif out is not None:
                out.append(data[pos:])
            return len(data)
        line = self._buf + data[pos:newline]
        self._buf = b""
        if out is not None:
            out.append(data[pos : newline + 1])
        text = line.strip()
        if self._state == TRAILER:
            if not text:
                self._state = HEAD
        else:
            try:
                chunk = int(text.split(b";", 1)[0], 16)
            except ValueError:
                self._state = TUNNEL
                return newline + 1
            if chunk == 0:
                self._state = TRAILER
            else:
                self._state, self._remaining = CHUNK_DATA, chunk + 2
        return newline + 1

    def _rewrite_head(self, head: bytes) -> bytes:
        """Append the client to X-Forwarded-For (or add it) and set X-Forwarded-Proto."""
        crlf = head.endswith(b"\r\n\r\n")
        eol = b"\r\n" if crlf else b"\n"
        lines = head[: -len(eol) * 2].split(eol)
        kept = [lines[0]]
        has_xff = False
        for line in lines[1:]:
            name = line.partition(b":")[0].strip().lower()
            if name == b"x-forwarded-proto":
                continue
            if name == b"x-forwarded-for" and not has_xff:
                line = line.rstrip() + b", " + self._client
                has_xff = True
            kept.append(line)
        if not has_xff:
            kept.append(b"X-Forwarded-For: " + self._client)
        kept.append(b"X-Forwarded-Proto: " + self._proto)
        return eol.join(kept) + eol + eol
