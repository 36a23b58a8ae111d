"""The command interpreter shared by penctl, -F files and -o (no sockets)."""

import pytest

from pen.commands import execute, run_file, run_lines, split_line
from pen.config import ListenSpec, Settings
from pen.conntable import ConnectionInfo
from pen.errors import StartupError
from pen.savecfg import render_config
from pen.servers import Server, ServerTable
from pen.state import NullHooks, PenState

NOW = 1_000_000.0


class Hooks(NullHooks):
    def __init__(self):
        self.reopened = 0
        self.exited = False
        self.moved = []

    def reopen_log(self, target):
        if target is not None and target.startswith("/nonexistent/"):
            raise FileNotFoundError(2, "No such file or directory")
        self.reopened += 1

    def request_exit(self):
        self.exited = True

    def status_page(self):
        return "<html>status</html>\n"

    def pid(self):
        return 4242

    def move_listener(self, spec):
        if spec.port == 9:
            raise StartupError(f"cannot listen on {spec}: Address already in use")
        self.moved.append(spec)


@pytest.fixture
def state():
    table = ServerTable([Server("127.0.0.1", 18081), Server("127.0.0.1", 18082)])
    return PenState(Settings(), table, hooks=Hooks())


def test_split_line_cuts_at_crlf_and_splits_on_spaces_only():
    assert split_line("server  1 blacklist 5\r\nignored") == ["server", "1", "blacklist", "5"]
    assert split_line("a\tb c") == ["a\tb", "c"]


def test_get_and_set_numbers(state):
    assert execute(state, "blacklist", NOW) == "30\n"
    assert execute(state, "blacklist 17", NOW) == "17\n"
    assert state.table.blacklist_time == 17
    assert execute(state, "timeout", NOW) == "3\n"
    assert execute(state, "tracking 60", NOW) == "60\n"
    assert state.clients.tracking == 60
    assert execute(state, "clients_max 10", NOW) == "2048\n"
    assert execute(state, "client_acl 12", NOW) == "0\n"
    assert execute(state, "client_acl 3", NOW) == "3\n"


def test_servers_and_server_command(state):
    assert execute(state, "servers", NOW) == (
        "0 addr 127.0.0.1 port 18081 conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0\n"
        "1 addr 127.0.0.1 port 18082 conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0\n"
    )
    execute(state, "server 1 max 4 hard 6 weight 2 prio 3 acl 5 port 9000", NOW)
    s = state.table.servers[1]
    assert (s.maxc, s.hard, s.weight, s.prio, s.acl, s.port) == (4, 6, 2, 3, 5, 9000)
    execute(state, "server 3 address 127.0.0.9 port 100", NOW)
    assert len(state.table) == 4 and state.table.servers[3].address == "127.0.0.9"
    assert state.table.servers[2].unused


def test_server_blacklist(state):
    execute(state, "server 0 blacklist 100", NOW)
    assert not state.table.available(0, NOW + 99)
    assert state.table.available(0, NOW + 100)
    execute(state, "server 0 blacklist 0", NOW)
    assert state.table.available(0, NOW)


def test_acl_commands(state):
    execute(state, "acl 1 permit 127.0.0.1", NOW)
    execute(state, "acl 1 deny ::1/128", NOW)
    assert state.acls.permits(1, "127.0.0.1")
    assert not state.acls.permits(1, "::1")
    execute(state, "no acl 1", NOW)
    assert state.acls.permits(1, "10.0.0.1")
    assert "invalid acl entry" in execute(state, "acl 1 permit 300.1.1.1", NOW)


def test_flags_and_mode(state):
    assert execute(state, "mode", NOW) == "no hash no roundrobin no stubborn no weight no prio\n"
    execute(state, "hash", NOW)
    execute(state, "roundrobin", NOW)
    execute(state, "no roundrobin", NOW)
    execute(state, "http", NOW)
    assert execute(state, "mode", NOW) == "hash no roundrobin no stubborn no weight no prio\n"
    assert state.settings.http


def test_log_exit_status_pid(state):
    assert execute(state, "log /tmp/x.log", NOW) == "/tmp/x.log\n"
    assert state.hooks.reopened == 1
    execute(state, "no log", NOW)
    assert state.settings.log is None and state.hooks.reopened == 2
    assert execute(state, "exit", NOW) == "Exit is not enabled; restart with -X flag\n"
    state.settings.exit_enabled = True
    assert execute(state, "exit", NOW) == ""
    assert state.hooks.exited
    assert execute(state, "pid", NOW) == "4242\n"
    assert execute(state, "status", NOW) == "<html>status</html>\n"


def test_unknown_and_comments(state):
    assert execute(state, "block", NOW) == "do_cmd: ignoring command starting with 'block'\n"
    assert execute(state, "# comment", NOW) == ""
    assert execute(state, "", NOW) == ""


def test_recent(state):
    record = state.clients.touch("127.0.0.2", NOW - 10)
    record.sx, record.rx = 172, 82
    state.clients.touch("127.0.0.3", NOW - 1000)
    assert execute(state, "recent", NOW) == "127.0.0.2 connects 1 sx 172 rx 82\n"


def test_run_lines_and_include(state, tmp_path):
    inner = tmp_path / "inner.cfg"
    inner.write_text("blacklist 19\n")
    replies = run_lines(state, ["# cfg", f"include {inner}", "server 0 port 100", "pid"], NOW)
    assert replies == ["4242\n"]  # pen does not answer with the included file's replies
    assert state.settings.blacklist == 19
    assert state.table.servers[0].port == 100


def test_failing_log_keeps_the_old_target(state):
    execute(state, "log /tmp/x.log", NOW)
    answer = execute(state, "log /nonexistent/x", NOW)
    assert answer == "log: cannot open /nonexistent/x: No such file or directory\n"
    assert state.settings.log == "/tmp/x.log"


def test_server_with_bad_address_or_port_changes_nothing(state):
    answer = execute(state, "server 0 max 9 address no.such.host.invalid", NOW)
    assert answer.startswith("server 0: unknown or invalid address 'no.such.host.invalid'")
    answer = execute(state, "server 5 max 9 port 99999", NOW)
    assert answer == "server 5: invalid port '99999': port out of range 1..65535\n"
    assert state.table.servers[0].maxc == 0 and len(state.table) == 2


def test_include_loop_is_refused_before_any_line_runs(state, tmp_path):
    first, second = tmp_path / "a.cfg", tmp_path / "b.cfg"
    first.write_text(f"blacklist 7\ninclude {second}\n")
    second.write_text(f"include {first}\n")
    answer = execute(state, f"include {first}", NOW)
    assert answer == f"include: include loop: {first} -> {second} -> {first}\n"
    assert state.settings.blacklist == 30
    assert execute(state, f"include {tmp_path}/missing.cfg", NOW) == (
        "include: No such file or directory\n")


def test_rereading_a_file_redefines_its_acls_instead_of_appending(state, tmp_path):
    cfg = tmp_path / "pen.cfg"
    cfg.write_text("acl 1 permit 127.0.0.1\nacl 1 deny 10.0.0.0 255.0.0.0\n")
    execute(state, "acl 2 permit 127.0.0.3", NOW)
    for _ in range(3):
        run_file(state, str(cfg), NOW)
    assert [e.text for e in state.acls.lists[1]] == ["permit 127.0.0.1",
                                                     "deny 10.0.0.0 255.0.0.0"]
    assert [e.text for e in state.acls.lists[2]] == ["permit 127.0.0.3"]
    execute(state, "acl 1 permit 127.0.0.9", NOW)  # the control port still appends
    assert len(state.acls.lists[1]) == 3


@pytest.mark.parametrize(("line", "answer"), [
    ("close", "Forcibly closing connection 0\n"),
    ("close 499", "Forcibly closing connection 499\n"),
    ("close 500", "Connection 500 out of range\n"),
    ("connection -1", "Connection -1 out of range\n"),
    ("connection 7", "Connection 7:\nstate = 0\ndownfd = -1, upfd = -1\n"
                     "client = 0, server = 0\npend = 0\n"),
    ("socket 5", "Socket 5 belongs to connection -1\n"),
    ("idlers", "Idlers: 0/0\n"),
    ("tcp_fastclose", "do_cmd: ignoring tcp_fastclose without argument\n"),
    ("source bogus", "unable to set source address to 'bogus'"),
    ("tarpit_acl", "tarpit_acl = -1"),
    ("multi_accept 3", "do_cmd: ignoring command starting with 'multi_accept'\n"),
    ("no block", ""),
    ("peek", ""),
    ("dsr_ip 1.2.3.4", "do_cmd: not supported by this pen\n"),
    ("write", "write: no file given and no -F file\n"),
])
def test_command_replies(state, line, answer):
    assert execute(state, line, NOW) == answer


def test_connection_shows_what_the_balancer_reports(state):
    class Live(Hooks):
        closed: list[int] = []

        def connection(self, number):
            return ConnectionInfo(2, 6, 7, 0, 1, 0) if number == 3 else None

        def close_connection(self, number):
            self.closed.append(number)

    state.hooks = Live()
    assert execute(state, "connection 3", NOW) == (
        "Connection 3:\nstate = 2\ndownfd = 6, upfd = 7\nclient = 0, server = 1\npend = 0\n")
    execute(state, "close 3", NOW)
    assert state.hooks.closed == [3]


def test_settings_commands(state):
    execute(state, "tcp_fastclose both", NOW)
    execute(state, "source 127.0.0.1", NOW)
    execute(state, "keepalive", NOW)
    execute(state, "transparent", NOW)
    execute(state, "idlers 3", NOW)
    s = state.settings
    assert (s.tcp_fastclose, s.source, s.keepalive, s.transparent, s.idlers) == (
        "both", "127.0.0.1", True, True, 3)
    execute(state, "tcp_fastclose sideways", NOW)
    execute(state, "no keepalive", NOW)
    execute(state, "no transparent", NOW)
    assert (s.tcp_fastclose, s.keepalive, s.transparent) == ("off", False, False)


def test_write_reads_back_to_the_same_state(state, tmp_path):
    state.settings.listen_text = "8080"
    for line in ["acl 3 permit 127.0.0.0 255.0.0.0", "acl 3 deny ::1/64", "acl 9 deny 10.1.1.1",
                 "client_acl 3", "control_acl 9", "blacklist 12", "tracking 40", "timeout 4",
                 "debug 2", "ascii", "hash", "stubborn", "http", "weight", "prio",
                 "tcp_fastclose up", "log /tmp/pen.log", "web_stats /tmp/pen.html",
                 "server 1 max 5 hard 7 weight 3 prio 2 acl 3", "server 3 address /tmp/sock",
                 "server 4 address 127.0.0.9 port 9", "keepalive", "source 127.0.0.1",
                 "transparent", "idlers 2"]:
        execute(state, line, NOW)
    path = tmp_path / "saved.cfg"
    assert execute(state, f"write {path}", NOW) == ""
    text = path.read_text()
    assert text.splitlines()[1] == f"# pen -F '{path}' 8080"
    fresh = PenState(Settings(listen_text="8080"), hooks=Hooks())  # LISTEN: command line
    replies = run_file(fresh, str(path), NOW)
    assert not [r for r in replies if ":" in r and not r.startswith("Idlers")]  # no errors
    assert fresh.settings == state.settings
    assert fresh.acls == state.acls
    assert fresh.table.servers == state.table.servers
    assert render_config(fresh, str(path), NOW) == text


def test_write_defaults_to_the_f_file_and_reports_write_errors(state, tmp_path):
    state.settings.config_file = str(tmp_path / "pen.cfg")
    assert execute(state, "write", NOW) == ""
    assert (tmp_path / "pen.cfg").read_text().startswith("# Generated by pen ")
    assert execute(state, "write /nonexistent/dir/pen.cfg", NOW) == (
        "write: cannot write /nonexistent/dir/pen.cfg: No such file or directory\n")


def test_include_nesting_is_bounded(state, tmp_path):
    files = [tmp_path / f"{i}.cfg" for i in range(20)]
    for here, there in zip(files, files[1:], strict=False):
        here.write_text(f"include {there}\n")
    files[-1].write_text("blacklist 5\n")
    answer = execute(state, f"include {files[0]}", NOW)
    assert answer.startswith("include: include nested deeper than 16: ")
    assert state.settings.blacklist == 30


def test_listen_moves_through_the_hook_and_keeps_the_old_address_on_error(state):
    state.settings.listen, state.settings.listen_text = ListenSpec("0.0.0.0", 8080), "8080"
    assert execute(state, "listen 127.0.0.1:9000", NOW) == "127.0.0.1:9000\n"
    assert state.settings.listen == ListenSpec("127.0.0.1", 9000)
    assert execute(state, "listen 127.0.0.1:9000", NOW) == "127.0.0.1:9000\n"
    assert state.hooks.moved == [ListenSpec("127.0.0.1", 9000)]  # the same address: no move
    assert execute(state, "listen 127.0.0.1:9", NOW) == (
        "listen: cannot listen on 127.0.0.1:9: Address already in use\n")
    assert execute(state, "listen 127.0.0.1:0", NOW).startswith("listen: invalid listen")
    assert execute(state, "listen", NOW) == "127.0.0.1:9000\n"
    assert state.settings.listen == ListenSpec("127.0.0.1", 9000)


def test_listen_before_the_balancer_starts_only_sets_the_address():
    state = PenState(Settings(listen=ListenSpec("0.0.0.0", 8080), listen_text="8080"))
    assert execute(state, "listen /tmp/pen.sock", NOW) == "/tmp/pen.sock\n"
    assert state.settings.listen == ListenSpec("", 0, "/tmp/pen.sock")
