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
              sandbox/zygote.c sandbox/imports.c sandbox/report.c
SANDBOX_OBJ = $(SANDBOX_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sandbox/runner_blob.o
FCGI_SRC    = fcgi/request.c fcgi/http.c fcgi/log.c fcgi/stats.c fcgi/serve.c fcgi/monitor.c
FCGI_OBJ    = $(FCGI_SRC:%.c=$(BUILD)/%.o)
UNIT_TESTS  = $(BUILD)/tests/unit_tests

PROBE       = $(BUILD)/tests/try_syscall
BINARIES = $(BUILD)/pyexec-worker $(BUILD)/pyexec-run $(BUILD)/pyexec-zygote $(UNIT_TESTS) $(PROBE)
# Debian's CPython for the zygote (lazy: the package may only be installed by `deps`).
PY_CFLAGS = $(shell pkg-config --cflags python-3.11-embed)
PY_LIBS   = $(shell pkg-config --libs python-3.11-embed)

.PHONY: all deps run test bench smoke image-test clean fuzz fuzz-build
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

# ---- fuzzing: libFuzzer harnesses of every parser that sees outside bytes (tests/fuzz/) ----
# clang only (libFuzzer), ASan+UBSan, in a directory of their own so no object is shared with
# the gcc builds. `make fuzz` runs each harness FUZZ_SECONDS; tests/test_fuzz.py runs each
# briefly over its seed corpus as part of `make test`.
FUZZ_BUILD     = build-fuzz
FUZZ_CC        = clang
FUZZ_SECONDS  ?= 60
FUZZ_CFLAGS    = -g -O1 -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -I sandbox \
                 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_HARNESSES = request validate escape verdict config imports http
FUZZ_LIB_SRC   = sandbox/util.c sandbox/jsontext.c sandbox/config.c sandbox/imports.c sandbox/verdict.c \
                 sandbox/report.c fcgi/http.c fcgi/request.c
FUZZ_LIB_OBJ   = $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BINS      = $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/%.o: %.c $(wildcard sandbox/*.h fcgi/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ -ljson-c

# Kept between builds: make would otherwise delete them as intermediates of the pattern rule.
.SECONDARY: $(FUZZ_LIB_OBJ)
fuzz-build: $(FUZZ_BINS)

fuzz: deps fuzz-build
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

run: deps all
	scripts/serve.sh --host $(HOST) --port $(PORT)

test: deps all
	$(PYTEST) -q tests

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
	rm -rf build build-san $(FUZZ_BUILD)
