"""The seeds' architecture as a service for `make bench`: bench/seeds_app.py (Flask, one
bubblewrap-sandboxed python3 per request) served by Debian's gunicorn with sync workers, as
many as pyexec's. `make bench` installs python3-flask, gunicorn and bubblewrap."""
import os
import shutil
import sys
import tempfile

from services import ROOT, Server, free_port


class Seeds(Server):
    name = "the seeds' architecture (gunicorn + bench/seeds_app.py)"

    def __init__(self, workers):
        for tool in ("gunicorn", "bwrap"):
            if not shutil.which(tool):
                sys.exit(f"bench: {tool} is missing (make bench installs gunicorn, python3-flask and bubblewrap)")
        port, run_dir = free_port(), tempfile.mkdtemp(prefix="pyexec-bench-seeds-")
        args = ["gunicorn", "--workers", str(workers), "--worker-class", "sync", "--bind", f"127.0.0.1:{port}",
                "--chdir", os.path.join(ROOT, "bench"), "seeds_app:app"]
        # Each sandbox's script and harness are written under run_dir, not /tmp, so that
        # stopping the service removes whatever a killed worker left behind.
        self.start(args, port, run_dir, env=dict(os.environ, TMPDIR=run_dir))
