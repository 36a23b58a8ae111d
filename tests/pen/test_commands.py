"""The command interpreter shared by penctl, -F files and -o (no sockets)."""

import pytest

from pen.commands import execute, run_lines, split_line
from pen.config import Settings
from pen.servers import Server, ServerTable
from pen.state import NullHooks, PenState

NOW = 1_000_000.0


class Hooks(NullHooks):
    def __init__(self):
        self.reopened = 0
        self.exited = False

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
    assert replies == ["19\n", "4242\n"]
    assert state.table.servers[0].port == 100
