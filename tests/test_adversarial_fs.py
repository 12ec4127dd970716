"""Escapes through the file system: host files, writes outside /tmp, the host's tree, mounts,
setuid binaries, /proc/self/exe, mount(2), devices, kernel tunables, sysfs and cgroupfs.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""

import os

from helpers import S, SYSCALL_SNIPPET, run_least_privileged, run_ok


class TestEscapes:

    def test_host_paths_are_invisible(self):
        here = os.path.abspath(__file__)
        script = S('''
            import os

            def main():
                paths = ["/etc/shadow", "/etc/sudoers", "/etc/ssh", "/root", "/home", "/var", "/boot",
                         "/run", "/srv", "/opt", "/mnt", "/media", "/sys", "/work", "/var/run/docker.sock",
                         "/etc/nginx", "/.dockerenv", @HERE@]
                return [p for p in paths if os.path.lexists(p)]
        ''').replace("@HERE@", repr(here))
        assert run_ok(script)["result"] == []

    def test_etc_passwd_and_hostname_are_the_sandboxes(self):
        script = S('''
            import socket

            def main():
                users = [l.split(":")[0] for l in open("/etc/passwd") if l.strip()]
                return {"users": users, "host": socket.gethostname(), "etc_hostname": open("/etc/hostname").read()}
        ''')
        r = run_ok(script)["result"]
        assert set(r["users"]) <= {"root", "sandbox", "nobody"}, r
        assert r["host"] == "pyexec" and r["etc_hostname"] == "pyexec\n", r

    def test_writes_outside_tmp_fail(self):
        script = S('''
            import os

            def main():
                ok = []
                for p in ["/x", "/usr/x", "/usr/bin/python3", "/usr/lib/python3/dist-packages/x.py", "/etc/passwd",
                          "/etc/x", "/dev/x", "/dev/null2", "/proc/x", "/bin/x", "/lib/x", "/etc/ssl/x"]:
                    for mode in ("w", "a"):
                        try:
                            open(p, mode).close()
                            ok.append(p + ":" + mode)
                        except OSError:
                            pass
                return ok
        ''')
        assert run_ok(script)["result"] == []

    def test_host_tree_cannot_be_modified(self):
        script = S('''
            import os

            def main():
                ok = []
                attempts = [
                    ("chmod", lambda: os.chmod("/usr/bin/python3", 0o4777)),
                    ("chown", lambda: os.chown("/usr/bin/python3", 1000, 1000)),
                    ("rename", lambda: os.rename("/usr/bin/env", "/usr/bin/env2")),
                    ("unlink", lambda: os.unlink("/usr/bin/env")),
                    ("utime", lambda: os.utime("/usr/bin/env", (0, 0))),
                    ("symlink", lambda: os.symlink("/tmp", "/usr/evil")),
                    ("link", lambda: os.link("/usr/bin/env", "/tmp/env-link")),
                    ("mkdir", lambda: os.mkdir("/etc/evil")),
                    ("rmdir", lambda: os.rmdir("/proc")),
                    ("truncate", lambda: os.truncate("/etc/passwd", 0)),
                    ("setxattr", lambda: os.setxattr("/usr/bin/env", "user.x", b"1")),
                ]
                for name, f in attempts:
                    try:
                        f()
                        ok.append(name)
                    except OSError:
                        pass
                return ok
        ''')
        assert run_ok(script)["result"] == []

    def test_mounts_are_readonly_nosuid_nodev(self, mode):
        script = S('''
            def main():
                out = []
                for line in open("/proc/self/mountinfo"):
                    f = line.split()
                    out.append([f[4], f[5].split(","), f[f.index("-") + 1]])
                return out
        ''')
        mounts = run_ok(script, mode=mode)["result"]
        devices = {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"}
        writable = {"/tmp", "/proc"}
        assert [m[0] for m in mounts].count("/") == 1, mounts  # the old root is gone
        bad = []
        for point, opts, fstype in mounts:
            if "nosuid" not in opts:
                bad.append((point, "suid"))
            if "nodev" not in opts and point not in devices | {"/dev"}:
                bad.append((point, "dev"))
            if "ro" not in opts and point not in writable:
                bad.append((point, "rw"))
            ok_point = (point in ("/", "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/share", "/dev", "/proc", "/tmp")
                        or point in devices
                        or point.startswith("/etc/") or point in ("/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                                                  "/libx32"))
            if not ok_point:
                bad.append((point, "unexpected mount"))
        assert bad == [], mounts

    def test_the_root_is_the_same_bound_from_the_template_or_built_by_init(self):
        # The init factory builds the parts every sandbox shares once, read-only (the
        # template, mounts.c); without CAP_SYS_ADMIN (a least-privilege container) it cannot,
        # and each init builds them itself. The two roots must not differ in any mount.
        # Which one a run got shows in who owns "/": the template's is the host's (nobody in
        # the sandbox), a root init built is init's own (uid 0).
        script = S('''
            import os

            def main():
                mounts = []
                for line in open("/proc/self/mountinfo"):
                    f = line.split()
                    mounts.append([f[4], f[5], f[f.index("-") + 1]])
                return {"mounts": mounts, "root_owner": os.stat("/").st_uid}
        ''')
        template = run_ok(script)["result"]
        answer = run_least_privileged(script)
        assert "result" in answer, answer
        own = answer["result"]
        assert template["root_owner"] == 65534 and own["root_owner"] == 0, (template, own)
        assert template["mounts"] == own["mounts"], (template, own)

    def test_setuid_binaries_give_nothing(self):
        script = S('''
            import os, stat, subprocess

            def main():
                suid = [p for p in ("/usr/bin/mount", "/usr/bin/su", "/usr/bin/passwd", "/usr/bin/newgrp",
                                    "/usr/bin/umount", "/usr/bin/chsh", "/usr/bin/gpasswd")
                        if os.path.exists(p) and os.stat(p).st_mode & stat.S_ISUID]
                os.mkdir("/tmp/m")
                runs = {
                    "mount": ["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp/m"],
                    "umount": ["/usr/bin/umount", "-l", "/tmp"],
                    "su": ["/usr/bin/su", "root", "-c", "id -u"],
                }
                rcs = {}
                for name, argv in runs.items():
                    if os.path.exists(argv[0]):
                        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                        rcs[name] = [p.returncode, p.stdout]
                mounted = any(l.split()[4] == "/tmp/m" for l in open("/proc/self/mountinfo"))
                return {"suid": suid, "rcs": rcs, "mounted": mounted, "euid": os.geteuid()}
        ''')
        r = run_ok(script)["result"]
        assert r["mounted"] is False, r
        assert r["rcs"], "no setuid helper to try"
        for name, (rc, out) in r["rcs"].items():
            assert rc != 0 and out.strip() != "0", (name, r)

    def test_proc_self_exe_cannot_be_overwritten(self, mode):
        script = S('''
            import os

            def main():
                opened = []
                for p in ("/proc/self/exe", "/usr/bin/python3", os.path.realpath("/usr/bin/python3")):
                    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND, os.O_WRONLY | os.O_TRUNC):
                        try:
                            fd = os.open(p, flags)
                            os.close(fd)
                            opened.append([p, flags])
                        except OSError:
                            pass
                return {"opened": opened,
                        "root": sorted(os.listdir("/proc/self/root")) == sorted(os.listdir("/"))}
        ''')
        r = run_ok(script, mode=mode)["result"]
        assert r["opened"] == [], r
        assert r["root"] is True, r

    def test_mount_and_umount_refused(self):
        script = SYSCALL_SNIPPET + S('''
            import os

            def main():
                os.mkdir("/tmp/m")
                before = open("/proc/self/mountinfo").read()
                res = {
                    "mount_tmpfs": sc(165, b"none", b"/tmp/m", b"tmpfs", 0, None),
                    "bind_usr": sc(165, b"/usr", b"/tmp/m", None, 4096, None),     # MS_BIND
                    "remount_rw": sc(165, None, b"/usr", None, 32 | 4096, None),   # MS_REMOUNT|MS_BIND
                    "umount_tmp": sc(166, b"/tmp", 2),                            # MNT_DETACH
                    "umount_proc": sc(166, b"/proc", 2),
                    "umount_root": sc(166, b"/", 2),
                    "fsopen": sc(430, b"tmpfs", 0),
                    "open_tree": sc(428, -100, b"/usr", 1),                       # OPEN_TREE_CLONE
                }
                res["changed"] = open("/proc/self/mountinfo").read() != before
                return res
        ''')
        r = run_ok(script)["result"]
        assert r.pop("changed") is False
        for name, (ret, err) in r.items():
            assert ret == -1 and err in (1, 38), (name, r)

    def test_dev_has_only_the_four_nodes(self):
        script = S('''
            import os, stat

            def main():
                nodes = sorted(n for n in os.listdir("/dev")
                               if stat.S_ISCHR(os.stat("/dev/" + n, follow_symlinks=False).st_mode)
                               or stat.S_ISBLK(os.stat("/dev/" + n, follow_symlinks=False).st_mode))
                absent = [p for p in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda",
                                      "/dev/tty", "/dev/console", "/dev/ptmx", "/dev/pts", "/dev/net/tun", "/dev/kvm",
                                      "/dev/fuse", "/dev/vsock", "/dev/vhost-vsock", "/dev/loop0", "/dev/loop-control",
                                      "/dev/mapper", "/dev/cpu", "/dev/hwrng", "/dev/nvram", "/dev/snapshot")
                          if os.path.lexists(p)]
                return {"nodes": nodes, "present": absent, "all": sorted(os.listdir("/dev"))}
        ''')
        r = run_ok(script)["result"]
        assert r["nodes"] == ["null", "random", "urandom", "zero"], r
        assert r["present"] == [], r
        assert set(r["all"]) <= {"null", "zero", "random", "urandom", "fd", "stdin", "stdout", "stderr", "shm"}, r

    def test_device_nodes_cannot_be_made(self):
        script = S('''
            import os, stat

            def main():
                made = []
                for name, kind, dev in (("sda", stat.S_IFBLK, (8, 0)), ("vda", stat.S_IFBLK, (254, 0)),
                                        ("mem", stat.S_IFCHR, (1, 1)), ("kmsg", stat.S_IFCHR, (1, 11)),
                                        ("tty", stat.S_IFCHR, (5, 0)), ("ptmx", stat.S_IFCHR, (5, 2))):
                    try:
                        os.mknod("/tmp/" + name, kind | 0o666, os.makedev(*dev))
                        made.append(name)
                    except OSError:
                        pass
                return made
        ''')
        assert run_ok(script)["result"] == []

    def test_kernel_tunables_not_writable(self):
        script = S('''
            def main():
                written = []
                for p in ("/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger", "/proc/sys/vm/drop_caches",
                          "/proc/sys/kernel/hostname", "/proc/sys/kernel/modprobe", "/proc/sys/fs/binfmt_misc/register",
                          "/proc/sys/vm/overcommit_memory", "/proc/self/uid_map", "/proc/self/setgroups"):
                    try:
                        with open(p, "w") as f:
                            f.write("|/tmp/x\\n")
                        written.append(p)
                    except OSError:
                        pass
                return written
        ''')
        assert run_ok(script)["result"] == []

    def test_sysfs_and_cgroupfs_out_of_reach(self):
        script = SYSCALL_SNIPPET + S('''
            import os

            def main():
                os.mkdir("/tmp/sys")
                return {"sys": os.path.exists("/sys"),
                        "mount_sysfs": list(sc(165, b"sysfs", b"/tmp/sys", b"sysfs", 0, None)),
                        "mount_cgroup": list(sc(165, b"cgroup", b"/tmp/sys", b"cgroup", 0, b"memory")),
                        "cgroup_paths": [l.rstrip("\\n").split(":", 2)[2] for l in open("/proc/self/cgroup")]}
        ''')
        r = run_ok(script)["result"]
        assert r["sys"] is False, r
        assert r["mount_sysfs"][0] == -1 and r["mount_cgroup"][0] == -1, r
        assert set(r["cgroup_paths"]) == {"/"}, r  # the cgroup namespace hides the host's tree
