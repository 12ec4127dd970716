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
        }
        /* What the runner imports for every script, so no child pays for it. */
        if (PyRun_SimpleString("import codecs, io, json, linecache, math, random, resource, traceback, types\n") != 0) {
                snprintf(err, errlen, "importing the runner's modules failed");
                return -1;
        }
        if (PyRun_SimpleString("import gc, sys\n"
                               "gc.collect()\n"
                               "gc.freeze()\n"
                               "sys.stdout.flush(); sys.stderr.flush()\n") != 0) {
                snprintf(err, errlen, "freezing the heap failed");
                return -1;
        }
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
