"""One clock in the output: the zone a merge writes its times in, and the mixed-format note."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from bench import genlogs
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mergelogs.accesslog import (
    STAMP_LEN,
    AccessParser,
    StampWriter,
    line_format,
    parse_zone,
    stamp_epoch,
    zone_stamp,
)
from mergelogs.cli import main
from mergelogs.merge import Backend, Merger, Settings
from mergelogs.zones import PEEK_MAX, choose_zone, first_stamped, one_zone
from tests.mergelogs.conftest import BASE, clf, pen

MIXED = ("UTC", "America/New_York", "+0100", "+0530")
NEW_YORK = parse_zone("America/New_York")
BEFORE, AFTER = genlogs.DST_END_2026 - 10, genlogs.DST_END_2026 + 10


def make_farm(tmp_path, zones, formats=("combined",), requests=2000, name="farm"):
    """A farm of one backend per zone or format, 100 s across New York's DST end."""
    farm = genlogs.Farm(backends=max(len(zones), len(formats)), zones=zones, formats=formats,
                        rate=20.0, requests=requests, seed=5)
    out = tmp_path / name
    genlogs.write_farm(farm, out)
    return ["-p", str(out / genlogs.PEN_FILE),
            *(f"{farm.address(i)}:{out / genlogs.access_file(i + 1)}"
              for i in range(farm.backends))]


def merge(args, *options):
    result = CliRunner().invoke(main, [*args, *options])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes.splitlines(keepends=True), result.stderr


def stamps(lines):
    fields = AccessParser().fields
    return [line[start : start + STAMP_LEN]
            for line in lines for _, start, _ in [fields(line)] if start >= 0]


def wall_clock(stamp: bytes) -> dt.datetime:
    """The stamp's text read as an analyser reads it: the local time, offset ignored."""
    return dt.datetime.strptime(stamp[:20].decode(), "%d/%b/%Y:%H:%M:%S")


def outside_stamp(line: bytes) -> bytes:
    start = AccessParser().fields(line)[1]
    return line[:start] + line[start + STAMP_LEN :]


def test_mixed_zones_are_written_in_the_first_backends_zone(tmp_path):
    args = make_farm(tmp_path, MIXED)
    out, stderr = merge(args, "--summary")
    kept, _ = merge(args, "--keep-zones")
    assert len(out) == len(kept) == 2000
    times = stamps(out)
    assert {t[21:] for t in times} == {b"+0000"}
    assert all(a <= b for a, b in itertools.pairwise(map(wall_clock, times)))
    # only %t's text changed, and it names the same instant
    assert [outside_stamp(x) for x in out] == [outside_stamp(x) for x in kept]
    assert [stamp_epoch(t) for t in times] == [stamp_epoch(t) for t in stamps(kept)]
    assert {t[21:] for t in stamps(kept)} == {b"+0000", b"-0400", b"-0500", b"+0100", b"+0530"}
    assert any(not a <= b for a, b in itertools.pairwise(map(wall_clock, stamps(kept))))
    assert "times written in +0000 (the first backend's zone" in " ".join(stderr.split())
    assert merge(args, "--jobs", "1")[0] == merge(args, "--jobs", "3")[0] == out


def test_first_backends_zone_is_its_first_lines_offset(tmp_path):
    args = make_farm(tmp_path, ("+0530", "UTC"))
    out, _ = merge(args)
    assert {t[21:] for t in stamps(out)} == {b"+0530"}


def test_one_zone_farm_stays_byte_identical(tmp_path):
    """Every backend in New York across its DST end: each line's own text, -0400 then -0500."""
    args = make_farm(tmp_path, ("America/New_York",) * 3)
    out, stderr = merge(args, "--summary")
    kept, _ = merge(args, "--keep-zones")
    assert out == kept
    assert {t[21:] for t in stamps(out)} == {b"-0400", b"-0500"}
    assert "times kept as logged (every input in one zone" in " ".join(stderr.split())


def test_tz_follows_an_iana_zone_across_its_dst_change(tmp_path):
    args = make_farm(tmp_path, ("UTC", "+0530"))
    out, _ = merge(args, "--tz", "America/New_York")
    times = stamps(out)
    assert [t[21:] for t in times] == sorted(t[21:] for t in times)  # -0400, then -0500
    assert {t[21:] for t in times} == {b"-0400", b"-0500"}
    assert all(zone_stamp(stamp_epoch(t), NEW_YORK) == t for t in times)
    fixed, _ = merge(args, "--tz", "-0330")
    assert {t[21:] for t in stamps(fixed)} == {b"-0330"}
    assert [outside_stamp(x) for x in fixed] == [outside_stamp(x) for x in out]


def test_utc_is_tz_plus_zero(tmp_path):
    args = make_farm(tmp_path, ("+0100", "-0800"))
    assert merge(args, "--utc")[0] == merge(args, "--tz", "+0000")[0]
    assert {t[21:] for t in stamps(merge(args, "--utc")[0])} == {b"+0000"}


@pytest.mark.parametrize("options", [["--tz", "Mars/Olympus"], ["--tz", "+2400"],
                                     ["--tz", "UTC", "--keep-zones"], ["--utc", "--tz", "UTC"]])
def test_bad_zone_options_are_usage_errors(tmp_path, options):
    args = make_farm(tmp_path, ("UTC",), requests=10)
    result = CliRunner().invoke(main, [*args, *options])
    assert result.exit_code == 2, result.output


def test_mixed_formats_are_noted_once(tmp_path):
    args = make_farm(tmp_path, ("UTC",), formats=("combined", "common", "vhost_combined"))
    _, stderr = merge(args)
    assert stderr.count("mix log formats") == 1
    assert "access_log.host2: common" in stderr and "host3: vhost_combined" in stderr
    same = make_farm(tmp_path, ("UTC",), formats=("combined", "nginx", "combined_debian"),
                     name="same")
    assert merge(same)[1] == ""


@pytest.mark.parametrize(("fmt", "shape"), [
    ("combined", "combined"), ("common", "common"), ("combined_debian", "combined"),
    ("nginx", "combined"), ("vhost_combined", "vhost_combined")])
def test_line_format_by_shape(fmt, shape):
    hit = genlogs.Hit(b"01/Nov/2026:01:00:00 -0500", b'GET /a"b HTTP/1.1', 200, 0,
                      agent=b"x y")
    line = genlogs.access_line(fmt, "10.0.0.1", hit)
    assert line_format(line) == shape
    assert line_format(line.rstrip(b"\n") + b" 1234\n") == shape.replace(
        "combined", "custom").replace("common", "custom")
    assert line_format(b"10.0.0.1 - - [01/Nov/2026:01:00:00 -0500] junk\n") is None


def test_one_zone_allows_a_dst_change_between_first_lines():
    before, after = zone_stamp(BEFORE, NEW_YORK), zone_stamp(AFTER, NEW_YORK)
    assert before[21:] != after[21:] and one_zone(before, after)
    assert not one_zone(zone_stamp(BEFORE, 0), zone_stamp(BEFORE, -18000))
    assert not one_zone(zone_stamp(BEFORE, -14400), zone_stamp(AFTER, 3600))
    # the same offsets at one instant are two zones, whatever happened later
    assert not one_zone(zone_stamp(AFTER, -14400), after)


def test_choose_zone():
    utc, paris = zone_stamp(BEFORE, 0), zone_stamp(BEFORE, parse_zone("Europe/Paris"))
    assert choose_zone([None, paris, utc], None, False).zone == "+0100"
    assert choose_zone([utc, utc, None], None, False).zone is None
    assert choose_zone([None, None], None, False).zone is None
    assert choose_zone([utc, paris], "Asia/Tokyo", False).zone == "Asia/Tokyo"
    assert choose_zone([utc, paris], None, True).zone is None


def test_first_stamped_puts_every_line_back():
    line = b'10.0.0.1 - - [01/Nov/2026:01:00:00 -0500] "GET / HTTP/1.1" 200 5\n'
    lines = [b"junk\n", b"\n", line, b"more\n"]
    found, stream = first_stamped(iter(lines))
    assert found == line and list(stream) == lines
    found, stream = first_stamped(iter([b"x\n"] * (PEEK_MAX + 5)))
    assert found is None and len(list(stream)) == PEEK_MAX + 5


def test_stamp_writer_counts_from_its_origin():
    writer = StampWriter(parse_zone("+0530"), origin=BEFORE)
    assert writer.stamp(0) == zone_stamp(BEFORE, 19800) == writer.stamp(0)
    assert writer.stamp(20)[21:] == b"+0530"


def test_logs_of_one_zone_starting_across_its_dst_change_keep_their_text(write):
    """Two New York backends, one whose log starts before the DST end (-0400) and one after
    (-0500): one zone, so every byte is kept; a backend at +0100 then makes them differ."""
    uri = b"GET /a HTTP/1.1"
    first = [clf("10.0.0.254", BEFORE + i, uri, offset=-14400) for i in range(5)]
    second = [clf("10.0.0.254", AFTER + i, uri, offset=-18000) for i in range(5)]
    paris = [clf("10.0.0.254", BEFORE + i, uri, offset=3600) for i in range(5)]
    pens = [pen("192.0.2.1", BEFORE + i, "10.0.0.1", uri) for i in range(5)]
    args = ["-p", write("pen.log", pens), f"10.0.0.1:{write('a.log', first)}",
            f"10.0.0.2:{write('b.log', second)}"]
    out, _ = merge(args)
    assert out == merge(args, "--keep-zones")[0]
    assert [outside_stamp(x) for x in out[5:]] == [outside_stamp(x) for x in second]
    out, _ = merge([*args, f"10.0.0.3:{write('c.log', paris)}"])
    assert {t[21:] for t in stamps(out)} == {b"-0400"}


@st.composite
def zoned_logs(draw):
    """1-3 logs in random zones, clients of every shape (IPv4, IPv6, after a %v:%p), junk."""
    logs = []
    for _ in range(draw(st.integers(1, 3))):
        offset = draw(st.sampled_from([0, -18000, 3600, 19800]))
        lines, now = [], BASE
        for _ in range(draw(st.integers(0, 25))):
            now += draw(st.integers(0, 3))
            if draw(st.integers(0, 5)) == 0:
                lines.append(draw(st.binary(max_size=40)).replace(b"\n", b"") + b"\n")
                continue
            client = draw(st.sampled_from(["10.0.0.254", "2001:db8::fe", "10.0.0.254:80"]))
            line = clf(client, now, b"GET /%d HTTP/1.1" % draw(st.integers(0, 3)), offset)
            lines.append(b"www.example.com:443 " + line if draw(st.booleans()) else line)
        logs.append(lines)
    return logs


@settings(max_examples=100, deadline=None)
@given(zoned_logs(), st.sampled_from(["+0000", "-0330", "America/New_York"]))
def test_a_written_zone_changes_only_the_stamp_text(logs, zone):
    pens = [pen(f"192.0.2.{i}", BASE + i, f"10.0.0.{i % 3 + 1}", b"GET /%d HTTP/1.1" % (i % 4))
            for i in range(60)]
    backends = [Backend(f"10.0.0.{i + 1}", f"log{i}") for i in range(len(logs))]
    kept = list(Merger(backends, logs, pens, Settings()))
    written = list(Merger(backends, logs, pens, Settings(zone=zone)))
    assert len(kept) == len(written)
    fields = AccessParser().fields
    for old, new in zip(kept, written, strict=True):
        epoch, start, _ = fields(old)
        if epoch is None:
            assert new == old
            continue
        assert new[start : start + STAMP_LEN] == zone_stamp(epoch, parse_zone(zone))
        assert outside_stamp(new) == outside_stamp(old)


def test_stamps_at_the_ends_of_the_calendar_are_not_usable_times():
    """No zone could write them (year 0 or 10000): such a line keeps its text, unparsable."""
    for stamp in (b"31/Dec/9999:23:59:59 -1200", b"01/Jan/0001:00:00:00 +1400",
                  b"31/Dec/9999:00:00:00 +0000"):
        assert stamp_epoch(stamp) is None
    for text in (b"02/Jan/0001:00:00:00 +0000", b"30/Dec/9999:23:59:59 +0000",
                 b"01/Jan/1850:00:00:00 +0000"):
        epoch = stamp_epoch(text)
        assert epoch is not None
        for zone in ("+2359", "-2359", "America/New_York", "Asia/Kolkata"):  # LMT: -4:56:02
            assert stamp_epoch(zone_stamp(epoch, parse_zone(zone))) == epoch
