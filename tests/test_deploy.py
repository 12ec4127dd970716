"""The deployment files agree with each other and with the image (fast; no podman needed).

Dockerfile, deploy/*.yaml (Kubernetes and Cloud Run), deploy/seccomp-pyexec.json,
deploy/README.md and deploy/run-flags describe one service: port 8080, /health for readiness and
/healthz for liveness, the pool's memory, and the container privileges the sandbox needs
(deploy/run-flags, the ones scripts/image-test.sh actually runs the image with).
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
PORT = 8080


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


# ---- the Dockerfile ----------------------------------------------------------------------------

def dockerfile_instructions():
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in read("Dockerfile").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def last(instruction):
    found = [rest for word, rest in dockerfile_instructions() if word == instruction]
    assert found, f"the Dockerfile has no {instruction}"
    return found[-1]


def runtime_stage():
    """The instructions of the last stage (the image that runs)."""
    ins = dockerfile_instructions()
    start = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[start:]


def cmd_args():
    cmd = json.loads(last("CMD"))
    assert isinstance(cmd, list), "CMD must be in exec (JSON) form"
    return cmd


def cmd_option(name):
    """The value of serve.sh's --name in CMD (serve.sh's own arguments follow its path)."""
    args = cmd_args()
    assert name in args, f"CMD does not pass {name} to serve.sh: {args}"
    return args[args.index(name) + 1]


def test_dockerfile_is_multi_stage_on_bookworm_slim():
    froms = [rest for word, rest in dockerfile_instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert all(f.split()[0] == "debian:bookworm-slim" for f in froms)
    runs = " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    assert re.search(r"\bmake( -j\S*)? all\b", runs), "the build stage does not run make all"


def test_runtime_stage_installs_without_recommends_and_cleans_apt_lists():
    runs = [rest for word, rest in runtime_stage() if word == "RUN" and "apt-get install" in rest]
    assert runs
    for r in runs:
        assert "--no-install-recommends" in r
        assert "rm -rf /var/lib/apt/lists/*" in r
        for command in re.findall(r"apt-get install ([^&;|]*)", r):
            packages = [w for w in command.split() if not w.startswith("-")]
            assert "python3" in packages and "nginx-light" in packages
            build_only = [p for p in packages if p.endswith("-dev") or p in ("gcc", "make", "g++", "pkg-config")]
            assert not build_only, f"build-only packages in the runtime stage: {build_only}"


def test_runtime_stage_keeps_serve_sh_layout():
    copies = " ".join(rest for word, rest in runtime_stage() if word == "COPY")
    workdir = [rest for word, rest in runtime_stage() if word == "WORKDIR"][-1]
    assert workdir == "/opt/pyexec"
    for needed in ("build/pyexec-worker", "build/pyexec-zygote", "scripts/serve.sh", "nginx/", "config/"):
        assert needed in copies, f"the runtime stage does not copy {needed}"
    assert any("/opt/pyexec/scripts/serve.sh" in a for a in cmd_args()), cmd_args()


def test_pid1_wrapper_is_copied_and_runs_serve_sh():
    cmd = cmd_args()
    start = os.path.join(ROOT, "deploy", "container-start.sh")
    assert os.access(start, os.X_OK)
    if cmd[0] == "/opt/pyexec/container-start.sh":
        copies = [rest for word, rest in runtime_stage() if word == "COPY"]
        assert "deploy/container-start.sh /opt/pyexec/container-start.sh" in copies
        assert cmd[1] == "/opt/pyexec/scripts/serve.sh"
        ignore = read(".dockerignore").split()
        assert "!deploy/container-start.sh" in ignore or not any(i.startswith("deploy") for i in ignore)


def test_expose_cmd_port_and_host_agree():
    assert last("EXPOSE").split() == [str(PORT)]
    assert cmd_option("--port") == str(PORT)
    assert cmd_option("--host") == "0.0.0.0"
    assert cmd_option("--run-dir").startswith("/run/")


def test_healthcheck_hits_health_on_the_port():
    hc = last("HEALTHCHECK")
    assert "CMD" in hc
    assert re.search(rf"http://(127\.0\.0\.1|localhost):{PORT}/health(\s|$)", hc), hc
    assert "-f" in hc.split("CMD", 1)[1], "curl must fail on a 503 (-f)"


def test_sandbox_uids_fit_a_65536_uid_user_namespace():
    """Kubernetes hostUsers: false (and podman --userns=auto:size=65536) give the container uids
    0-65535; the sandboxes map the 1028 ids from uid_base on (sandbox/config.h, SB_ID_COUNT)."""
    args = [rest for word, rest in runtime_stage() if word == "ARG" and rest.startswith("SANDBOX_UID_BASE=")]
    assert args, "the runtime stage sets no SANDBOX_UID_BASE"
    base = int(args[-1].split("=", 1)[1])
    assert 1000 < base and base + 1028 <= 65534
    assert re.search(r"^uid_base\s*=", read("config", "pyexec.conf"), re.M), \
        "config/pyexec.conf has no uid_base line for the Dockerfile to rewrite"


# ---- the YAML files ----------------------------------------------------------------------------

def yaml_docs():
    docs = []
    files = sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")) + glob.glob(os.path.join(DEPLOY, "*.yml")))
    assert files, "no YAML in deploy/"
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((os.path.basename(path), doc))
    return docs


def of_kind(kind, api_prefix=None):
    found = [d for _, d in yaml_docs() if d.get("kind") == kind and
             (api_prefix is None or d.get("apiVersion", "").startswith(api_prefix))]
    assert found, f"no {kind} in deploy/"
    return found


def deployment():
    (d,) = of_kind("Deployment", "apps/")
    return d


def container(pod_spec):
    (c,) = pod_spec["containers"]
    return c


def port_number(c, port):
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
    assert port in named, f"port {port!r} is not a named port of the container"
    return named[port]


def conf_value(key, default):
    """A number from config/pyexec.conf (the image's copy, apart from uid_base), or the default."""
    m = re.findall(rf"^\s*{key}\s*=\s*(\d+)", read("config", "pyexec.conf"), re.M)
    return int(m[-1]) if m else default


def pool_workers():
    return int(cmd_option("--workers")) if "--workers" in cmd_args() else conf_value("workers", 4)


def pool_memory_mib():
    """What the pool can use for scripts: workers x (memory_mb + tmp_size_mb)."""
    return pool_workers() * (conf_value("memory_mb", 512) + conf_value("tmp_size_mb", 64))


def mib(quantity):
    q = str(quantity)
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, "K": 1e3 / 2 ** 20, "M": 1e6 / 2 ** 20,
             "G": 1e9 / 2 ** 20}
    for unit, factor in units.items():
        if q.endswith(unit):
            return float(q[: -len(unit)]) * factor
    return float(q) / 2 ** 20


def test_every_yaml_parses_and_names_its_kind():
    for name, doc in yaml_docs():
        assert isinstance(doc, dict) and doc.get("kind") and doc.get("apiVersion"), name


def test_deployment_container_port_is_8080():
    c = container(deployment()["spec"]["template"]["spec"])
    assert [p["containerPort"] for p in c["ports"]] == [PORT]
    assert int(last("EXPOSE")) == PORT


def test_deployment_probes():
    c = container(deployment()["spec"]["template"]["spec"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in c:
            assert port_number(c, c[probe]["httpGet"]["port"]) == PORT, probe
    # SIGTERM drains in-flight scripts: the grace period must outlast one that waited its turn.
    grace = deployment()["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    assert grace > conf_value("wall_time_s", 10) + conf_value("queue_timeout_ms", 5000) / 1000


def test_deployment_resources_cover_the_pool():
    c = container(deployment()["spec"]["template"]["spec"])
    res = c["resources"]
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            assert what in res[kind], f"resources.{kind}.{what} missing"
    assert mib(res["limits"]["memory"]) >= mib(res["requests"]["memory"])
    assert mib(res["limits"]["memory"]) > pool_memory_mib(), \
        f"memory limit {res['limits']['memory']} does not cover the pool's {pool_memory_mib()} MiB of scripts"


def test_deployment_security_context_matches_the_tested_podman_flags():
    spec = deployment()["spec"]["template"]["spec"]
    sc = container(spec)["securityContext"]
    assert spec.get("hostUsers") is False, "the pod needs its own user namespace (hostUsers: false)"
    assert sc.get("privileged") is False
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("procMount") == "Unmasked"
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == run_flags_caps()
    assert sc["seccompProfile"]["type"] in ("Unconfined", "Localhost")
    if sc["seccompProfile"]["type"] == "Localhost":
        assert sc["seccompProfile"]["localhostProfile"].endswith(".json")


def test_read_only_root_has_a_volume_for_the_run_dir():
    spec = deployment()["spec"]["template"]["spec"]
    c = container(spec)
    if c["securityContext"].get("readOnlyRootFilesystem"):
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        run_dir = cmd_option("--run-dir")
        assert run_dir in mounts, f"nothing writable mounted at serve.sh's run dir {run_dir}"
        assert mounts[run_dir] in {v["name"] for v in spec.get("volumes", [])}


def test_service_selects_the_pods_and_targets_8080():
    d = deployment()
    labels = d["spec"]["template"]["metadata"]["labels"]
    c = container(d["spec"]["template"]["spec"])
    for svc in of_kind("Service", "v1"):
        assert svc["spec"]["selector"].items() <= labels.items()
        for p in svc["spec"]["ports"]:
            assert port_number(c, p.get("targetPort", p["port"])) == PORT


def test_hpa_targets_the_deployment_by_name():
    d = deployment()
    for hpa in of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] == d["metadata"]["name"]
        assert ref.get("apiVersion", "apps/v1").startswith("apps/")
        assert 1 <= hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"]
        resources = [m["resource"]["name"] for m in hpa["spec"].get("metrics", []) if m["type"] == "Resource"]
        c = container(d["spec"]["template"]["spec"])
        for r in resources:  # utilisation is relative to the request
            assert r in c["resources"]["requests"]


def test_selectors_match_the_pod_labels():
    d = deployment()
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for _, doc in yaml_docs():
        if doc["kind"] == "PodDisruptionBudget":
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_kustomization_lists_every_manifest():
    (k,) = of_kind("Kustomization")
    listed = set(k["resources"])
    manifests = {name for name, doc in yaml_docs()
                 if doc["kind"] not in ("Kustomization",) and doc["apiVersion"] != "serving.knative.dev/v1"}
    assert listed == manifests


def test_cloud_run_service_is_second_generation_and_matches():
    (svc,) = of_kind("Service", "serving.knative.dev/")
    tmpl = svc["spec"]["template"]
    assert tmpl["metadata"]["annotations"]["run.googleapis.com/execution-environment"] == "gen2"
    c = container(tmpl["spec"])
    assert [p["containerPort"] for p in c["ports"]] == [PORT]
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert mib(c["resources"]["limits"]["memory"]) > pool_memory_mib()
    # One request per worker: more would queue in nginx instead of scaling out.
    assert tmpl["spec"]["containerConcurrency"] <= pool_workers()


# ---- the seccomp profile and the documented flags ----------------------------------------------

def seccomp_profile():
    with open(os.path.join(DEPLOY, "seccomp-pyexec.json")) as f:
        return json.load(f)


def test_seccomp_profile_is_portable_and_allows_what_the_sandbox_does():
    p = seccomp_profile()
    assert p["defaultAction"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS")
    assert "SCMP_ARCH_X86_64" in p["architectures"]
    # OCI runtime-spec form only: containerd reads a Localhost profile as a plain LinuxSeccomp.
    for rule in p["syscalls"]:
        assert set(rule) <= {"names", "action", "args", "errnoRet"}, rule
    plain_allow = set()
    for rule in p["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args"):
            plain_allow |= set(rule["names"])
    for call in ("clone", "clone3", "unshare", "mount", "umount2", "pivot_root", "sethostname", "seccomp",
                 "prctl", "setresuid", "setgroups", "memfd_create", "close_range", "pidfd_open"):
        assert call in plain_allow, f"the profile does not allow {call}"
    # A name with two conditionless rules of different actions makes libseccomp refuse the profile.
    seen = {}
    for rule in p["syscalls"]:
        if not rule.get("args"):
            for n in rule["names"]:
                assert seen.setdefault(n, rule["action"]) == rule["action"], f"{n} has conflicting rules"


def test_seccomp_profile_is_what_the_generator_makes():
    source = "/usr/share/containers/seccomp.json"
    assert os.path.exists(source), f"{source} is missing: `make test` installs golang-github-containers-common"
    out = subprocess.run([sys.executable, os.path.join(DEPLOY, "make-seccomp-profile.py"), source],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == seccomp_profile(), \
        "deploy/seccomp-pyexec.json is stale: python3 deploy/make-seccomp-profile.py > deploy/seccomp-pyexec.json"


def run_flags():
    """The flags of deploy/run-flags (the ones scripts/image-test.sh tests): one per line, each
    one argument as is; empty lines and # comments skipped."""
    lines = (line.strip() for line in read("deploy", "run-flags").splitlines())
    flags = [line for line in lines if line and not line.startswith("#")]
    assert flags, "deploy/run-flags has no flags"
    return flags


def run_flags_caps():
    caps = [w.split("=", 1)[1] for w in run_flags() if w.startswith("--cap-add=")]
    assert caps, "deploy/run-flags adds no capabilities"
    return set(",".join(caps).split(","))


def readme_podman_run_flags():
    """The flags of deploy/README.md's `podman run` example, between its fixed part (name, port)
    and the image name, as the shell would pass them."""
    readme = read("deploy", "README.md")
    m = re.search(r"^podman run -d --name pyexec -p 8080:8080 \\\n(.*?)^  pyexec$", readme, re.M | re.S)
    assert m, "deploy/README.md has no `podman run -d --name pyexec -p 8080:8080 ... pyexec` example"
    return shlex.split(m.group(1).replace("\\\n", " "))


def test_image_test_runs_the_run_flags():
    assert "read_run_flags deploy/run-flags" in read("scripts", "image-test.sh"), \
        "scripts/image-test.sh does not take the flags it tests from deploy/run-flags"


def test_readme_documents_the_tested_flags():
    readme = read("deploy", "README.md")
    flags = run_flags()
    assert "--cap-drop=all" in flags
    assert readme_podman_run_flags() == flags, "deploy/README.md's podman run differs from deploy/run-flags"
    assert "--execution-environment gen2" in readme
    assert "gcloud run deploy" in readme


# ---- the systemd unit ----------------------------------------------------------------------------

def test_systemd_unit_verifies_and_drains(tmp_path):
    """deploy/pyexec.service, pointed at this checkout, passes systemd-analyze verify without a
    word (it only warns, exit 0, about a bad value), and its stop settings let the drain end."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of Debian's systemd, which install-deps.sh installs"
    unit = read("deploy", "pyexec.service")
    (tmp_path / "pyexec.service").write_text(unit.replace("/opt/pyexec", ROOT))
    r = subprocess.run([analyze, "verify", str(tmp_path / "pyexec.service")], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Delegate"] == "yes"  # the per-request cgroups are made below the unit's own
    assert settings["KillMode"] == "mixed"  # SIGTERM to serve.sh only: it drains, then SIGKILL to the rest
    wall = conf_value("wall_time_s", 10)
    assert int(settings["TimeoutStopSec"]) > (wall + 30) + wall, "nginx's drain, then the workers' last scripts"
    assert "serve.sh" in settings["ExecStart"] and settings["Restart"] == "on-failure"
