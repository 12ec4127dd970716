"""The seeds' architecture, for `make bench` to measure pyexec against: Flask + gunicorn, and
one namespace-sandboxed /usr/bin/python3 per request.

What the seeds (the documents this service replaces) describe: a Flask app whose
POST /execute {"script"} writes the script to a file, runs python3 on a small wrapper in nsjail
(new user/PID/network/IPC/UTS namespaces, read-only system directories, a private /tmp) with
memory and CPU limits and a timeout, and answers {"result", "stdout"} with what main()
returned and what it printed. nsjail is not in Debian; bubblewrap (`bwrap`), which builds the
same kind of namespace sandbox from the same kernel calls, stands in for it. Limits as
pyexec's defaults: 512 MiB of address space, 10 s of CPU, 10 s of wall time.

Served by bench/seeds.py as `gunicorn --worker-class sync --chdir bench seeds_app:app`.
Only for benchmarking: it is not hardened (no seccomp, no cgroups) and not tested as a service.
"""
import json
import os
import resource
import shutil
import subprocess
import tempfile

from flask import Flask, jsonify, request

MEMORY_BYTES = 512 * 1024 * 1024
CPU_SECONDS = 10
WALL_SECONDS = 10

# Imports the script as a module from /box (read-only), calls main(), prints one JSON line.
HARNESS = r'''import contextlib, importlib.util, io, json, sys, traceback
out = io.StringIO()
answer = {}
try:
    with contextlib.redirect_stdout(out):
        spec = importlib.util.spec_from_file_location("script", "/box/script.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "main", None)):
            answer["error"] = "Script must contain a main() function"
        else:
            answer["result"] = module.main()
except BaseException as e:
    answer = {"error": "".join(traceback.format_exception_only(type(e), e)).strip()}
try:
    text = json.dumps(dict(answer, stdout=out.getvalue()))
except (TypeError, ValueError) as e:
    text = json.dumps({"error": f"main() function must return JSON serializable data: {e}", "stdout": out.getvalue()})
sys.__stdout__.write(text + "\n")
'''

# Read-only binds from /etc: those pyexec's sandbox binds too (sandbox/mounts.c), where present.
ETC = ["ld.so.cache", "alternatives", "ssl", "matplotlibrc", "fonts", "localtime", "mime.types"]


def bwrap_command(box):
    cmd = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--die-with-parent", "--new-session", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL",
           "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for name in ETC:
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", box, "/box", "--chdir", "/tmp",
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
            "/usr/bin/python3", "-I", "/box/harness.py"]
    return cmd


def set_limits():
    """In the child, before bwrap is exec'd: the limits every process of the sandbox inherits."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


app = Flask(__name__)


@app.get("/health")
def health():
    return jsonify(status="healthy")


@app.post("/execute")
def execute():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("script"), str):
        return jsonify(error="Request must contain 'script' field", stdout=""), 400
    box = tempfile.mkdtemp(prefix="seeds-box-")
    try:
        for name, text in (("script.py", body["script"]), ("harness.py", HARNESS)):
            with open(os.path.join(box, name), "w") as f:
                f.write(text)
        os.chmod(box, 0o755)
        try:
            proc = subprocess.run(bwrap_command(box), capture_output=True, text=True, timeout=WALL_SECONDS,
                                  preexec_fn=set_limits)
        except subprocess.TimeoutExpired:
            return jsonify(error=f"Script execution timed out ({WALL_SECONDS} seconds)", stdout="")
    finally:
        shutil.rmtree(box, ignore_errors=True)
    try:
        return jsonify(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return jsonify(error=f"Script execution error: exit status {proc.returncode}: {proc.stderr[-500:]}",
                       stdout="")
