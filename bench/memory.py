"""The pool's memory in `make bench`: PSS (each shared page divided among the processes that map
it, so the parts add up to the whole) of every process of a running pyexec pool, by part.

The pool is the master's process tree: the master, the monitor, the workers and their init
factories, and per tier its interpreter (pyexec-hub), the worker's forks of it (pyexec-forker)
and the sandboxes prepared ahead for its next scripts (init + the script's process). nginx is
counted apart. Read once every tier has served a script, so every fork and prepared sandbox
exists."""
import collections
import os

TARGET_MIB = 400
NGINX = "nginx (not the pool)"
KINDS = ["master", "monitor", "workers", "workers' init factories (pyexec-initd)", "prepared sandboxes' init",
         "interpreter (pyexec-hub)", "its forks, one per worker (pyexec-forker)", "prepared script processes", NGINX]


def _processes():
    """{pid: (ppid, comm, args)} of every process."""
    rows = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        rows[int(name)] = (ppid, comm, args)
    return rows


def _pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(rows, root):
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in rows.items():
        children[ppid].append(pid)
    stack, out = [root], []
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children[pid])
    return out


def _part(rows, pid):
    """The part of the pool pid belongs to: (what, its tier's preload, or None for the pool's own)."""
    ppid, comm, args = rows[pid]
    if comm == "pyexec-hub":
        return "interpreter (pyexec-hub)", args.split("pyexec-zygote", 1)[1].replace("--hub", "").strip()
    # A process below a hub: its tier is the hub's.
    up, hops = ppid, 0
    while up in rows and hops < 4:
        if rows[up][1] == "pyexec-hub":
            tier = rows[up][2].split("pyexec-zygote", 1)[1].replace("--hub", "").strip()
            return ("its forks, one per worker (pyexec-forker)" if comm == "pyexec-forker"
                    else "prepared script processes"), tier
        up, hops = rows[up][0], hops + 1
    names = {"pyexec-master": "master", "pyexec-monitor": "monitor", "pyexec-worker": "workers",
             "pyexec-initd": "workers' init factories (pyexec-initd)"}
    return names.get(comm, "prepared sandboxes' init"), None


def measure(run_dir):
    """{(part, tier): (processes, PSS KiB)} for the pool serving from run_dir, and nginx's."""
    rows = _processes()
    masters = [pid for pid, (_, comm, args) in rows.items() if comm == "pyexec-master" and run_dir in args]
    if len(masters) != 1:
        raise RuntimeError(f"bench: {len(masters)} pool masters for {run_dir}")
    parts = collections.defaultdict(lambda: [0, 0])
    for pid in _descendants(rows, masters[0]):
        key = _part(rows, pid)
        parts[key][0] += 1
        parts[key][1] += _pss_kib(pid)
    nginx = [pid for pid, (_, comm, args) in rows.items() if comm == "nginx" and run_dir in args]
    for pid in set(nginx) | {c for n in nginx for c in _descendants(rows, n)}:
        parts[(NGINX, None)][0] += 1
        parts[(NGINX, None)][1] += _pss_kib(pid)
    return dict(parts)


def table(parts, workers):
    """The memory table, in markdown, with the target's verdict."""
    order = sorted(parts, key=lambda k: (k[0] == NGINX, k[1] is not None, len(k[1] or ""), KINDS.index(k[0])))
    rows = [f"Memory: PSS of the pool at {workers} workers, every tier warm (bench/memory.py): the pool's own "
            "processes, then each tier's interpreter, its forks and the sandboxes prepared for it.", "",
            "| part | tier | processes | PSS MiB |", "|---|---|---|---|"]
    pool = 0
    tiers = collections.Counter()
    for key in order:
        count, kib = parts[key]
        if key[0] != NGINX:
            pool += kib
        if key[1] is not None:
            tiers[key[1]] += kib
        rows.append(f"| {key[0]} | {'' if key[1] is None else repr(key[1])} | {count} | {kib / 1024:.1f} |")
    for tier, kib in sorted(tiers.items(), key=lambda t: len(t[0])):
        rows.append(f"| tier total | {tier!r} | | {kib / 1024:.1f} |")
    rows.append(f"| **the pool** | | | **{pool / 1024:.1f}** |")
    verdict = "met" if pool / 1024 <= TARGET_MIB else "MISSED"
    rows += ["", f"- {verdict}: the pool's PSS = {pool / 1024:.0f} MiB (target <= {TARGET_MIB} MiB)"]
    return "\n".join(rows), pool / 1024
