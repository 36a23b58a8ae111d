"""Find the HTTP requests in a client's byte stream (sans-IO): bytes in, request heads out.

pen.log gets one line per request of a keep-alive or pipelined connection, never body bytes,
and -H adds X-Forwarded-For/-Proto to every request head, so the balancer follows the
request framing of the client->server direction, one message at a time, as HAProxy does:

    HEAD --(head complete, Content-Length n)--> BODY(n) --> HEAD
    HEAD --(Transfer-Encoding: chunked)--> CHUNK_SIZE <-> CHUNK_DATA --(size 0)--> TRAILER --> HEAD
    HEAD --(first request is CONNECT or carries Upgrade; after its body)--> SWITCH
    SWITCH --(backend answered 101 to Upgrade / 2xx to CONNECT: ``decide``)--> TUNNEL
    SWITCH --(any other answer)--> HEAD        (the bytes held meanwhile are parsed as HTTP)
    HEAD --(malformed, oversized or ambiguously framed head; bad chunk line)--> REFUSED

A real protocol switch is the only way from an HTTP stream into the TUNNEL: an ``Upgrade:``
the backend does not accept, or a CONNECT it refuses, leaves the next bytes HTTP, so a forged
header after them is still rewritten and the request still logged. Only the first request of a
connection may switch: the answer to it is the first status line the backend sends, with no
earlier response to frame (browsers open a fresh connection for each WebSocket).

A connection whose first bytes are not an HTTP request line is a TUNNEL from the start (pen
logs its first chunk as its only "head", as it does for other protocols), except under -H,
where anything the scanner cannot frame is REFUSED: the driver answers ``refusal.status``
and closes, and never passes the rest on unrewritten. Only in rewrite mode are head bytes
held back until the head is complete; in log-only mode they pass as they come.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEAD = 65536
"""The longest request head (or chunk-size/trailer line) accepted: beyond it, 431."""

HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, TRAILER, SWITCH, TUNNEL, REFUSED = range(8)
"""Scanner states; from SWITCH on the driver has something to do (``state >= SWITCH``)."""

_METHOD = re.compile(rb"[A-Z][A-Z_-]{0,23} ")
_REQUEST_LINE = re.compile(rb"[A-Z][A-Z_-]{0,23} \S+ HTTP/\d\.\d\r?")
_FIELDS = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\x00]*\r?\n)*\r?\n")
"""The header lines after the request line: ``token:value`` each, no folding, no bare CR or NUL."""
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d\d\d)[^\r\n]*\r?\n")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not passed on: a name for the counters and the status to answer."""

    name: str
    status: int
    reason: str

    def response(self) -> bytes:
        """The complete response sent before closing."""
        return b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (
            self.status, self.reason.encode())


BAD_REQUEST_LINE = Refusal("bad_request_line", 400, "Bad Request")
BAD_HEADER = Refusal("bad_header", 400, "Bad Request")
BAD_CONTENT_LENGTH = Refusal("bad_content_length", 400, "Bad Request")
AMBIGUOUS_LENGTH = Refusal("ambiguous_length", 400, "Bad Request")
BAD_TRANSFER_ENCODING = Refusal("bad_transfer_encoding", 400, "Bad Request")
BAD_CHUNK = Refusal("bad_chunk", 400, "Bad Request")
HEAD_TOO_LARGE = Refusal("head_too_large", 431, "Request Header Fields Too Large")
HEAD_TIMEOUT = Refusal("head_timeout", 408, "Request Timeout")
"""Not the scanner's finding: the driver's, for a head that did not complete in time."""

REFUSALS = (BAD_REQUEST_LINE, BAD_HEADER, BAD_CONTENT_LENGTH, AMBIGUOUS_LENGTH,
            BAD_TRANSFER_ENCODING, BAD_CHUNK, HEAD_TOO_LARGE, HEAD_TIMEOUT)


def _head_end(buf: bytes) -> int:
    """Offset just past the blank line ending the head, or -1."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 4
    return lf + 2 if lf >= 0 else -1


def _lines(head: bytes) -> list[bytes]:
    """The head's lines without their CR/LF (the blank last line dropped)."""
    return [line[:-1] if line.endswith(b"\r") else line for line in head.split(b"\n")[:-2]]


class RequestScanner:
    """Follows one client->server stream; ``feed`` returns (bytes to forward, heads found)."""

    __slots__ = ("state", "refusal", "heads", "_buf", "_held", "_remaining", "_first",
                 "_rewrite", "_client", "_proto", "_switch")

    def __init__(self, client: str = "", proto: str = "http", rewrite: bool = False) -> None:
        self.state = HEAD
        self.refusal: Refusal | None = None
        self.heads = 0
        """Request heads completed so far (the head timeout watches it move)."""
        self._buf = b""
        self._held: list[bytes] = []
        self._remaining = 0
        self._first = True
        self._rewrite = rewrite
        self._client = client.encode()
        self._proto = proto.encode()
        self._switch = 0
        """After the current message: 0 HEAD, 101 switch on a 101, 200 switch on a 2xx."""

    @property
    def tunnel(self) -> bool:
        """True once the stream is no longer followed (nothing more will be reported)."""
        return self.state == TUNNEL

    @property
    def in_head(self) -> bool:
        """True while a head is due: part of it arrived, or (-H) the connection's first."""
        return self.state == HEAD and (bool(self._buf) or self._first and self._rewrite)

    def feed(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """Take the next chunk; return what to forward now and the request heads it completed."""
        heads: list[bytes] = []
        out: list[bytes] | None = [] if self._rewrite else None
        pos, size = 0, len(data)
        while pos < size:
            state = self.state
            if state == BODY or state == CHUNK_DATA:
                take = min(self._remaining, size - pos)
                if out is not None:
                    out.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if state == BODY:
                        self._end_message()
                    else:
                        self.state = CHUNK_SIZE
            elif state == HEAD:
                pos = self._head_step(data, pos, heads, out)
            elif state == TUNNEL:
                if out is not None:
                    out.append(data[pos:])
                break
            elif state == SWITCH:
                self._held.append(data[pos:])
                if out is None:
                    return data[:pos], heads
                break
            elif state == REFUSED:
                if out is None:
                    return data[:pos], heads
                break
            else:
                pos = self._line_step(data, pos, out)
        return (data if out is None else b"".join(out)), heads

    def decide(self, status: int) -> tuple[bytes, list[bytes]]:
        """The backend answered the switching request with ``status``: tunnel or HTTP again.

        :returns: what ``feed`` returns for the bytes held while the answer was awaited.
        """
        held = b"".join(self._held)
        self._held.clear()
        if status == self._switch or (self._switch == 200 and 200 <= status < 300):
            self.state = TUNNEL
            return held, []
        self.state = HEAD
        self._switch = 0
        return self.feed(held)

    def stop(self, refusal: Refusal) -> None:
        """Refuse from here on (the driver's head timeout): nothing more is passed on."""
        self._refuse(refusal, 0)

    def _refuse(self, refusal: Refusal, pos: int) -> int:
        """Stop at ``pos``: nothing from there on is passed on."""
        self.state = REFUSED
        self.refusal = refusal
        self._buf = b""
        return pos

    def _end_message(self) -> None:
        """A request ended: wait for the next head, or for the answer to a switching one."""
        self.state = SWITCH if self._switch else HEAD

    def _to_tunnel(self, buf: bytes, heads: list[bytes], out: list[bytes] | None) -> None:
        """Not HTTP from the first byte on: log it once, pass it on, follow no more."""
        heads.append(buf)
        self._first = False
        self.state = TUNNEL
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
                return self._not_a_request(buf, heads, out, pos, len(data))
        end = _head_end(buf)
        if end < 0:
            newline = buf.find(b"\n")
            if newline >= 0 and not _REQUEST_LINE.fullmatch(buf[:newline]):
                return self._not_a_request(buf, heads, out, pos, len(data))
            if len(buf) > MAX_HEAD:
                return self._refuse(HEAD_TOO_LARGE, pos)
            self._buf = buf
            return len(data)
        if end > MAX_HEAD:
            return self._refuse(HEAD_TOO_LARGE, pos)
        head = buf[:end]
        self._buf = b""
        newline = head.find(b"\n")
        if not _REQUEST_LINE.fullmatch(head[:newline]):
            return self._not_a_request(buf, heads, out, pos, len(data))
        if not _FIELDS.fullmatch(head, newline + 1):
            return self._refuse(BAD_HEADER, pos)
        lines = _lines(head)
        refusal = self._choose_body(lines)
        if refusal is not None:
            return self._refuse(refusal, pos)
        self._first = False
        self.heads += 1
        heads.append(head)
        if out is not None:
            out.append(self._rewrite_head(lines, head.endswith(b"\r\n\r\n")))
        return pos + end - held

    def _not_a_request(self, buf: bytes, heads: list[bytes], out: list[bytes] | None,
                       pos: int, size: int) -> int:
        """Bytes that are no request head: another protocol at the start, else refused."""
        if self._first and not self._rewrite:
            self._to_tunnel(buf, heads, out)
            return size
        return self._refuse(BAD_REQUEST_LINE, pos)

    def _choose_body(self, lines: list[bytes]) -> Refusal | None:
        """Set the state after a head from its method and framing headers (h11's rules)."""
        lengths: set[bytes] = set()
        chunked = upgrade = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                lengths.update(v.strip() for v in value.split(b","))
            elif name == b"transfer-encoding":
                codings = [c.strip() for c in value.lower().split(b",")]
                if chunked or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
                    return BAD_TRANSFER_ENCODING
                chunked = True
            elif name == b"upgrade":
                upgrade = True
        if lengths and chunked:
            return AMBIGUOUS_LENGTH
        if len(lengths) > 1:
            return AMBIGUOUS_LENGTH
        length = 0
        if lengths:
            value = lengths.pop()
            if not value.isdigit():
                return BAD_CONTENT_LENGTH
            length = int(value)
        if self._first:
            self._switch = 200 if lines[0].startswith(b"CONNECT ") else 101 if upgrade else 0
        if chunked:
            self.state = CHUNK_SIZE
        elif length:
            self.state, self._remaining = BODY, length
        else:
            self._end_message()
        return None

    def _line_step(self, data: bytes, pos: int, out: list[bytes] | None) -> int:
        """Read one chunk-size or trailer line."""
        newline = data.find(b"\n", pos)
        if newline < 0:
            self._buf += data[pos:]
            if len(self._buf) > MAX_HEAD:
                return self._refuse(HEAD_TOO_LARGE, pos)
            if out is not None:
                out.append(data[pos:])
            return len(data)
        line = self._buf + data[pos:newline]
        self._buf = b""
        if out is not None:
            out.append(data[pos : newline + 1])
        text = line.strip()
        if self.state == TRAILER:
            if not text:
                self._end_message()
            return newline + 1
        size = text.split(b";", 1)[0].strip()
        try:
            chunk = int(size, 16)
        except ValueError:
            chunk = -1
        if chunk < 0 or not size.isalnum():
            return self._refuse(BAD_CHUNK, pos)
        if chunk == 0:
            self.state = TRAILER
        else:
            self.state, self._remaining = CHUNK_DATA, chunk + 2
        return newline + 1

    def _rewrite_head(self, lines: list[bytes], crlf: bool) -> bytes:
        """Append the client to the last X-Forwarded-For (or add one); set X-Forwarded-Proto.

        A backend joins repeated headers in order, so the real client must end the last one.
        """
        eol = b"\r\n" if crlf else b"\n"
        kept = [lines[0]]
        last_xff = -1
        for line in lines[1:]:
            name = line.partition(b":")[0].lower()
            if name == b"x-forwarded-proto":
                continue
            if name == b"x-forwarded-for":
                last_xff = len(kept)
            kept.append(line)
        if last_xff < 0:
            kept.append(b"X-Forwarded-For: " + self._client)
        else:
            kept[last_xff] = kept[last_xff].rstrip() + b", " + self._client
        kept.append(b"X-Forwarded-Proto: " + self._proto)
        return eol.join(kept) + eol + eol


class StatusWatch:
    """Reads the backend's answer to a switching request: its first final status (or 101).

    Interim 1xx answers (100 Continue, 103 Early Hints) are skipped; anything that is not a
    status line counts as "no switch" (status 0).
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> int | None:
        """Take the next chunk from the backend; the status once known, else None."""
        buf = self._buf + data
        while True:
            line = _STATUS_LINE.match(buf)
            if line is None:
                if b"\n" in buf or len(buf) > MAX_HEAD or not b"HTTP/".startswith(buf[:5]):
                    return 0
                self._buf = buf
                return None
            status = int(line.group(1))
            if status >= 200 or status == 101:
                return status
            end = _head_end(buf)
            if end < 0:
                self._buf = buf
                return None if len(buf) <= MAX_HEAD else 0
            buf = buf[end:]
