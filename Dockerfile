# pyexec container image: nginx + the spawn-fcgi pool of pyexec-worker, exactly as `make run`.
#
#   podman build --pull=never --format docker -t pyexec .     (--format docker keeps HEALTHCHECK)
#   docker build -t pyexec .
#
# The sandbox inside needs a few container privileges (it creates user namespaces, writes a
# two-line uid_map and mounts its own /proc); see deploy/README.md for the exact run flags, and
# `make image-test` (scripts/image-test.sh) for the build-and-test run that checks them.

# ---- stage 1: build the C binaries -------------------------------------------------------------
FROM debian:bookworm-slim AS build

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends gcc make libc6-dev pkg-config \
        libfcgi-dev libjson-c-dev libseccomp-dev libssl-dev libpython3.11-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Makefile ./
COPY sandbox/ sandbox/
COPY fcgi/ fcgi/
# The worker embeds the OpenAPI document: MCP's run_python takes its request schema (fcgi/mcp.c).
COPY nginx/openapi.json nginx/openapi.json
# tests/ holds C sources `make all` builds too (the unit tests, the adversarial suite's probe);
# .dockerignore keeps the Python tests out.
COPY tests/ tests/
RUN make -j"$(nproc)" all

# ---- stage 2: the runtime ----------------------------------------------------------------------
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive
# Size. (1) Documentation, manual pages and translations stay out of the image (what
# debian:*-slim does for its own packages; repeated here so it holds whatever base the image is
# built on; copyright files stay), and so do the Python packages' own test suites (removed after
# the installation: the packages' byte-compiling postinst scripts expect them). (2) Debian's
# python3-scipy depends on python3-pythran, a Python-to-C++ compiler scipy uses only to build:
# installed for real it brings g++, gcc, the Boost and Python headers and the OpenBLAS headers
# (about 500 MB, and a compiler toolchain a script could run). An empty package of that name
# stands in for it; scipy imports nothing from it. OpenBLAS itself (the BLAS numpy and scipy
# use on the host too) is installed by name. (3) No service may start during the installation
# (policy-rc.d 101).
RUN printf '%s\n' \
        'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/lintian/*' \
        'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
        > /etc/dpkg/dpkg.cfg.d/pyexec-slim \
 && mkdir -p /tmp/pythran/DEBIAN \
 && printf '%s\n' 'Package: python3-pythran' 'Version: 99:0+pyexec' 'Architecture: all' \
        'Maintainer: pyexec <root@localhost>' 'Section: python' 'Priority: optional' \
        'Description: empty stand-in for pythran (scipy needs it only to build)' \
        > /tmp/pythran/DEBIAN/control \
 && dpkg-deb --build /tmp/pythran /tmp/python3-pythran.deb >/dev/null \
 && dpkg -i /tmp/python3-pythran.deb && rm -rf /tmp/pythran /tmp/python3-pythran.deb \
 && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends \
        nginx-light spawn-fcgi libfcgi0ldbl libjson-c5 libseccomp2 libssl3 libpython3.11 \
        python3 python3-numpy python3-pandas python3-scipy python3-sklearn python3-matplotlib \
        python3-seaborn python3-requests libopenblas0-pthread \
        curl procps \
 && rm -f /usr/sbin/policy-rc.d \
 && find /usr/lib/python3/dist-packages -depth -type d -name tests -path '*/dist-packages/*/tests' \
        -exec rm -rf {} + \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log

# The layout serve.sh expects: $top/build/pyexec-worker, $top/nginx/nginx.conf.in and
# $top/config/pyexec.conf, with $top the parent of scripts/; the worker finds pyexec-zygote (its
# warm interpreter, linked with libpython3.11) next to itself. pyexec-run is there for debugging.
WORKDIR /opt/pyexec
COPY --from=build /src/build/pyexec-worker /src/build/pyexec-keys /src/build/pyexec-zygote /src/build/pyexec-init /src/build/pyexec-run build/
COPY scripts/serve.sh scripts/
COPY nginx/ nginx/
COPY config/ config/

# The sandboxes map their uids to the 1028 ids from uid_base on (two per worker slot,
# sandbox/config.h). A user-namespaced container (Kubernetes hostUsers: false, podman
# --userns=auto) has only uids 0-65535, so the image moves uid_base below 64507; the build stops
# if the key is not found.
# A container gets no writable cgroup hierarchy of its own here (yet): the image runs on
# rlimits alone, and says so on GET /runtime ("cgroups": "none"), instead of refusing scripts.
ARG SANDBOX_UID_BASE=60000
RUN sed -i -E "s/^(require_cgroups[[:space:]]*=[[:space:]]*)1/\10/" config/pyexec.conf \
 && grep -Eq "^require_cgroups[[:space:]]*=[[:space:]]*0" config/pyexec.conf \
 && sed -i -E "s/^(uid_base[[:space:]]*=[[:space:]]*)[0-9]+/\1${SANDBOX_UID_BASE}/" config/pyexec.conf \
 && grep -Eq "^uid_base[[:space:]]*=[[:space:]]*${SANDBOX_UID_BASE}([^0-9]|$)" config/pyexec.conf \
 && [ "$((SANDBOX_UID_BASE + 1028))" -le 65534 ]

EXPOSE 8080
# /health answers 503 when the worker's start-up probe could not set up a sandbox (the container
# lacks the privileges in deploy/README.md), so that case shows as unhealthy, not as healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
        CMD curl -fsS -o /dev/null http://127.0.0.1:8080/health || exit 1
STOPSIGNAL SIGTERM
# container-start.sh (PID 1) runs serve.sh with its output relayed through pipes the container
# owns (nginx reopens /dev/stdout, which a user-namespaced container's runtime pipe refuses) and
# passes SIGTERM/SIGINT/SIGHUP on; serve.sh stops nginx and the pool on SIGTERM.
COPY deploy/container-start.sh /opt/pyexec/container-start.sh
CMD ["/opt/pyexec/container-start.sh", "/opt/pyexec/scripts/serve.sh", \
     "--host", "0.0.0.0", "--port", "8080", "--run-dir", "/run/pyexec"]
