"""No traces: nothing of a request survives it: processes (daemonized, whatever the script's
end), mounts, files, cgroups.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""

import os
import time

import pytest

from helpers import (NAME_SNIPPET, S, MiB, cgroups_v1_available, finish_script, new_marker, run_ok, run_script,
                     start_script, wait_gone, wait_seen)


# A daemon that calls setsid, double-forks, takes the marker as its name and sleeps forever,
# holding every inherited descriptor.
DAEMON_SNIPPET = NAME_SNIPPET + S('''
    def spawn_daemon(tag):
        import os, time
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                os.close(r)
                set_name(tag)
                os.write(w, b"1")
                while True:
                    time.sleep(1)
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        ok = os.read(r, 1) == b"1"
        os.close(r)
        return ok
''')


def host_cgroup_dirs(pid):
    """{controller: host directory} of a host pid's v1 memory and pids cgroups."""
    out = {}
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(","):
                if c in ("memory", "pids"):
                    out[c] = os.path.join("/sys/fs/cgroup", c) + (path if path != "/" else "")
    return out


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def _daemon_script(marker, tail):
    return DAEMON_SNIPPET + S('''
        import os, time

        def main():
            assert spawn_daemon(@MARK@)
            print("spawned", flush=True)
            time.sleep(0.5)
            @TAIL@
    ''').replace("@MARK@", repr(marker[:6]) + " + " + repr(marker[6:])).replace("@TAIL@", tail)


class TestNoTraces:

    @pytest.mark.parametrize("how, tail, kind", [
        ("success", "return 'done'", None),
        ("exception", "raise ValueError('boom')", "exception"),
        ("exit", "os._exit(3)", "exited"),
        ("self_kill", "os.kill(os.getpid(), 9)", "killed"),
        ("memory", "return bytearray(3 << 30)", "memory_limit"),
        ("timeout", "time.sleep(100)", "timeout"),
    ])
    def test_daemonized_process_does_not_survive(self, fast_config, how, tail, kind, mode):
        marker = new_marker()
        p = start_script(_daemon_script(marker, tail), config=fast_config, mode=mode)
        seen = wait_seen(marker, p)
        body = finish_script(p)
        assert seen, "the daemon was never seen on the host"
        assert body["stdout"] == "spawned\n", body
        if kind is None:
            assert body.get("result") == "done", body
        else:
            assert body.get("error_kind") == kind, body
        assert wait_gone(marker) == [], "a setsid'd, double-forked process outlived the request"

    def test_no_mount_left_on_the_host(self):
        before = mount_points()
        run_ok("import os\ndef main():\n    os.makedirs('/tmp/a/b')\n    return 1\n")
        run_script("import os\ndef main():\n    os.kill(os.getpid(), 9)\n")
        # Only new mount points count (other software on the machine, a container engine
        # say, may mount and unmount meanwhile; its storage is not ours to judge).
        foreign = ("/var/lib/containers/", "/run/containers/", "/run/netns/", "/run/user/", "/var/lib/docker/")
        new = sorted(m for m in set(mount_points()) - set(before) if not m.startswith(foreign))
        assert new == []

    def test_no_file_left_and_none_seen_next_time(self):
        marker = new_marker()
        script = S('''
            import os

            def main():
                os.makedirs("/tmp/@MARK@/sub")
                open("/tmp/@MARK@/sub/f", "w").write("x" * 1000)
                open("/dev/shm/@MARK@.shm", "w").write("y")
                return sorted(os.listdir("/tmp"))
        ''').replace("@MARK@", marker)
        assert marker in run_ok(script)["result"]
        assert not os.path.exists("/tmp/" + marker) and not os.path.exists("/dev/shm/" + marker + ".shm")
        listing = run_ok("import os\ndef main():\n    return sorted(os.listdir('/tmp'))\n")["result"]
        assert listing == [], listing

    def test_per_request_cgroup_with_limits_is_removed(self):
        if not cgroups_v1_available():
            pytest.skip("this machine has no cgroup v1 memory+pids hierarchies")
        marker = new_marker()
        script = NAME_SNIPPET + S('''
            import time

            def main():
                set_name(@MARK@)
                time.sleep(1.5)
                return 1
        ''').replace("@MARK@", repr(marker[:6]) + " + " + repr(marker[6:]))
        p = start_script(script)
        seen = wait_seen(marker, p)
        assert seen, "the script was never seen on the host"
        dirs = host_cgroup_dirs(seen[0])
        runner_dirs = host_cgroup_dirs(p.pid)
        info = {}
        for c in ("memory", "pids"):
            info[c] = dirs[c]
            assert dirs[c] != runner_dirs[c], "the request has no cgroup of its own: %s" % dirs
            assert os.path.isdir(dirs[c])
        with open(os.path.join(dirs["memory"], "memory.limit_in_bytes")) as f:
            mem_limit = int(f.read())
        memsw = os.path.join(dirs["memory"], "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            with open(memsw) as f:
                assert int(f.read()) == mem_limit, "swap is not off"
        else:
            with open(os.path.join(dirs["memory"], "memory.swappiness")) as f:
                assert int(f.read()) == 0, "swap is not off"
        with open(os.path.join(dirs["pids"], "pids.max")) as f:
            pids_max = f.read().strip()
        body = finish_script(p)
        assert body == {"result": 1, "stdout": ""}
        assert 512 * MiB <= mem_limit <= 1024 * MiB, mem_limit
        assert pids_max != "max" and int(pids_max) <= 64 + 8, pids_max
        time.sleep(0.1)
        assert not os.path.exists(dirs["memory"]) and not os.path.exists(dirs["pids"]), info
