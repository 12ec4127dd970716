/* pyexec-zygote — holds an initialised CPython for warm sandboxes (see zygote.h).
 *
 *   pyexec-zygote "numpy pandas"     (fd 3: the control socket; started by the worker)
 *
 * Start-up: the sandbox's own scrubbed environment, CPython in isolated mode, the runner as
 * module pyexec_runner, the preload modules, a full collection and gc.freeze() (so the
 * children's collector does not touch, and so copy, every preloaded object). It must end up
 * single-threaded: forking a process with other threads leaves their locks held forever.
 *
 * Then, per request: clone() a sandbox init whose script process will run the runner in this
 * interpreter (warm_payload), hand the pipes to the worker, reap inits that have ended. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "zygote_proto.h"

static PyObject *runner_module;

/* Runs in the script's process, confined; does not return. */
static void warm_payload(const struct sb_limits *limits)
{
        signal(SIGCHLD, SIG_DFL); /* the zygote's own handler is not the script's business */
        (void)prctl(PR_SET_NAME, "python3"); /* as in cold mode */
        PyOS_AfterFork_Child(); /* also runs os.register_at_fork hooks: random reseeds itself */
        PyObject *r = PyObject_CallMethod(runner_module, "_pyexec_run", "[sn]O", "pyexec",
                                          (Py_ssize_t)limits->result_max_bytes, Py_True);
        /* The runner leaves with os._exit(); getting here means it failed itself. */
        if (!r)
                PyErr_Print();
        _exit(1);
}

static void send_hello(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_hello(int ok, const char *fmt, ...)
{
        struct zy_hello h = { .ok = ok };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h.message, sizeof(h.message), fmt, ap);
        va_end(ap);
        (void)send(ZY_CONTROL_FD, &h, sizeof(h), MSG_NOSIGNAL);
}

/* The Python error in flight as text, for the hello message. */
static void python_error(char *out, size_t len)
{
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *s = value ? PyObject_Str(value) : NULL;
        const char *name = type ? ((PyTypeObject *)type)->tp_name : "error";
        snprintf(out, len, "%s: %s", name, s ? PyUnicode_AsUTF8(s) : "?");
        Py_XDECREF(s);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
}

static int count_threads(void)
{
        DIR *d = opendir("/proc/self/task");
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* Backs the interpreter's heap with transparent huge pages where it can. Every sandbox is a
 * fork of this process, and a fork copies, and its exit frees, one page-table entry per 4 KiB
 * page mapped: with 2 MiB pages it is one per 2 MiB (a page the child then writes is split and
 * copied 4 KiB at a time as before). Best effort: nothing changes where THP is off. */
static void collapse_heap(void)
{
        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return;
        char line[512];
        unsigned long ranges[256][2];
        int n = 0;
        while (fgets(line, sizeof(line), f) && n < 256) {
                unsigned long lo, hi, off;
                char perms[8];
                int inode = -1, consumed = 0;
                if (sscanf(line, "%lx-%lx %7s %lx %*s %d %n", &lo, &hi, perms, &off, &inode, &consumed) < 5)
                        continue;
                /* Private anonymous read-write memory: the heap, pymalloc arenas, numpy buffers. */
                const char *name = line + consumed;
                bool anon = inode == 0 && (name[0] == '\n' || name[0] == '\0' || strncmp(name, "[heap]", 6) == 0);
                if (!anon || strcmp(perms, "rw-p") != 0)
                        continue;
                unsigned long a = (lo + (2UL << 20) - 1) & ~((2UL << 20) - 1), b = hi & ~((2UL << 20) - 1);
                if (b > a) {
                        ranges[n][0] = a;
                        ranges[n][1] = b;
                        n++;
                }
        }
        fclose(f);
        for (int i = 0; i < n; i++) {
                (void)madvise((void *)ranges[i][0], ranges[i][1] - ranges[i][0], MADV_HUGEPAGE);
                (void)madvise((void *)ranges[i][0], ranges[i][1] - ranges[i][0], 25 /* MADV_COLLAPSE */);
        }
}

/* After importing a preload module, a little work with it: libraries import submodules and
 * fill caches on first use (pandas' groupby machinery, numpy's random and linalg), and a child
 * that does that itself pays for it in every request, copy-on-write faults included. Trusted
 * code on made-up data, run before any request exists. */
static const struct {
        const char *module;
        const char *code;
} warmups[] = {
        { "numpy", "import numpy as np\n"
                   "a = np.arange(1000, dtype=np.float64)\n"
                   "a.sum(); a.mean(); a.std(); np.median(a); a.max(); a.min(); (a * 2 + 1).tolist()\n"
                   "np.random.default_rng(0).normal(100, 15, 100); np.random.normal(size=10)\n"
                   "np.linalg.norm(a); np.linalg.inv(np.eye(3)); np.dot(a, a); np.sqrt(a); np.sort(a)\n"
                   "np.array([[1, 2], [3, 4]]).T.tolist(); np.concatenate([a, a]).reshape(50, 40).sum(axis=0)\n"
                   "np.int64(6).item(); np.float64(1.5).item()\n" },
        { "pandas", "import io\nimport pandas as pd\nimport numpy as np\n"
                    "df = pd.DataFrame({'k': [i % 3 for i in range(60)], 'v': range(60),"
                    " 's': ['x', 'y', 'z'] * 20, 'f': np.arange(60) / 7})\n"
                    "df.groupby('k')['v'].sum().to_dict(); df.groupby('s').agg({'v': 'mean', 'f': 'max'})\n"
                    "df.describe(); df.mean(numeric_only=True); df['v'].corr(df['f']); df.sum().to_dict()\n"
                    "df.sort_values('v', ascending=False).head(); df[df.v > 10].shape; df.merge(df, on='k').shape\n"
                    "df.apply(lambda r: r['v'], axis=1).sum(); df.to_dict(); df.to_dict('records'); df.to_json()\n"
                    "df.pivot_table(index='k', columns='s', values='v', aggfunc='sum'); df.isna().sum()\n"
                    "pd.read_csv(io.StringIO('a,b\\n1,2\\n3,4\\n')).values.tolist(); list(df.columns); len(df)\n"
                    "pd.Series([1, 2, 3]).sum(); pd.date_range('2024-01-01', periods=3).tolist()\n" },
};

static int warm_up(const char *module, char *err, size_t errlen)
{
        for (size_t i = 0; i < sizeof(warmups) / sizeof(warmups[0]); i++) {
                if (strcmp(warmups[i].module, module) != 0)
                        continue;
                /* In a namespace of its own, dropped afterwards: __main__ stays clean. */
                PyObject *globals = PyDict_New();
                PyObject *r = globals ? PyRun_String(warmups[i].code, Py_file_input, globals, globals) : NULL;
                Py_XDECREF(globals);
                if (!r) {
                        char why[300];
                        python_error(why, sizeof(why));
                        snprintf(err, errlen, "warming up %s: %s", module, why);
                        return -1;
                }
                Py_DECREF(r);
        }
        return 0;
}

static int init_python(const char *preload, char *err, size_t errlen)
{
        /* The sandbox's environment, so os.environ in every script is exactly that. */
        char *envp[SB_SCRIPT_ENV_MAX];
        sb_build_script_env(envp, SB_SCRIPT_ENV_MAX);
        clearenv();
        for (char **e = envp; *e; e++)
                putenv(*e);

        PyConfig config;
        PyConfig_InitPythonConfig(&config);
        config.isolated = 1;          /* as python3 -I in cold mode */
        config.parse_argv = 0;
        config.install_signal_handlers = 1;
        PyStatus st = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
        if (!PyStatus_Exception(st))
                st = PyConfig_SetString(&config, &config.executable, L"/usr/bin/python3");
        if (!PyStatus_Exception(st))
                st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(st)) {
                snprintf(err, errlen, "initialising Python: %s", st.err_msg ? st.err_msg : "?");
                return -1;
        }

        PyObject *code = Py_CompileString(sb_runner_py, "<pyexec-runner>", Py_file_input);
        runner_module = code ? PyImport_ExecCodeModule("pyexec_runner", code) : NULL;
        Py_XDECREF(code);
        if (!runner_module) {
                python_error(err, errlen);
                return -1;
        }

        char names[512];
        snprintf(names, sizeof(names), "%s", preload ? preload : "");
        for (char *save, *name = strtok_r(names, " ,", &save); name; name = strtok_r(NULL, " ,", &save)) {
                PyObject *m = PyImport_ImportModule(name);
                if (!m) {
                        char why[300];
                        python_error(why, sizeof(why));
                        snprintf(err, errlen, "preloading %s: %s", name, why);
                        return -1;
                }
                Py_DECREF(m);
                if (warm_up(name, err, errlen) < 0)
                        return -1;
        }
        /* What the runner imports for every script, and what it does for the first time in
         * a process, so no child pays for it. */
        if (PyRun_SimpleString("import codecs, io, json, linecache, math, random, resource, traceback, types\n"
                               "import pyexec_runner\n"
                               "pyexec_runner._pyexec_warm_up()\n") != 0) {
                snprintf(err, errlen, "warming up the runner failed");
                return -1;
        }
        if (PyRun_SimpleString("import gc, sys\n"
                               "gc.collect()\n"
                               "gc.freeze()\n"
                               "sys.stdout.flush(); sys.stderr.flush()\n") != 0) {
                snprintf(err, errlen, "freezing the heap failed");
                return -1;
        }
        collapse_heap();
        int threads = count_threads();
        if (threads != 1) {
                snprintf(err, errlen, "the preloaded modules left %d threads running; forking would be unsafe", threads);
                return -1;
        }
        return 0;
}

static volatile sig_atomic_t child_exited;
static void on_sigchld(int sig) { (void)sig; child_exited = 1; }

static void reap(void)
{
        child_exited = 0;
        while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
                ;
}

static void serve_one(const struct sb_limits *l)
{
        struct zy_reply reply = { 0 };
        struct sb_parent_ends ends;
        int r = sb_spawn_init(l, warm_payload, &reply.pid, &ends, reply.message, sizeof(reply.message));
        if (r < 0) {
                reply.err = -r;
                (void)send(ZY_CONTROL_FD, &reply, sizeof(reply), MSG_NOSIGNAL);
                return;
        }
        int fds[SB_PARENT_END_COUNT] = { ends.pidfd, ends.go_wr, ends.script_wr, ends.stdout_rd,
                                         ends.stderr_rd, ends.result_rd, ends.setup_err_rd, ends.status_rd };
        char control[CMSG_SPACE(sizeof(fds))];
        memset(control, 0, sizeof(control));
        struct iovec iov = { &reply, sizeof(reply) };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
        if (sendmsg(ZY_CONTROL_FD, &msg, MSG_NOSIGNAL) < 0)
                (void)syscall(SYS_pidfd_send_signal, ends.pidfd, SIGKILL, NULL, 0); /* nobody will use it */
        sb_parent_ends_close(&ends);
}

int main(int argc, char **argv)
{
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                return 1;
        char err[480];
        if (init_python(argc > 1 ? argv[1] : "", err, sizeof(err)) < 0) {
                send_hello(0, "pyexec-zygote: %s", err);
                return 1;
        }
        struct sigaction sa = { .sa_handler = on_sigchld };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGCHLD, &sa, NULL);
        send_hello(1, "ready");

        for (;;) {
                struct sb_limits l;
                ssize_t n = recv(ZY_CONTROL_FD, &l, sizeof(l), 0);
                int recv_errno = errno; /* reap() would overwrite it */
                if (child_exited)
                        reap();
                if (n < 0 && recv_errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* the worker is gone */
                if (n != (ssize_t)sizeof(l))
                        continue;
                serve_one(&l);
        }
        return 0;
}
