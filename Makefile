# pyexec — see README.md. `make run` serves, `make test` tests; both install what is missing.

CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter \
           -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -I sandbox
LDFLAGS += -pie -Wl,-z,relro,-z,now
LIBS     = -lseccomp -ljson-c

BUILD    = build
PORT    ?= 8080
HOST    ?= 127.0.0.1
PYTEST   = /usr/bin/python3 -m pytest

SANDBOX_SRC = sandbox/util.c sandbox/jsontext.c sandbox/config.c sandbox/sandbox.c sandbox/verdict.c \
              sandbox/spawn.c sandbox/child.c sandbox/mounts.c sandbox/seccomp.c sandbox/cgroup.c \
              sandbox/zygote.c sandbox/imports.c sandbox/report.c sandbox/image.c sandbox/seccomp-bpf.c sandbox/initd.c
SANDBOX_OBJ = $(SANDBOX_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sandbox/runner_blob.o
FCGI_SRC    = fcgi/request.c fcgi/http.c fcgi/log.c fcgi/stats.c fcgi/serve.c fcgi/monitor.c
FCGI_OBJ    = $(FCGI_SRC:%.c=$(BUILD)/%.o)
UNIT_TESTS  = $(BUILD)/tests/unit_tests

PROBE       = $(BUILD)/tests/try_syscall
BINARIES = $(BUILD)/pyexec-worker $(BUILD)/pyexec-run $(BUILD)/pyexec-zygote $(BUILD)/pyexec-init $(UNIT_TESTS) $(PROBE)
# pyexec-init, the init factory that clones PID 1 of every sandbox: static, and only what it
# needs (sandbox/init-main.c).
INIT_OBJ = $(addprefix $(BUILD)/sandbox/,init-main.o child.o mounts.o util.o seccomp-bpf.o runner_blob.o)
# Debian's CPython for the zygote (lazy: the package may only be installed by `deps`).
PY_CFLAGS = $(shell pkg-config --cflags python-3.11-embed)
PY_LIBS   = $(shell pkg-config --libs python-3.11-embed)

.PHONY: all deps run test test-cgroup2 bench smoke image-test clean
all: $(BINARIES)

# Installs the Debian packages the build, the service and the tests need (no-op when present).
deps:
	@scripts/install-deps.sh

$(BUILD)/%.o: %.c $(wildcard sandbox/*.h fcgi/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/sandbox/runner_blob.o: sandbox/runner_blob.S sandbox/runner.py
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libsandbox.a: $(SANDBOX_OBJ)
	ar rcs $@ $^

$(BUILD)/pyexec-run: $(BUILD)/sandbox/pyexec-run.o $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/sandbox/zygote-main.o: sandbox/zygote-main.c $(wildcard sandbox/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PY_CFLAGS) -c $< -o $@

$(BUILD)/pyexec-init: $(INIT_OBJ)
	$(CC) -static -no-pie -Wl,-z,relro,-z,now -o $@ $^

$(BUILD)/pyexec-zygote: $(BUILD)/sandbox/zygote-main.o $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(PY_LIBS)

$(BUILD)/pyexec-worker: $(BUILD)/fcgi/worker.o $(FCGI_OBJ) $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lfcgi

$(UNIT_TESTS): $(BUILD)/tests/unit/unit_tests.o $(FCGI_OBJ) $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lfcgi

# The adversarial suite's system-call probe: plain C against glibc, run inside the sandbox by
# tests/test_adversarial.py.
$(PROBE): tests/probe/try_syscall.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

run: deps all
	scripts/serve.sh --host $(HOST) --port $(PORT)

test: deps all
	$(PYTEST) -q tests

# tests/test_cgroup2.py on a real cgroup v2 kernel: Debian's, under qemu (TCG), whose root is
# this machine's / read-only (tests/vm/run-in-vm.sh). The first run installs qemu-system-x86 and
# busybox-static and caches the kernel in /var/cache/pyexec-vm. `make test` runs it too.
test-cgroup2: deps all
	tests/vm/run-in-vm.sh --timeout 900 -- $(PYTEST) -q -p no:cacheprovider tests/test_cgroup2.py

# Warm against cold mode under wrk (not part of `make test`); writes bench/results.md.
bench: deps all
	@command -v wrk >/dev/null || apt-get install -y -q wrk
	/usr/bin/python3 bench/bench.py $(BENCH_ARGS)

# The seed examples against any running instance, over HTTP only:
#   make smoke URL=http://127.0.0.1:8080   (or a Cloud Run URL)
smoke:
	@test -n "$(URL)" || { echo "usage: make smoke URL=http://host:port" >&2; exit 2; }
	@scripts/install-deps.sh
	PYEXEC_URL=$(URL) $(PYTEST) -q -rf tests/test_e2e_seeds.py

# Builds the Docker image with podman and runs the seed examples against the container
# (installs podman, runc and debootstrap; not part of `make test`).
image-test:
	scripts/image-test.sh

clean:
	rm -rf $(BUILD)
