# pyexec — see README.md. `make run` serves, `make test` tests; both install what is missing.

CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter \
           -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -I sandbox
LDFLAGS += -pie -Wl,-z,relro,-z,now
LIBS     = -lseccomp -ljson-c -lcrypto

BUILD    = build
# pyexec-zygote and the library code its forks run (the warm script's process): the same
# objects as everyone's, except under SANITIZE=1 (below).
ZY_BUILD   = $(BUILD)
ZY_CFLAGS  = $(CFLAGS)
ZY_LDFLAGS = $(LDFLAGS)

# `make ... SANITIZE=1`: the binaries with ASan+UBSan, in build-san/ so that sanitized and
# normal objects never mix; `make test SANITIZE=1` runs the suites that exercise them.
# pyexec-zygote gets UBSan only, from objects of its own (build-san/ubsan/): ASan reserves
# ~20 TiB of address space for its shadow at start-up, and the warm script's process, a fork
# of the zygote, runs under RLIMIT_AS (memory_mb, 512 MiB), where every later mmap would fail
# ("ERROR: Failed to mmap"). Lifting the limit would weaken the very sandbox under test.
# Cold mode's script process execs /usr/bin/python3, which is not instrumented.
ifeq ($(SANITIZE),1)
BUILD      = build-san
UBSAN_FLAGS = -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# Instrumented, gcc sees the unchecked snprintf of a cgroup path in cgroup.c (a 4096-byte
# directory + "/cgroup.procs") that the normal build does not: a warning here, not an error.
SAN_WARN   = -Wno-error=format-truncation
ZY_BUILD   = $(BUILD)/ubsan
ZY_CFLAGS := $(CFLAGS) $(UBSAN_FLAGS) $(SAN_WARN)
ZY_LDFLAGS := $(LDFLAGS) $(UBSAN_FLAGS)
INIT_SAN   = $(UBSAN_FLAGS)
CFLAGS    += -fsanitize=address $(UBSAN_FLAGS) $(SAN_WARN)
LDFLAGS   += -fsanitize=address $(UBSAN_FLAGS)
endif
PORT    ?= 8080
HOST    ?= 127.0.0.1
PYTEST   = /usr/bin/python3 -m pytest

SANDBOX_SRC = sandbox/util.c sandbox/jsontext.c sandbox/config.c sandbox/sandbox.c sandbox/verdict.c \
              sandbox/spawn.c sandbox/child.c sandbox/mounts.c sandbox/seccomp.c sandbox/cgroup.c \
              sandbox/zygote.c sandbox/imports.c sandbox/report.c sandbox/image.c sandbox/seccomp-bpf.c sandbox/initd.c sandbox/errors.c sandbox/provider.c \
              sandbox/inventory.c sandbox/hub.c
SANDBOX_OBJ = $(SANDBOX_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sandbox/runner_blob.o
FCGI_SRC    = fcgi/request.c fcgi/http.c fcgi/log.c fcgi/stats.c fcgi/serve.c fcgi/monitor.c fcgi/reply.c fcgi/fields.c \
              fcgi/stream.c fcgi/mcp.c fcgi/keys.c fcgi/auth.c
FCGI_OBJ    = $(FCGI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/fcgi/openapi_blob.o
UNIT_TESTS  = $(BUILD)/tests/unit_tests

PROBE       = $(BUILD)/tests/try_syscall
BINARIES = $(BUILD)/pyexec-worker $(BUILD)/pyexec-keys $(BUILD)/pyexec-run $(BUILD)/pyexec-zygote $(BUILD)/pyexec-init $(UNIT_TESTS) $(PROBE)
# pyexec-init, the init factory that clones PID 1 of every sandbox: static, and only what it
# needs (sandbox/init-main.c).
INIT_OBJ = $(addprefix $(ZY_BUILD)/sandbox/,init-main.o child.o mounts.o util.o seccomp-bpf.o) $(BUILD)/sandbox/runner_blob.o
# Debian's CPython for the zygote (lazy: the package may only be installed by `deps`).
PY_CFLAGS = $(shell pkg-config --cflags python-3.11-embed)
PY_LIBS   = $(shell pkg-config --libs python-3.11-embed)

.PHONY: all deps run test test-cgroup2 bench smoke image-test clean fuzz fuzz-build
all: $(BINARIES)

# Installs the Debian packages the build, the service and the tests need (no-op when present).
deps:
	@scripts/install-deps.sh

# -MMD: each object's own header dependencies, written by the compiler next to it (.d) and
# read back below, instead of "every object depends on every header".
DEPFLAGS = -MMD -MP

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/sandbox/runner_blob.o: sandbox/runner_blob.S sandbox/runner.py
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

# nginx/openapi.json in the worker: MCP's run_python takes its ExecuteRequest schema (fcgi/mcp.c).
$(BUILD)/fcgi/openapi_blob.o: fcgi/openapi_blob.S nginx/openapi.json
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(BUILD)/libsandbox.a: $(SANDBOX_OBJ)
	ar rcs $@ $^

$(BUILD)/pyexec-run: $(BUILD)/sandbox/pyexec-run.o $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

ifneq ($(ZY_BUILD),$(BUILD))
$(ZY_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ZY_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(ZY_BUILD)/libsandbox.a: $(SANDBOX_SRC:%.c=$(ZY_BUILD)/%.o) $(BUILD)/sandbox/runner_blob.o
	ar rcs $@ $^
endif

$(ZY_BUILD)/sandbox/zygote-main.o: sandbox/zygote-main.c
	@mkdir -p $(dir $@)
	$(CC) $(ZY_CFLAGS) $(PY_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(ZY_BUILD)/sandbox/zygote-arenas.o: sandbox/zygote-arenas.c
	@mkdir -p $(dir $@)
	$(CC) $(ZY_CFLAGS) $(PY_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/pyexec-zygote: $(ZY_BUILD)/sandbox/zygote-main.o $(ZY_BUILD)/sandbox/zygote-arenas.o $(ZY_BUILD)/libsandbox.a
	$(CC) $(ZY_LDFLAGS) -o $@ $^ $(LIBS) $(PY_LIBS)

# pyexec-init is static: UBSan's runtime links statically, ASan's does not (hence, under
# SANITIZE=1, the zygote's UBSan-only objects).
$(BUILD)/pyexec-init: $(INIT_OBJ)
	$(CC) -static -no-pie -Wl,-z,relro,-z,now $(INIT_SAN) -o $@ $^

$(BUILD)/pyexec-worker: $(BUILD)/fcgi/worker.o $(FCGI_OBJ) $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lfcgi

# pyexec-keys: new keys, and the nginx zones of a keys file (fcgi/keys-main.c).
$(BUILD)/pyexec-keys: $(BUILD)/fcgi/keys-main.o $(BUILD)/fcgi/keys.o $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(UNIT_TESTS): $(BUILD)/tests/unit/unit_tests.o $(FCGI_OBJ) $(BUILD)/libsandbox.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lfcgi

# The adversarial suite's system-call probe: plain C against glibc, run inside the sandbox by
# tests/test_adversarial_syscalls.py.
$(PROBE): tests/probe/try_syscall.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

# ---- fuzzing: libFuzzer harnesses of every parser that sees outside bytes (tests/fuzz/) ----
# clang only (libFuzzer), ASan+UBSan, in a directory of their own so no object is shared with
# the gcc builds. `make fuzz` runs each harness FUZZ_SECONDS; tests/test_fuzz.py runs each
# briefly over its seed corpus as part of `make test`.
FUZZ_BUILD     = build-fuzz
FUZZ_CC        = clang
FUZZ_SECONDS  ?= 60
FUZZ_CFLAGS    = -g -O1 -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -I sandbox \
                 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_HARNESSES = request validate escape verdict config imports http mcp keys
FUZZ_LIB_SRC   = sandbox/util.c sandbox/jsontext.c sandbox/config.c sandbox/imports.c sandbox/verdict.c sandbox/errors.c \
                 sandbox/report.c fcgi/http.c fcgi/request.c fcgi/fields.c fcgi/mcp.c fcgi/reply.c fcgi/keys.c
FUZZ_LIB_OBJ   = $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/fcgi/openapi_blob.o
FUZZ_BINS      = $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fcgi/openapi_blob.o: fcgi/openapi_blob.S nginx/openapi.json
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ) tests/fuzz/fuzz_text.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter-out %.h,$^) -ljson-c -lfcgi -lcrypto

# Kept between builds: make would otherwise delete them as intermediates of the pattern rule.
.SECONDARY: $(FUZZ_LIB_OBJ)
fuzz-build: $(FUZZ_BINS)

fuzz: deps fuzz-build
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

run: deps all
	scripts/serve.sh --host $(HOST) --port $(PORT)

# `make test` runs every suite against build/, then `make test SANITIZE=1`: the unit tests,
# pyexec-run, the end-to-end seed and error suites and those of the request fields, inputs,
# streaming and MCP against build-san/ (see above), with
# every sanitizer report fatal. The tests find the build through PYEXEC_BUILD.
SAN_TESTS = tests/test_unit.py tests/test_pyexec_run.py tests/test_e2e_seeds.py tests/test_e2e_errors.py \
            tests/test_api_fields.py tests/test_api_batch.py tests/test_streaming.py tests/test_mcp.py tests/test_keys.py
SAN_ENV   = PYEXEC_BUILD=$(BUILD) \
            ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_string_checks=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Only the tests need these: Debian's container seccomp profile, from which
# deploy/seccomp-pyexec.json is generated (tests/test_deploy.py checks it is current).
TEST_PACKAGES = golang-github-containers-common
test: deps all
	@sh -c '. scripts/lib/apt.sh && ensure_packages $(TEST_PACKAGES)' test
ifeq ($(SANITIZE),1)
	$(SAN_ENV) $(PYTEST) -q $(SAN_TESTS)
else
	$(PYTEST) -q tests
	$(MAKE) --no-print-directory test SANITIZE=1
endif

# tests/test_cgroup2.py on a real cgroup v2 kernel: Debian's, under qemu (TCG), whose root is
# this machine's / read-only (tests/vm/run-in-vm.sh). The first run installs qemu-system-x86 and
# busybox-static and caches the kernel in /var/cache/pyexec-vm. `make test` runs it too.
test-cgroup2: deps all
	tests/vm/run-in-vm.sh --timeout 900 -- $(PYTEST) -q -p no:cacheprovider tests/test_cgroup2.py

# Warm against cold mode and against the seeds' architecture (Flask + gunicorn + a bubblewrap
# sandbox per request, bench/seeds_app.py) under wrk, and the libraries' table (not part of
# `make test`); writes bench/results.md.
BENCH_PACKAGES = wrk python3-flask gunicorn bubblewrap
bench: deps all
	@sh -c '. scripts/lib/apt.sh && ensure_packages $(BENCH_PACKAGES)' bench
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
	rm -rf build build-san $(FUZZ_BUILD)

# The header dependencies of every object built so far (none on a clean tree: all is built).
-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
