"""Realistic pen farm logs: pen.log, one access log per backend, and the ground truth.

Usage: ``python bench/genlogs.py OUT --backends 4 --rate 100 --lines 1000000 --skew 3 --seed 1
[--gzip N]`` writes OUT/pen.log, OUT/access_log.hostN[.gz] and OUT/truth.tsv;
``--check-samples DIR`` writes the committed sample set into DIR if a file of it is missing.

Design notes
------------
One seeded ``random.Random`` drives a single pass over the requests in arrival order, so the
same seed gives the same farm and a smaller ``requests`` gives the start of a bigger farm.
What each party writes, and when:

- pen reads the request at ``arrival`` (true time) and writes ``client floor(arrival) backend
  request`` through :func:`pen.penlog.format_line` (first 100 bytes, bytes >= 0x80 as ``.``).
  A request body or a header fragment that came in a later read becomes its own pen.log line
  a little later: garbage that must never match anything.
- The backend receives it ``latency`` later on a clock ``skew`` seconds off, stamps ``%t``
  with that start time in its own zone (fixed offset or a DST zone), and writes the line when
  the request *ends*, so each access log is in completion order, not stamp order. The client
  it sees is pen's own address.
- A connection that sends nothing gets a ``"-" 408`` line (nginx: ``"" 400``) and no pen.log
  entry at all.

Outputs leave a pending heap in time order, so memory is bounded by the longest request, not
by the farm. Every access line gets a truth row: its backend, line number, the true client and
the pen.log epoch and line number of its request (``-`` for a 408).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import heapq
import itertools
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from mergelogs import accesslog
from mergelogs.accesslog import parse_zone, zone_stamp
from pen.penlog import format_line

DST_END_2026 = 1793512800
"""2026-11-01 06:00 UTC: New York falls back from -0400 to -0500 and repeats an hour."""

DEFAULT_ZONES = ("UTC", "America/New_York", "+0100", "Asia/Kolkata", "-0800", "Europe/Paris")
PEN_FILE = "pen.log"
TRUTH_FILE = "truth.tsv"
SAMPLE_GZIP = frozenset({2})


def access_file(backend: int) -> str:
    """File name of the access log of 1-based ``backend``."""
    return f"access_log.host{backend}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Farm:
    """What the generated farm looks like; every field has a realistic default."""

    backends: int = 4
    rate: float = 100.0
    """Requests per second through pen."""
    requests: int = 10_000
    """Requests, i.e. access-log lines over all backends."""
    skew: float = 3.0
    """Each backend clock is off by a uniform draw in [-skew, +skew] seconds..."""
    skews: tuple[float, ...] = ()
    """... unless given here, per backend (to replay a hard case)."""
    drift: float = 0.0
    """Seconds per hour every backend clock gains on pen's (a clock without NTP)."""
    seed: int = 1
    start: float = DST_END_2026 - 60.0
    addresses: tuple[str, ...] = ()
    """Backend addresses as pen logs them; default 10.0.0.1, 10.0.0.2, ..."""
    zones: tuple[str, ...] = DEFAULT_ZONES
    """Per backend (cycled): a zoneinfo name or a fixed ``+hhmm``."""
    formats: tuple[str, ...] = ("combined", "common")
    """Per backend (cycled), one of :data:`FORMATS`."""
    pen_address: str = "10.0.0.254"
    """The client address every backend sees (pen's)."""
    clients: int = 0
    """Client population; default grows with the rate."""
    ipv6_share: float = 0.1
    garbage_share: float = 0.02
    """Share of requests whose headers arrive in a second read (one garbage pen.log line)."""
    idle_share: float = 0.001
    """Share of connections that send nothing: a 408 line with no pen.log entry."""
    huge_share: float = 0.0005
    """Share of requests with a 1-8 KB URI (C mergelogs drops lines of 1 KB or more)."""
    paths: int = 300
    """Popular paths in the site's catalog."""
    rare: bool = True
    """One request in five for a rare URI (search, report, API item...); False: catalog only,
    an API farm where every request is popular."""
    max_duration: float = 30.0

    def address(self, backend: int) -> str:
        """Address of 0-based ``backend``."""
        if self.addresses:
            return self.addresses[backend]
        return f"10.0.0.{backend + 1}"

    def zone(self, backend: int) -> str:
        return self.zones[backend % len(self.zones)]

    def format(self, backend: int) -> str:
        return self.formats[backend % len(self.formats)]

    def clock_skews(self) -> list[float]:
        """How far each backend's clock is ahead of pen's, in seconds (own random stream)."""
        if self.skews:
            return list(self.skews)
        rng = random.Random(f"skew-{self.seed}")
        return [rng.uniform(-self.skew, self.skew) for _ in range(self.backends)]

    def population(self) -> int:
        return self.clients or min(20_000, 200 + int(10 * self.rate))


SAMPLE = Farm(
    backends=2, rate=20.0, requests=2000, skew=3.0, seed=1, idle_share=0.003, huge_share=0.002
)
"""The committed sample set in sample_logs/: crosses New York's 2026 DST end on host2."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line for one output file: ``file`` is -1 for pen.log, else the 0-based backend."""

    file: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TruthRow:
    """Who really sent the request of one access line (1-based backend and line numbers)."""

    backend: int
    line: int
    client: str
    pen_epoch: int | None
    pen_line: int | None

    def tsv(self) -> str:
        epoch = "-" if self.pen_epoch is None else str(self.pen_epoch)
        pen_line = "-" if self.pen_line is None else str(self.pen_line)
        return f"{self.backend}\t{self.line}\t{self.client}\t{epoch}\t{pen_line}\n"


# --- what clients ask for -------------------------------------------------------------------

apache_escape = lru_cache(maxsize=4096)(accesslog.apache_escape)
nginx_escape = lru_cache(maxsize=4096)(accesslog.nginx_escape)
"""The servers' escaping (the one definition in mergelogs.accesslog), remembered: the same
few paths, referers and agents come back all the time."""


_WORDS = (
    "pen balancer apache nginx farm log merge client server request window skew clock zone "
    "offset cache index market price report weather travel music garden recipe football"
).split()
_NON_ASCII = (
    "/wiki/Café",
    "/wiki/日本語",
    "/città/roma",
    "/search?q=naïve+façade",
    "/straße/12",
    "/привет",
    "/blog/über-uns",
    "/menu/crème-brûlée",
)
_AGENTS = (
    b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/130.0 Safari/537.36",
    b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    b"curl/8.5.0",
    b"Wget/1.21.3",
    b'Mozilla/5.0 (compatible; "quoted" bot/2.1)',
    b"Googlebot/2.1 (+http://www.google.com/bot.html)",
)
_FRAGMENTS = (b"Cookie: session=%d", b"Accept-Language: en-US,en;q=0.%d", b"X-Late: %d")


@dataclass(frozen=True, slots=True)
class Catalog:
    """The site: popular static paths with fixed sizes, Zipf-weighted."""

    paths: tuple[str, ...]
    sizes: tuple[int, ...]
    cum_weights: tuple[float, ...]


def make_catalog(rng: random.Random, count: int = 300) -> Catalog:
    """Popular paths, the first ones far more frequent than the tail (Zipf, s = 1)."""
    kinds = ("/css/{}.css", "/js/{}.js", "/img/{}.png", "/products/{}", "/blog/2026/{}")
    paths = ["/", "/index.html", "/favicon.ico", "/robots.txt"]
    while len(paths) < count:
        name = "-".join(rng.sample(_WORDS, 2)) + str(len(paths))
        paths.append(rng.choice(kinds).format(name))
    paths.append("/assets/" + "chunk-of-a-very-long-bundle-name/" * 4 + "app.js")
    sizes = tuple(rng.randint(200, 200_000) for _ in paths)
    total = 0.0
    cum = []
    for rank in range(len(paths)):
        total += 1.0 / (rank + 1)
        cum.append(total)
    return Catalog(tuple(paths), sizes, tuple(cum))


def make_clients(rng: random.Random, count: int, ipv6_share: float) -> list[str]:
    """Distinct client addresses, a share of them IPv6 (no zero groups: one spelling only)."""
    seen: set[str] = set()
    clients: list[str] = []
    while len(clients) < count:
        if rng.random() < ipv6_share:
            a, b, c = (rng.randint(1, 0xFFFF) for _ in range(3))
            client = f"2001:db8:{a:x}:{b:x}::{c:x}"
        else:
            first = rng.choice((81, 93, 151, 185, 198, 203))
            client = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if client not in seen:
            seen.add(client)
            clients.append(client)
    return clients


def _query_words(rng: random.Random, count: int) -> str:
    return "+".join(rng.choice(_WORDS) for _ in range(count))


def pick_uri(rng: random.Random, catalog: Catalog, rare: bool = True) -> tuple[str, int | None]:
    """A URI and its fixed size (None for dynamic pages): mostly popular, some long or odd."""
    draw = rng.random()
    if draw < 0.80 or not rare:
        index = rng.choices(range(len(catalog.paths)), cum_weights=catalog.cum_weights)[0]
        return catalog.paths[index], catalog.sizes[index]
    if draw < 0.90:
        return f"/search?q={_query_words(rng, rng.randint(1, 4))}&page={rng.randint(1, 5)}", None
    if draw < 0.95:
        long_path = f"/report/{_query_words(rng, 6)}?from=2026-10-01&to=2026-10-31&filter="
        return long_path + _query_words(rng, rng.randint(8, 30)), None
    if draw < 0.98:
        return rng.choice(_NON_ASCII), None
    if draw < 0.99:
        return f'/say?text="hi+{rng.randint(1, 9)}"&back=\\x', None
    return f"/api/items/{rng.randint(1, 10**6)}", None


def huge_uri(rng: random.Random) -> str:
    """A tracking-parameter monster of 1-8 KB, as LimitRequestLine 8190 still allows."""
    size = rng.randint(1024, 8000)
    params: list[str] = []
    length = 0
    while length < size:
        params.append(f"utm_{rng.choice(_WORDS)}={_query_words(rng, 12)}")
        length += len(params[-1]) + 1
    return "/landing?" + "&".join(params)


# --- the farm ---------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def apache_stamp(epoch: int, zone: str) -> bytes:
    """The ``%t`` text of ``epoch`` as a server in ``zone`` writes it."""
    return zone_stamp(epoch, parse_zone(zone))


@dataclass(frozen=True, slots=True)
class Hit:
    """What a backend knows about one request when it writes its line."""

    stamp: bytes
    request: bytes
    """The request line as received (unescaped); ``-`` or empty when none came."""
    status: int
    size: int
    """Body bytes sent."""
    user: bytes = b"-"
    referer: bytes = b"-"
    agent: bytes = b"-"


FORMATS = ("combined", "common", "combined_debian", "vhost_combined", "nginx")
_HEADER_BYTES = 240
"""What ``%O`` adds to the body size: the response headers."""


def access_line(fmt: str, host: str, hit: Hit) -> bytes:
    """The line (with its newline) that a server using ``fmt`` writes for ``hit``.

    ``common``/``combined`` are Apache's (``%b``: ``-`` for an empty body), the ``_debian``
    and ``vhost_combined`` ones log ``%O`` (never ``-``), ``nginx`` is its predefined
    ``combined`` with its own escaping.
    """
    escape = nginx_escape if fmt == "nginx" else apache_escape
    if fmt in ("combined_debian", "vhost_combined"):
        size = b"%d" % (hit.size + _HEADER_BYTES)
    elif fmt == "nginx":
        size = b"%d" % hit.size
    else:
        size = b"-" if hit.size == 0 else b"%d" % hit.size
    line = b'%s - %s [%s] "%s" %d %s' % (
        host.encode(),
        escape(hit.user),
        hit.stamp,
        escape(hit.request),
        hit.status,
        size,
    )
    if fmt != "common":
        line += b' "%s" "%s"' % (escape(hit.referer), escape(hit.agent))
    if fmt == "vhost_combined":
        line = b"www.example.com:443 " + line
    return line + b"\n"


_Payload = tuple[int, int, str, bytes]
"""pen.log: (request seq or -1 for garbage, epoch, "", line); access: (seq, backend, client,
line)."""


@dataclass(slots=True)
class _Pending:
    """Outputs not yet due, as a heap of (time, order, kind, payload)."""

    heap: list[tuple[float, int, int, _Payload]] = field(default_factory=list)
    order: int = 0

    def push(self, when: float, kind: int, payload: _Payload) -> None:
        self.order += 1
        heapq.heappush(self.heap, (when, self.order, kind, payload))


_PEN, _ACCESS = 0, 1


class _FarmRun:
    """The state of one generation pass: pending outputs and the numbering of written lines."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.rng = random.Random(farm.seed)
        self.catalog = make_catalog(self.rng, farm.paths)
        population = make_clients(self.rng, farm.population(), farm.ipv6_share)
        self.clients = population
        self.client_weights = list(
            itertools.accumulate(1.0 / (k + 1) ** 0.8 for k in range(len(population)))
        )
        self.skews = farm.clock_skews()
        self.sticky: dict[str, int] = {}
        self.pending = _Pending()
        self.pen_lines = 0
        self.pen_line_of: dict[int, tuple[int, int]] = {}
        self.access_lines = [0] * farm.backends

    def backend_for(self, client: str) -> int:
        """pen's client tracking: a new client gets the next backend round-robin, then sticks."""
        backend = self.sticky.get(client)
        if backend is None:
            backend = self.sticky[client] = len(self.sticky) % self.farm.backends
        return backend

    def due(self, now: float) -> Iterator[LogLine | TruthRow]:
        """Write every pending output whose time has come (all of them when ``now`` is inf)."""
        heap = self.pending.heap
        while heap and heap[0][0] <= now:
            _, _, kind, payload = heapq.heappop(heap)
            seq, number, client, line = payload
            if kind == _PEN:
                self.pen_lines += 1
                if seq >= 0:
                    self.pen_line_of[seq] = (number, self.pen_lines)
                yield LogLine(-1, line)
            else:
                self.access_lines[number] += 1
                epoch, pen_line = self.pen_line_of.pop(seq, (None, None))
                yield TruthRow(number + 1, self.access_lines[number], client, epoch, pen_line)
                yield LogLine(number, line)

    def request(self, seq: int, arrival: float) -> None:
        """Queue what pen and the backend write for request ``seq``."""
        rng, farm = self.rng, self.farm
        client = rng.choices(self.clients, cum_weights=self.client_weights)[0]
        backend = self.backend_for(client)
        clock = self.skews[backend] + farm.drift * (arrival - farm.start) / 3600.0
        started = arrival + rng.uniform(0.0005, 0.003) + clock
        stamp = apache_stamp(math.floor(started), farm.zone(backend))
        if rng.random() < farm.idle_share:
            done = arrival + rng.uniform(1.0, max(1.0, min(20.0, farm.max_duration)))
            fmt = farm.format(backend)
            hit = Hit(stamp, b"", 400, 0) if fmt == "nginx" else Hit(stamp, b"-", 408, 0)
            line = access_line(fmt, farm.pen_address, hit)
            self.pending.push(done, _ACCESS, (seq, backend, "-", line))
            return
        request, status, size, agent, body = self._http(rng)
        data = request + b"\r\nHost: www.example.com\r\nUser-Agent: " + agent + b"\r\n"
        second_read = None
        if body is not None and rng.random() < 0.5:
            second_read = body
        elif body is not None:
            data += b"\r\n" + body
        elif rng.random() < farm.garbage_share:
            second_read = rng.choice(_FRAGMENTS) % rng.randint(1, 9)
        else:
            data += b"\r\n"
        pen_epoch = math.floor(arrival)
        server = farm.address(backend)
        pen_line = format_line(client, pen_epoch, server, data)
        self.pending.push(arrival, _PEN, (seq, pen_epoch, "", pen_line))
        if second_read is not None:
            later = arrival + rng.uniform(0.001, 0.3)
            line = format_line(client, math.floor(later), server, second_read)
            self.pending.push(later, _PEN, (-1, math.floor(later), "", line))
        duration = rng.lognormvariate(math.log(0.03), 1.0)
        if rng.random() < 0.005:
            duration = rng.uniform(1.0, farm.max_duration)
        done = started - clock + min(duration, farm.max_duration)
        user = b"alice" if rng.random() < 0.01 else b"-"
        referer = b"-" if rng.random() < 0.4 else b"https://www.example.com/"
        hit = Hit(stamp, request, status, size, user, referer, agent)
        line = access_line(farm.format(backend), farm.pen_address, hit)
        self.pending.push(done, _ACCESS, (seq, backend, client, line))

    def _http(self, rng: random.Random) -> tuple[bytes, int, int, bytes, bytes | None]:
        """Request line, status, size, user agent and POST body (None for other methods)."""
        uri, fixed = pick_uri(rng, self.catalog, self.farm.rare)
        if rng.random() < self.farm.huge_share:
            uri, fixed = huge_uri(rng), None
        proto = "HTTP/1.1" if rng.random() < 0.95 else "HTTP/1.0"
        draw = rng.random()
        agent = _AGENTS[min(int(rng.expovariate(0.7)), len(_AGENTS) - 1)]
        if draw < 0.07:
            body = b"name=%s&comment=%s" % (rng.choice(_WORDS).encode(), "très bien".encode())
            return f"POST {uri} {proto}".encode(), 302, 0, agent, body
        method = "HEAD" if draw < 0.10 else "GET"
        if fixed is not None:
            status, size = (304, 0) if rng.random() < 0.1 else (200, fixed)
        else:
            status = rng.choices((200, 404, 500), (95, 4, 1))[0]
            size = rng.randint(300, 50_000)
        if method == "HEAD":
            size = 0
        return f"{method} {uri} {proto}".encode(), status, size, agent, None


def generate(farm: Farm) -> Iterator[LogLine | TruthRow]:
    """The farm's output lines in the order each file receives them, plus one truth row just
    before each access line. Pure: the same farm yields the same lines."""
    run = _FarmRun(farm)
    arrival = farm.start
    for seq in range(farm.requests):
        arrival += run.rng.expovariate(farm.rate)
        yield from run.due(arrival)
        run.request(seq, arrival)
    yield from run.due(math.inf)


# --- files ------------------------------------------------------------------------------------


def truth_header(farm: Farm, gzipped: frozenset[int] = frozenset()) -> str:
    """The commented header of truth.tsv: the farm, and each backend's address and file."""
    lines = [
        f"# genlogs backends={farm.backends} rate={farm.rate:g} requests={farm.requests} "
        f"skew={farm.skew:g} seed={farm.seed}"
        + (f" drift={farm.drift:g}" if farm.drift else "")
        + "\n",
        f"# pen\t{PEN_FILE}\n",
    ]
    for backend, skew in enumerate(farm.clock_skews()):
        name = access_file(backend + 1) + (".gz" if backend + 1 in gzipped else "")
        lines.append(
            f"# backend\t{backend + 1}\t{farm.address(backend)}\t{name}\t"
            f"{farm.format(backend)}\t{farm.zone(backend)}\tclock {skew:+.3f} s\n"
        )
    lines.append("#backend\tline\tclient\tpen_epoch\tpen_line\n")
    return "".join(lines)


def write_farm(farm: Farm, out: Path, gzipped: frozenset[int] = frozenset()) -> list[Path]:
    """Write pen.log, the access logs (1-based backends in ``gzipped`` as .gz) and truth.tsv."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / PEN_FILE]
    paths += [
        out / (access_file(b) + (".gz" if b in gzipped else ""))
        for b in range(1, farm.backends + 1)
    ]
    with contextlib.ExitStack() as stack:
        streams: list[BinaryIO | gzip.GzipFile] = []
        for number, path in enumerate(paths):
            raw = stack.enter_context(open(path, "wb", buffering=1 << 20))
            streams.append(
                stack.enter_context(gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0))
                if number in gzipped
                else raw
            )
        truth = stack.enter_context(open(out / TRUTH_FILE, "w", encoding="utf-8"))
        truth.write(truth_header(farm, gzipped))
        for item in generate(farm):
            if isinstance(item, LogLine):
                streams[item.file + 1].write(item.data)
            else:
                truth.write(item.tsv())
    return [*paths, out / TRUTH_FILE]


def sample_paths(directory: Path) -> list[Path]:
    """The files of the committed sample set."""
    names = [PEN_FILE, TRUTH_FILE]
    names += [access_file(b) + (".gz" if b in SAMPLE_GZIP else "") for b in range(1, 3)]
    return [directory / name for name in names]


def check_samples(directory: Path) -> bool:
    """(Re)generate the sample set in ``directory`` if any file is missing; True if written."""
    if all(path.exists() for path in sample_paths(directory)):
        return False
    write_farm(SAMPLE, directory, SAMPLE_GZIP)
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", nargs="?", type=Path, help="output directory")
    parser.add_argument("--backends", type=int, default=4, help="2-8 (default 4)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s (default 100)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--lines", type=int, help="requests = access lines (default 10000)")
    size.add_argument("--duration", type=float, help="seconds of traffic instead of --lines")
    parser.add_argument("--skew", type=float, default=3.0, help="max clock skew, s (default 3)")
    parser.add_argument("--skews", help="comma-separated clock skew per backend, s (overrides)")
    parser.add_argument("--drift", type=float, default=0.0, help="clock drift, s/hour (default 0)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=float, default=Farm().start, help="epoch of the start")
    parser.add_argument("--addresses", help="comma-separated backend addresses")
    parser.add_argument("--zones", help="comma-separated zones per backend (UTC, +0100, ...)")
    parser.add_argument("--formats", help=f"comma-separated per backend: {', '.join(FORMATS)}")
    parser.add_argument("--garbage", type=float, default=Farm().garbage_share)
    parser.add_argument("--idle", type=float, default=Farm().idle_share, help="share of 408s")
    parser.add_argument(
        "--huge", type=float, default=Farm().huge_share, help="share of 1-8 KB URIs"
    )
    parser.add_argument("--paths", type=int, default=Farm().paths, help="popular paths")
    parser.add_argument(
        "--no-rare", dest="rare", action="store_false", help="only popular paths, no rare URIs"
    )
    parser.add_argument(
        "--gzip",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="gzip backend N's log (repeatable)",
    )
    parser.add_argument(
        "--check-samples",
        type=Path,
        metavar="DIR",
        help="write the sample set into DIR if any file is missing",
    )
    return parser


def _split(text: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in text.split(",")) if text else None


def farm_from_args(args: argparse.Namespace) -> Farm:
    """The Farm the command line asks for."""
    requests = args.lines or 10_000
    if args.duration:
        requests = max(1, round(args.duration * args.rate))
    options: dict[str, object] = {}
    for name in ("addresses", "zones", "formats"):
        value = _split(getattr(args, name))
        if value:
            options[name] = value
    if args.skews:
        options["skews"] = tuple(float(part) for part in args.skews.split(","))
    return Farm(
        backends=args.backends,
        rate=args.rate,
        requests=requests,
        skew=args.skew,
        drift=args.drift,
        seed=args.seed,
        start=args.start,
        garbage_share=args.garbage,
        idle_share=args.idle,
        huge_share=args.huge,
        paths=args.paths,
        rare=args.rare,
        **options,  # type: ignore[arg-type]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: write a farm into OUT, or check the sample set."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.check_samples is not None:
        written = check_samples(args.check_samples)
        print(f"{args.check_samples}: sample set {'written' if written else 'present'}")
        return 0
    if args.out is None:
        parser.error("OUT is required (or --check-samples DIR)")
    farm = farm_from_args(args)
    if not 1 <= farm.backends <= 64 or farm.rate <= 0:
        parser.error("--backends must be 1-64 and --rate positive")
    for name in ("addresses", "skews"):
        if 0 < len(getattr(farm, name)) < farm.backends:
            parser.error(f"--{name} needs one value per backend")
    paths = write_farm(farm, args.out, frozenset(args.gzip))
    print("\n".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
