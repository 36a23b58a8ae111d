"""The farm log generator keeps its promises, and the scorer scores what it is given."""

import gzip
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from bench import genlogs, score

from mergelogs.accesslog import AccessParser, stamp_offset, unescape
from pen.penlog import KEEP_MAX, parse_line, reduce_request

FARM = genlogs.Farm(
    backends=5,
    formats=genlogs.FORMATS,
    rate=200.0,
    requests=4000,
    skew=2.5,
    seed=7,
    idle_share=0.005,
    start=genlogs.DST_END_2026 - 10.0,
)
SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"


@pytest.fixture(scope="module")
def farm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("farm")
    genlogs.write_farm(FARM, out, frozenset({2}))
    assert FARM.formats == ("combined", "common", "combined_debian", "vhost_combined", "nginx")
    return out


def read(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.splitlines(keepends=True)


def backend_lines(farm_dir: Path) -> list[list[bytes]]:
    return [read(backend.path) for backend in score.read_header(farm_dir / "truth.tsv")]


def truth_rows(farm_dir: Path) -> list[list[str]]:
    lines = (farm_dir / "truth.tsv").read_text().splitlines()
    return [line.split("\t") for line in lines if not line.startswith("#")]


def test_every_pen_line_parses_and_is_time_ordered(farm_dir):
    records = [parse_line(line) for line in read(farm_dir / "pen.log")]
    assert None not in records
    epochs = [record.epoch for record in records]
    assert epochs == sorted(epochs)
    assert {record.server for record in records} == {f"10.0.0.{n}" for n in range(1, 6)}
    assert any(":" in record.client for record in records), "no IPv6 client"
    assert all(len(record.request) <= KEEP_MAX for record in records)


def test_every_access_line_parses_with_its_zone(farm_dir):
    parser = AccessParser()
    offsets = []
    for lines in backend_lines(farm_dir):
        parsed = [parser.parse(raw) for raw in lines]
        assert all(line.epoch is not None and line.request is not None for line in parsed)
        assert {line.client for line in parsed} == {b"10.0.0.254"}
        offsets.append({stamp_offset(line.raw[line.stamp_start : line.stamp_start + 26])
                        for line in parsed})  # fmt: skip
    assert offsets == [{0}, {-4 * 3600, -5 * 3600}, {3600}, {19800}, {-8 * 3600}]


def test_backend_lines_are_in_completion_order_not_stamp_order(farm_dir):
    parser = AccessParser()
    for lines in backend_lines(farm_dir):
        epochs = [parser.parse(raw).epoch for raw in lines]
        late = sum(1 for before, after in zip(epochs, epochs[1:], strict=False) if after < before)
        assert late > 0
        assert max(epochs) - min(epochs) < FARM.requests / FARM.rate + FARM.max_duration + 10


def test_truth_names_the_pen_line_of_every_request(farm_dir):
    pen = read(farm_dir / "pen.log")
    backends = score.read_header(farm_dir / "truth.tsv")
    lines = backend_lines(farm_dir)
    rows = truth_rows(farm_dir)
    assert Counter(int(row[0]) for row in rows) == {i + 1: len(ls) for i, ls in enumerate(lines)}
    parser = AccessParser()
    used = set()
    skews = {}
    for number, line_no, client, epoch, pen_line in rows:
        line = parser.parse(lines[int(number) - 1][int(line_no) - 1])
        if epoch == "-":
            assert (client, pen_line) == ("-", "-")
            assert line.request in (b"-", b"")
            continue
        record = parse_line(pen[int(pen_line) - 1])
        assert (record.client, record.epoch) == (client, int(epoch))
        assert record.server == backends[int(number) - 1].address
        assert record.request == reduce_request(unescape(line.request))
        assert pen_line not in used
        used.add(pen_line)
        skews.setdefault(number, set()).add(line.epoch - record.epoch)
    for seen in skews.values():
        assert max(seen) - min(seen) <= 1 and max(abs(s) for s in seen) <= FARM.skew + 1


def test_drift_moves_a_backend_clock_over_time(tmp_path):
    farm = genlogs.Farm(backends=2, rate=100.0, requests=3000, skews=(0.5, 0.5), drift=360.0)
    genlogs.write_farm(farm, tmp_path)
    assert "drift=360" in (tmp_path / "truth.tsv").read_text()
    parser = AccessParser()
    lines = read(tmp_path / "access_log.host1")
    pen_epochs = {
        int(line_no): int(epoch)
        for number, line_no, _, epoch, _ in truth_rows(tmp_path)
        if number == "1" and epoch != "-"
    }
    deltas = [(e, parser.parse(lines[n - 1]).epoch - e) for n, e in pen_epochs.items()]
    start, end = min(e for e, _ in deltas), max(e for e, _ in deltas)
    early = {d for e, d in deltas if e < start + 5}
    late = {d for e, d in deltas if e > end - 5}
    assert early == {0, 1}, "0.5 s ahead, +0.1 s per second"
    assert min(late) >= 2 and max(late) == 4, "3 s more after 30 s"


def test_long_non_ascii_and_escaped_requests_are_there(farm_dir):
    parser = AccessParser()
    lines = backend_lines(farm_dir)
    requests = [parser.parse(raw).request for ls in lines for raw in ls]
    assert any(len(unescape(r)) > KEEP_MAX for r in requests)
    apache, nginx = b"".join(lines[0]), b"".join(lines[4])
    assert b"\\xc3" in apache and b'\\"' in apache and b"\\xC3" not in apache
    assert b"\\xC3" in nginx and b"\\x22" in nginx and b'\\"' not in nginx
    assert b'"" 400 0' in nginx and b'"-" 408 -' in apache
    popular = Counter(requests).most_common(1)[0][1]
    assert popular > FARM.requests / 50, "popular URLs should repeat"


def test_garbage_pen_lines_match_no_backend_request(farm_dir):
    parser = AccessParser()
    requests = {
        reduce_request(unescape(parser.parse(raw).request))
        for ls in backend_lines(farm_dir)
        for raw in ls
    }
    referenced = {int(row[4]) for row in truth_rows(farm_dir) if row[4] != "-"}
    pen = read(farm_dir / "pen.log")
    garbage = [parse_line(line) for n, line in enumerate(pen, 1) if n not in referenced]
    assert len(garbage) > FARM.requests * 0.02
    assert not any(record.request in requests for record in garbage)
    assert any(record.request.startswith(b"name=") and b".." in record.request
               for record in garbage)  # fmt: skip


def test_same_seed_same_farm_and_a_smaller_farm_is_its_start():
    small = genlogs.Farm(backends=2, requests=300, seed=3)
    first = list(genlogs.generate(small))
    assert first == list(genlogs.generate(small))
    bigger = list(genlogs.generate(genlogs.Farm(backends=2, requests=600, seed=3)))
    pen_small = [item.data for item in first if isinstance(item, genlogs.LogLine)
                 and item.file < 0][:250]  # fmt: skip
    pen_big = [item.data for item in bigger if isinstance(item, genlogs.LogLine) and item.file < 0]
    assert pen_big[:250] == pen_small
    other = list(genlogs.generate(genlogs.Farm(backends=2, requests=300, seed=4)))
    assert other != first


def test_apache_escape_matches_ap_escape_logitem():
    assert genlogs.apache_escape(b'GET /caf\xc3\xa9?a="b"\\ \t\x01') == (
        b'GET /caf\\xc3\\xa9?a=\\"b\\"\\\\ \\t\\x01'
    )
    assert unescape(genlogs.apache_escape(bytes(range(1, 256)))) == bytes(range(1, 256))


def test_perfect_merge_scores_100_and_faults_are_counted(farm_dir):
    truth, pen = farm_dir / "truth.tsv", farm_dir / "pen.log"
    merged = score.perfect_merge(truth)
    result = score.score(truth, pen, merged)
    assert (result.lost, result.extra, result.out_of_order) == (0, 0, 0)
    assert result.right == result.scored == result.truth_with_pen == result.exact
    assert result.kept == result.no_pen > 0
    assert result.accuracy == 1.0

    faulty = merged[1:] + [merged[5]]
    faulty[10] = AccessParser().parse(faulty[10]).with_client(b"192.0.2.99")
    result = score.score(truth, pen, faulty, examples=5)
    assert (result.lost, result.extra) == (1, 1)
    assert result.scored - result.right == 1
    assert result.wrong and "192.0.2.99" in result.wrong[0]
    assert sum(result.wrong_kinds.values()) == 1
    assert next(iter(result.wrong_kinds)).endswith("/>10 s"), "192.0.2.99 never sent anything"


def test_c_mergelogs_output_is_scoreable(tmp_path):
    farm = genlogs.Farm(backends=2, rate=100.0, requests=3000, skew=2.0, seed=5, huge_share=0.005)
    genlogs.write_farm(farm, tmp_path)
    servers = [f"10.0.0.{b}:{tmp_path / genlogs.access_file(b)}" for b in (1, 2)]
    out = subprocess.run(
        ["/usr/bin/mergelogs", "-p", str(tmp_path / "pen.log"), *servers],
        env={**os.environ, "TZ": "UTC"},
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    result = score.score(tmp_path / "truth.tsv", tmp_path / "pen.log", out.splitlines(True))
    huge = sum(len(line) >= 1024 for b in (1, 2) for line in read(tmp_path / f"access_log.host{b}"))
    assert huge > 0
    assert (result.lost, result.extra) == (huge, 0), "C drops lines of 1 KB or more"
    assert result.scored + result.no_pen == farm.requests - huge
    assert result.kept == 0, "C puts the backend address on unmatched lines"
    assert 0.3 < result.accuracy < 0.99, "C mergelogs misses long and non-ASCII requests"


def test_script_writes_gzip_and_checks_samples(tmp_path):
    assert genlogs.main([str(tmp_path / "f"), "--backends", "2", "--lines", "200",
                         "--gzip", "1"]) == 0  # fmt: skip
    assert gzip.decompress((tmp_path / "f" / "access_log.host1.gz").read_bytes())
    assert (tmp_path / "f" / "access_log.host2").stat().st_size > 0
    argv = [str(tmp_path / "g"), "--backends", "2", "--duration", "3", "--skews", "0.5,-1.25"]
    assert genlogs.main(argv) == 0
    header = (tmp_path / "g" / "truth.tsv").read_text()
    assert "\tclock +0.500 s\n" in header and "\tclock -1.250 s\n" in header
    assert len(truth_rows(tmp_path / "g")) == 300
    assert genlogs.check_samples(tmp_path / "s") is True
    assert genlogs.check_samples(tmp_path / "s") is False


def test_committed_samples_are_what_the_generator_writes(tmp_path):
    genlogs.check_samples(tmp_path)
    for path in genlogs.sample_paths(SAMPLES):
        assert path.read_bytes() == (tmp_path / path.name).read_bytes(), path.name


def test_bench_script_runs_both_tools_end_to_end(tmp_path, capsys):
    from bench import bench_mergelogs

    argv = ["--work", str(tmp_path), "--lines", "1500", "--c-lines", "500", "--backends", "2"]
    assert bench_mergelogs.main(argv) == 0
    out = capsys.readouterr().out
    assert "FAILED" not in out
    ours = [line for line in out.splitlines() if line.startswith("ours ")]
    assert len(ours) == 2 and all("lost 0  dup/unknown 0" in line for line in ours)
    assert "C mergelogs (TZ=UTC)" in out
    assert "speed ratio ours/C" in out
    assert "runtime ceiling" in out and "speed ratio ours/ceiling" in out
