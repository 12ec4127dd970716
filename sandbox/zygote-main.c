/* pyexec-zygote — holds an initialised CPython for warm sandboxes (see zygote.h).
 *
 *   pyexec-zygote "numpy pandas"     (fd 3: the control socket; started by the worker)
 *
 * Start-up: the sandbox's own scrubbed environment, CPython in isolated mode, the runner as
 * module pyexec_runner, the preload modules, a full collection and gc.freeze() (so the
 * children's collector does not touch, and so copy, every preloaded object). It must end up
 * single-threaded: forking a process with other threads leaves their locks held forever.
 *
 * Then, per request: fork a script process into the namespaces of an init the worker has
 * prepared (inject): it joins the request's cgroups and init's namespaces, confines itself and
 * runs the runner in this interpreter (warm_payload). When it ends, report how (the status
 * pipe) and kill its init, which ends the sandbox. Only the script's process is a fork of this
 * large process: init is a copy of the small worker, so a request copies and frees the
 * interpreter's page tables once, not twice. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"
#include "zygote-arenas.h"
#include "zygote_proto.h"

static PyObject *runner_module;

/* The MT19937 generators whose state each script's process fills from the kernel itself
 * (random's shared one, numpy's global one): where their key of 624 words and their position
 * are, found and checked by the runner's _pyexec_fork_hooks, which says why. */
enum { MT_KEY_WORDS = 624, MAX_MT_STATES = 2 };
static struct mt_state {
        unsigned char *key;
        int *position;
} mt_states[MAX_MT_STATES];
static int n_mt_states;

/* A fork inherits the zygote's states: without this every script would draw the same numbers.
 * Does not return on failure (a process with a shared state must not run a script). */
static void reseed_mt_states(void)
{
        for (int i = 0; i < n_mt_states; i++) {
                for (size_t got = 0; got < MT_KEY_WORDS * 4;) {
                        ssize_t n = getrandom(mt_states[i].key + got, MT_KEY_WORDS * 4 - got, 0);
                        if (n < 0 && errno != EINTR)
                                _exit(1);
                        got += n > 0 ? (size_t)n : 0;
                }
                *mt_states[i].position = MT_KEY_WORDS; /* the next draw regenerates from the key */
        }
}

/* Runs in the script's process, confined; does not return. */
static void warm_payload(const struct sb_limits *limits)
{
        signal(SIGCHLD, SIG_DFL); /* the zygote's own handler is not the script's business */
        reseed_mt_states();
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

/* A descriptor the preload left open is a number some library object will close or use again
 * in every fork — where that number is by then one of the script process's own (its result
 * pipe, its script) or a file the script opened. So none may be left: only 0-2 and the control
 * socket. */
static int open_files_check(char *err, size_t errlen)
{
        DIR *d = opendir("/proc/self/fd");
        if (!d) {
                snprintf(err, errlen, "opening /proc/self/fd: %s", strerror(errno));
                return -1;
        }
        int self = dirfd(d), found = -1;
        struct dirent *e;
        while ((e = readdir(d)) && found < 0) {
                int fd = atoi(e->d_name);
                if (e->d_name[0] != '.' && fd > ZY_CONTROL_FD && fd != self)
                        found = fd;
        }
        closedir(d);
        if (found < 0)
                return 0;
        char path[64], target[256] = "?";
        snprintf(path, sizeof(path), "/proc/self/fd/%d", found);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 1] = '\0';
        snprintf(err, errlen, "the preloaded modules left descriptor %d open (%s); forking would hand it to scripts",
                 found, target);
        return -1;
}

/* Backs the interpreter's heap with transparent huge pages where it can. Every sandbox is a
 * fork of this process, and a fork copies, and its exit frees, one page-table entry per 4 KiB
 * page mapped: with 2 MiB pages it is one per 2 MiB (a page the child then writes is split and
 * copied 4 KiB at a time as before). Best effort: nothing changes where THP is off. The
 * pymalloc arenas are in one aligned region for this (zygote-arenas.c). */
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
        { "scipy", "import numpy as np\n"
                   "import scipy.stats, scipy.optimize, scipy.linalg, scipy.integrate, scipy.interpolate\n"
                   "import scipy.signal, scipy.sparse, scipy.spatial, scipy.special, scipy.fft, scipy.cluster\n"
                   "from scipy import stats, optimize\n"
                   "a, b = [2.1, 2.5, 1.9, 2.8, 2.4, 2.2], [2.9, 3.1, 2.7, 3.4, 3.0, 2.6]\n"
                   "stats.ttest_ind(a, b); stats.pearsonr(a, b); stats.linregress(a, b); stats.describe(a)\n"
                   "stats.norm.cdf(1.96); stats.norm(0, 1).ppf(0.975); stats.t.ppf(0.975, 5); stats.chi2_contingency([[10, 20], [20, 10]])\n"
                   "stats.mannwhitneyu(a, b); stats.zscore(a); stats.spearmanr(a, b); stats.shapiro(a + b)\n"
                   "optimize.minimize(lambda x: (x[0] - 1) ** 2, [0.0]); optimize.brentq(lambda x: x - 0.5, 0, 1)\n"
                   "optimize.curve_fit(lambda x, p, q: p * x + q, np.arange(5.0), 2 * np.arange(5.0) + 1)\n"
                   "scipy.linalg.solve(np.eye(3), np.ones(3)); scipy.integrate.quad(lambda x: x * x, 0, 1)\n"
                   "scipy.interpolate.interp1d([0, 1, 2], [0, 1, 4])(1.5); scipy.special.gamma(5)\n" },
        { "sklearn", "import numpy as np\n"
                     "import sklearn.linear_model, sklearn.model_selection, sklearn.metrics, sklearn.preprocessing\n"
                     "import sklearn.ensemble, sklearn.cluster, sklearn.tree, sklearn.decomposition\n"
                     "import sklearn.neighbors, sklearn.pipeline, sklearn.svm, sklearn.datasets, sklearn.naive_bayes\n"
                     "from sklearn.linear_model import LinearRegression, LogisticRegression\n"
                     "x = np.arange(60, dtype=float).reshape(-1, 1); y = (x.ravel() > 30).astype(int)\n"
                     "LinearRegression().fit(x, 3 * x.ravel() + 2).predict(x[:3]); LogisticRegression().fit(x, y).score(x, y)\n"
                     "xt, xs, yt, ys = sklearn.model_selection.train_test_split(x, y, test_size=0.25, random_state=0)\n"
                     "sklearn.preprocessing.StandardScaler().fit_transform(x); sklearn.metrics.accuracy_score(y, y)\n"
                     "sklearn.metrics.mean_squared_error(y, y); sklearn.metrics.r2_score(x.ravel(), x.ravel())\n"
                     "sklearn.tree.DecisionTreeClassifier(max_depth=2).fit(x, y).predict(x[:3])\n"
                     "sklearn.ensemble.RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y).predict(x[:3])\n"
                     "sklearn.cluster.KMeans(n_clusters=2, n_init=1, random_state=0).fit(x).labels_\n"
                     "sklearn.decomposition.PCA(n_components=1).fit_transform(np.hstack([x, x]))\n"
                     "sklearn.neighbors.KNeighborsClassifier(3).fit(x, y).predict(x[:3])\n"
                     "sklearn.pipeline.make_pipeline(sklearn.preprocessing.StandardScaler(), LogisticRegression()).fit(x, y)\n"
                     "sklearn.model_selection.cross_val_score(LinearRegression(), x, x.ravel(), cv=3)\n" },
        /* The drawing path too: a fresh fork's first figure costs half as much again as the
         * next. Every figure is closed again, so none reaches a script's "figures". */
        { "matplotlib", "import io\nimport matplotlib.pyplot as plt\n"
                        "fig, ax = plt.subplots()\n"
                        "ax.plot([1, 2, 3], [1, 4, 9], label='a'); ax.bar(['x', 'y'], [1, 2]); ax.scatter([1, 2], [2, 1])\n"
                        "ax.hist([1, 2, 2, 3], bins=3); ax.set_title('t'); ax.set_xlabel('x'); ax.set_ylabel('y'); ax.legend()\n"
                        "fig.tight_layout(); fig.savefig(io.BytesIO(), format='png'); fig.savefig(io.BytesIO(), format='svg')\n"
                        "plt.figure(); plt.plot([1, 2]); plt.savefig(io.BytesIO(), format='png')\n"
                        "plt.close('all')\n" },
        { "seaborn", "import io\nimport matplotlib.pyplot as plt\nimport pandas as pd\nimport seaborn as sns\n"
                     "df = pd.DataFrame({'x': [1, 2, 3, 4], 'y': [2, 1, 4, 3], 'g': ['a', 'b', 'a', 'b']})\n"
                     "for plot in (lambda: sns.barplot(x=['a', 'b', 'c'], y=[1, 3, 2]), lambda: sns.lineplot(data=df, x='x', y='y'),\n"
                     "             lambda: sns.scatterplot(data=df, x='x', y='y', hue='g'), lambda: sns.histplot(df['x']),\n"
                     "             lambda: sns.boxplot(data=df, x='g', y='y'), lambda: sns.heatmap(df[['x', 'y']].corr())):\n"
                     "    ax = plot(); ax.figure.savefig(io.BytesIO(), format='png'); plt.close('all')\n" },
        { "requests", "import requests\n"
                      "requests.Request('POST', 'https://example.com/api', json={'a': 1}, params={'q': 'x'}).prepare()\n"
                      "requests.Session().prepare_request(requests.Request('GET', 'https://example.com/', headers={'a': 'b'}))\n" },
};

/* The Python error in flight as err ("what: the exception"); -1. */
static int python_failure(const char *what, char *err, size_t errlen)
{
        char why[300];
        python_error(why, sizeof(why));
        snprintf(err, errlen, "%s: %s", what, why);
        return -1;
}

/* Runs trusted code in a namespace of its own, dropped afterwards: __main__ stays clean. 0, or
 * -1 with err set ("what: the exception"). */
static int run_python(const char *code, const char *what, char *err, size_t errlen)
{
        PyObject *globals = PyDict_New();
        PyObject *r = globals ? PyRun_String(code, Py_file_input, globals, globals) : NULL;
        Py_XDECREF(globals);
        if (!r)
                return python_failure(what, err, errlen);
        Py_DECREF(r);
        return 0;
}

static int warm_up(const char *module, char *err, size_t errlen)
{
        for (size_t i = 0; i < sizeof(warmups) / sizeof(warmups[0]); i++) {
                if (strcmp(warmups[i].module, module) != 0)
                        continue;
                char what[128];
                snprintf(what, sizeof(what), "warming up %s", module);
                if (run_python(warmups[i].code, what, err, errlen) < 0)
                        return -1;
        }
        return 0;
}

/* Libraries write caches where the sandbox's environment says, on import: matplotlib its font
 * list in MPLCONFIGDIR=/tmp/.matplotlib. In a sandbox /tmp is its own; here it would be the
 * host's, a path anyone may have made a symlink to somewhere else. So the zygote gets a /tmp of
 * its own too — a mount namespace with an empty tmpfs there — and the paths the libraries note
 * are the ones scripts see. Where it may not (no CAP_SYS_ADMIN), the imports' caches go to a
 * private directory instead (see init_python), and /tmp is never written. */
static bool private_tmp(void)
{
        if (unshare(CLONE_NEWNS) < 0)
                return false;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,mode=0700") < 0)
                _exit(1); /* half done: what we would import with is not what we think */
        return true;
}

/* Around the preload and the runner's imports: the at-fork hooks and reseeds that every
 * fork would otherwise run in Python (the runner's _pyexec_fork_hooks says which and why).
 * At the end, the generators' states that reseed_mt_states fills. */
static int fork_hooks(bool begin, char *err, size_t errlen)
{
        PyObject *states = PyObject_CallMethod(runner_module, "_pyexec_fork_hooks", "O", begin ? Py_True : Py_False);
        if (!states || !PyList_Check(states) || PyList_GET_SIZE(states) > MAX_MT_STATES) {
                Py_XDECREF(states);
                return python_failure("the fork hooks", err, errlen);
        }
        n_mt_states = 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(states); i++) {
                PyObject *key, *position;
                if (!PyArg_ParseTuple(PyList_GET_ITEM(states, i), "OO", &key, &position))
                        break;
                mt_states[i] = (struct mt_state){ PyLong_AsVoidPtr(key), PyLong_AsVoidPtr(position) };
                n_mt_states = (int)i + 1;
        }
        Py_DECREF(states);
        if (PyErr_Occurred())
                return python_failure("the fork hooks", err, errlen);
        return 0;
}

/* CPython as python3 -I with the sandbox's environment, and the runner as pyexec_runner. */
static int start_interpreter(char *err, size_t errlen)
{
        /* The sandbox's environment, so os.environ in every script is exactly that. */
        char *envp[SB_SCRIPT_ENV_MAX];
        sb_build_script_env(envp, SB_SCRIPT_ENV_MAX);
        clearenv();
        for (char **e = envp; *e; e++)
                putenv(*e);

        zygote_arenas_reserve(); /* before the first object */
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
        return fork_hooks(true, err, errlen);
}

/* Without a /tmp of our own (private_tmp), the imports' caches go to a directory only we can
 * write, removed afterwards, and the environment is the sandbox's again. (matplotlib remembers
 * that directory; a script that asks it for its cache directory then gets one that does not
 * exist in its sandbox, which only TeX rendering, not installed, would want.) */
static const char caches_aside[] = "import os, tempfile\n"
                                   "os.environ['PYEXEC_SAVED'] = os.environ.get('MPLCONFIGDIR', '')\n"
                                   "os.environ['MPLCONFIGDIR'] = tempfile.mkdtemp(prefix='pyexec-zygote-')\n";
static const char caches_back[] = "import os, shutil\n"
                                  "shutil.rmtree(os.environ['MPLCONFIGDIR'], ignore_errors=True)\n"
                                  "os.environ['MPLCONFIGDIR'] = os.environ.pop('PYEXEC_SAVED')\n";

static int import_preload(const char *preload, bool own_tmp, char *err, size_t errlen)
{
        if (!own_tmp && run_python(caches_aside, "setting caches aside", err, errlen) < 0)
                return -1;
        char names[512];
        snprintf(names, sizeof(names), "%s", preload ? preload : "");
        for (char *save, *name = strtok_r(names, " ,", &save); name; name = strtok_r(NULL, " ,", &save)) {
                PyObject *m = PyImport_ImportModule(name);
                if (!m) {
                        char what[128];
                        snprintf(what, sizeof(what), "preloading %s", name);
                        return python_failure(what, err, errlen);
                }
                Py_DECREF(m);
                if (warm_up(name, err, errlen) < 0)
                        return -1;
        }
        if (!own_tmp && run_python(caches_back, "restoring the environment", err, errlen) < 0)
                return -1;
        return 0;
}

static int init_python(const char *preload, bool own_tmp, char *err, size_t errlen)
{
        if (start_interpreter(err, errlen) < 0 || import_preload(preload, own_tmp, err, errlen) < 0)
                return -1;
        /* What the runner imports for every script, and what it does for the first time in
         * a process, so no child pays for it. */
        if (PyRun_SimpleString("import codecs, io, json, linecache, math, random, resource, traceback, types\n"
                               "import pyexec_runner\n"
                               "pyexec_runner._pyexec_warm_up()\n") != 0) {
                snprintf(err, errlen, "warming up the runner failed");
                return -1;
        }
        if (fork_hooks(false, err, errlen) < 0)
                return -1;
        /* matplotlib keeps the fonts it drew with open, and a fork's first act is to drop
         * them (an os.register_at_fork hook), closing descriptors that are by then the script
         * process's own. So they go now; a fork reopened them anyway. */
        if (PyRun_SimpleString("import gc, sys\n"
                               "if 'matplotlib.font_manager' in sys.modules:\n"
                               "    sys.modules['matplotlib.font_manager']._get_font.cache_clear()\n"
                               "gc.collect()\n"
                               "gc.freeze()\n"
                               "sys.stdout.flush(); sys.stderr.flush()\n") != 0) {
                snprintf(err, errlen, "freezing the heap failed");
                return -1;
        }
        zygote_arenas_seal();
        collapse_heap();
        if (open_files_check(err, errlen) < 0)
                return -1;
        int threads = count_threads();
        if (threads != 1) {
                snprintf(err, errlen, "the preloaded modules left %d threads running; forking would be unsafe", threads);
                return -1;
        }
        return 0;
}

/* ---- script processes ------------------------------------------------------------------ */

/* The script processes forked and not yet reaped: where to report each one's end, and the
 * init to kill then (the end of the script's process is the end of its sandbox, as when init
 * is its parent in cold mode). A worker has at most a prepared and a running one per zygote,
 * and one being torn down. */
#define MAX_LIVE 16
static struct live {
        pid_t pid;
        int status_wr;
        int init_pidfd;
} live[MAX_LIVE];

/* Our own PID namespace, to return to after forking into a sandbox's (see inject). */
static int own_pidns = -1;

static void reap(void)
{
        int st;
        struct rusage ru;
        pid_t pid;
        while ((pid = wait4(-1, &st, WNOHANG | __WALL, &ru)) > 0) {
                for (int i = 0; i < MAX_LIVE; i++) {
                        if (live[i].pid != pid)
                                continue;
                        struct sb_init_report report = { .wait_status = st, .usage = ru };
                        (void)write_all(live[i].status_wr, &report, sizeof(report));
                        (void)close(live[i].status_wr);
                        (void)syscall(SYS_pidfd_send_signal, live[i].init_pidfd, SIGKILL, NULL, 0);
                        (void)close(live[i].init_pidfd);
                        live[i].pid = 0;
                }
        }
}

/* Without CAP_SYS_ADMIN of its own (a least-privilege container) the zygote cannot enter a
 * sandbox's PID namespace to fork into it; its fork can, together with the user namespace,
 * but only its own children are then in it. So the fork forks once more and stays outside as
 * a relay: it keeps nothing open, waits for the script's process and ends the way it did, so
 * that the zygote's report is the script process's. */
static __attribute__((noreturn)) void relay_end_of(pid_t script)
{
        (void)syscall(SYS_close_range, 0, ~0U, 0);
        int st;
        while (waitpid(script, &st, __WALL) < 0)
                if (errno != EINTR)
                        _exit(127);
        if (WIFSIGNALED(st)) {
                struct rlimit no_core = { 0, 0 };
                (void)setrlimit(RLIMIT_CORE, &no_core);
                (void)signal(WTERMSIG(st), SIG_DFL);
                sigset_t all;
                sigemptyset(&all);
                (void)sigprocmask(SIG_SETMASK, &all, NULL);
                (void)raise(WTERMSIG(st));
        }
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 127);
}

/* The fork, from its first instruction: into the request's cgroups, into init's namespaces,
 * then the script process's recipe with the interpreter as payload. Runs zygote code only
 * until the recipe has confined it. relay: the zygote could not fork into the PID namespace
 * (see relay_end_of). */
static __attribute__((noreturn)) void become_script_process(const struct zy_inject *req, int *fds, bool relay)
{
        struct sb_child_ctx ctx = {
                .limits = req->limits, .payload = warm_payload, .go_rd = -1, .ready_wr = -1,
                .ends = { .script_rd = fds[ZY_FD_SCRIPT], .stdout_wr = fds[ZY_FD_STDOUT], .stderr_wr = fds[ZY_FD_STDERR],
                          .result_wr = fds[ZY_FD_RESULT], .setup_err_wr = fds[ZY_FD_SETUP_ERR], .status_wr = -1 },
        };
        /* The report is the zygote's to write: the script must not hold its pipe. */
        (void)close(fds[ZY_FD_STATUS]);
        (void)close(ZY_CONTROL_FD);
        (void)close(own_pidns);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) /* the zygote's death ends its sandboxes */
                sb_setup_failed(&ctx, "prctl(PR_SET_PDEATHSIG)", errno);
        /* In the request's cgroups from its birth (join_cgroups()): charged to the request from
         * the first copied page on. As init does for itself: sandboxes go first when the
         * machine runs out of memory — and before this forker, which never goes. Written while
         * this process still owns its /proc entries. */
        int r;
        if ((r = write_text_file("/proc/self/oom_score_adj", 0, "1000")) < 0)
                sb_setup_failed(&ctx, "writing oom_score_adj", r);
        int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
        if (!req->share_caller_netns)
                flags |= CLONE_NEWNET;
        if (relay)
                flags |= CLONE_NEWPID;
        if (setns(fds[ZY_FD_PIDFD], flags) < 0)
                sb_setup_failed(&ctx, "setns() into the sandbox's namespaces", errno);
        /* init's cgroup namespace is rooted where init is, outside the request's cgroups (it
         * is not moved: sandbox.c): one of its own, rooted at them, shows the script "/". */
        if (unshare(CLONE_NEWCGROUP) < 0)
                sb_setup_failed(&ctx, "unshare(CLONE_NEWCGROUP)", errno);
        if (relay) {
                pid_t script = fork();
                if (script > 0)
                        relay_end_of(script);
                if (script < 0)
                        sb_setup_failed(&ctx, "fork", errno);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        sb_setup_failed(&ctx, "prctl(PR_SET_PDEATHSIG)", errno);
        }
        (void)close(fds[ZY_FD_PIDFD]);
        for (int i = 0; i < req->ncgroups; i++)
                (void)close(fds[ZY_FD_CGROUPS + i]);
        sigset_t all;
        sigemptyset(&all);
        (void)sigprocmask(SIG_SETMASK, &all, NULL); /* the zygote keeps SIGCHLD blocked */
        sb_hide_identity("python3"); /* named as in cold mode */
        sb_script_process_main(&ctx);
}

static void reply(int err, pid_t pid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply(int err, pid_t pid, const char *fmt, ...)
{
        struct zy_reply r = { .err = err, .pid = pid };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r.message, sizeof(r.message), fmt, ap);
        va_end(ap);
        (void)send(ZY_CONTROL_FD, &r, sizeof(r), MSG_NOSIGNAL);
}

/* Moves this process into the cgroups whose cgroup.procs files are fds[0..n), unless it is in
 * them already: the worker lends its tier's cgroups to one sandbox at a time (a slot,
 * sb_cgroup_borrow()), so a forker moves once, and each of its forks is born there without
 * the grace period a move waits for. A forker shares its slot with the script it forked, and
 * takes itself out of its memory cgroup's OOM kills (as the script process is the first). */
static int join_cgroups(const int *fds, int n)
{
        static dev_t joined_dev;
        static ino_t joined_ino;
        struct stat st;
        if (n == 0)
                return 0;
        if (fstat(fds[0], &st) < 0)
                return -errno;
        if (st.st_dev == joined_dev && st.st_ino == joined_ino)
                return 0;
        int r = sb_cgroup_move(fds, n, 0);
        if (r < 0)
                return r;
        joined_dev = st.st_dev;
        joined_ino = st.st_ino;
        /* Without CAP_SYS_RESOURCE (a least-privilege container) this fails, and the forker
         * keeps 0: a v1 OOM kill still picks a script process (1000), but v2's memory.oom.group
         * kill takes the forker too, and the worker connects anew for the next script. */
        (void)write_text_file("/proc/self/oom_score_adj", 0, "-1000");
        return 0;
}

/* Forks a script process into the sandbox whose init's pidfd is fds[0]. Forking into its PID
 * namespace takes setns() in the zygote itself (a PID namespace applies to children only);
 * the zygote returns to its own at once. Without the right to (EPERM), the fork relays. */
static void inject(const struct zy_inject *req, int *fds, int nfds)
{
        int slot = -1;
        for (int i = 0; i < MAX_LIVE && slot < 0; i++)
                if (live[i].pid == 0)
                        slot = i;
        if (nfds != ZY_FD_CGROUPS + req->ncgroups || req->ncgroups < 0 || req->ncgroups > SB_CG_COUNT) {
                reply(EPROTO, 0, "pyexec-zygote: a request with %d descriptors", nfds);
                return;
        }
        if (slot < 0) {
                reply(EAGAIN, 0, "pyexec-zygote: %d script processes already running", MAX_LIVE);
                return;
        }
        int r = join_cgroups(fds + ZY_FD_CGROUPS, req->ncgroups);
        if (r < 0) {
                reply(-r, 0, "pyexec-zygote: joining the sandbox's cgroups: %s", strerror(-r));
                return;
        }
        bool relay = false;
        if (setns(fds[ZY_FD_PIDFD], CLONE_NEWPID) < 0) {
                if (errno != EPERM) {
                        reply(errno, 0, "setns() into the sandbox's PID namespace: %s", strerror(errno));
                        return;
                }
                relay = true;
        }
        pid_t pid = fork();
        int fork_errno = errno;
        if (pid == 0)
                become_script_process(req, fds, relay);
        if (!relay && setns(own_pidns, CLONE_NEWPID) < 0) {
                /* Every later fork would land in that sandbox: stop; the worker starts anew. */
                reply(errno, 0, "setns() back into the zygote's PID namespace: %s", strerror(errno));
                _exit(1);
        }
        if (pid < 0) {
                reply(fork_errno, 0, "fork: %s", strerror(fork_errno));
                return;
        }
        live[slot] = (struct live){ .pid = pid, .status_wr = fds[ZY_FD_STATUS], .init_pidfd = fds[ZY_FD_PIDFD] };
        fds[ZY_FD_STATUS] = fds[ZY_FD_PIDFD] = -1; /* kept */
        reply(0, pid, "ok");
}

static volatile sig_atomic_t child_exited;
static void on_sigchld(int sig) { (void)sig; child_exited = 1; }

/* Receives one request; its descriptors land in fds. Returns the datagram's length, 0 when
 * the worker is gone, -1 on a transient error. */
static ssize_t receive(struct zy_inject *req, int *fds, int *nfds)
{
        char control[CMSG_SPACE(sizeof(int) * ZY_INJECT_FDS_MAX)];
        struct iovec iov = { req, sizeof(*req) };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
        ssize_t n = recvmsg(ZY_CONTROL_FD, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        *nfds = 0;
        if (n <= 0)
                return n == 0 ? 0 : (errno == EAGAIN || errno == EINTR ? -1 : 0);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                int *in = (int *)CMSG_DATA(c);
                for (int i = 0; i < count; i++) {
                        if (*nfds < ZY_INJECT_FDS_MAX)
                                fds[(*nfds)++] = in[i];
                        else
                                (void)close(in[i]);
                }
        }
        if ((size_t)n != sizeof(*req) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
                req->ncgroups = -1; /* refused by inject() */
        return n;
}

/* Everything a fork needs, made once: the interpreter with its preload, the seccomp program,
 * our PID namespace. 0, or -1 with err set. */
static int prepare(const char *preload, char *err, size_t errlen)
{
        if (init_python(preload, private_tmp(), err, errlen) < 0)
                return -1;
        /* Compiled once here; each script process installs the program. */
        int r = sb_seccomp_compile();
        if (r < 0) {
                snprintf(err, errlen, "compiling the seccomp filter: %s", strerror(-r));
                return -1;
        }
        own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_pidns < 0) {
                snprintf(err, errlen, "opening /proc/self/ns/pid: %s", strerror(errno));
                return -1;
        }
        return 0;
}

/* SIGCHLD is blocked except inside ppoll(), so an exit is never missed between the check and
 * the wait: a report the worker waits for is sent at once. Returns the mask to wait with. */
static sigset_t block_sigchld(void)
{
        struct sigaction sa = { .sa_handler = on_sigchld };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGCHLD, &sa, NULL);
        sigset_t chld, waiting;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, &waiting);
        sigdelset(&waiting, SIGCHLD);
        return waiting;
}

/* One worker's requests, on the control socket, until the worker is gone. */
static void serve_worker(const sigset_t *waiting)
{
        for (;;) {
                struct pollfd pfd = { .fd = ZY_CONTROL_FD, .events = POLLIN };
                int r = ppoll(&pfd, 1, NULL, waiting);
                if (child_exited) {
                        child_exited = 0;
                        reap();
                }
                if (r <= 0)
                        continue;
                struct zy_inject req;
                int fds[ZY_INJECT_FDS_MAX], nfds;
                ssize_t n = receive(&req, fds, &nfds);
                if (n == 0)
                        break; /* the worker is gone */
                if (n > 0)
                        inject(&req, fds, nfds);
                for (int i = 0; i < nfds; i++)
                        if (fds[i] >= 0)
                                (void)close(fds[i]);
        }
}

/* A worker's connection: the two descriptors that come with a datagram on the door — its
 * socket and its network namespace — into conn[0..1]; -1 when the datagram had other than
 * that (and *eof when every client end of the door is closed). */
static int receive_connection(int conn[2], bool *eof)
{
        char byte, control[CMSG_SPACE(sizeof(int) * 2)];
        struct iovec iov = { &byte, 1 };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
        ssize_t n = recvmsg(ZY_CONTROL_FD, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        *eof = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
        struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                return -1;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[2] = { -1, -1 };
        memcpy(got, CMSG_DATA(c), sizeof(int) * (size_t)(count < 2 ? count : 2));
        if (count != 2 || (msg.msg_flags & MSG_CTRUNC)) {
                for (int i = 0; i < count && i < 2; i++)
                        (void)close(got[i]);
                return -1;
        }
        conn[0] = got[0];
        conn[1] = got[1];
        return 0;
}

/* Tells a worker on its connection why it gets no interpreter here, and hangs up. */
static void refuse(const int conn[2], const char *why)
{
        struct zy_hello h = { .ok = 0 };
        snprintf(h.message, sizeof(h.message), "pyexec-zygote: %s", why);
        (void)send(conn[0], &h, sizeof(h), MSG_NOSIGNAL);
        (void)close(conn[0]);
        (void)close(conn[1]);
}

/* A fork of the hub that serves one worker, on conn[0], until the worker is gone. Its scripts
 * share the worker's network namespace (conn[1]) when the worker keeps one for them
 * (struct sb_placement): they cannot enter it from their user namespace, so their fork must
 * already be in it — as a worker's own zygote was, and never in the host's. */
static __attribute__((noreturn)) void become_forker(const int conn[2], const sigset_t *waiting)
{
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* the hub's death ends its forks' sandboxes */
        if (getppid() == 1 || dup2(conn[0], ZY_CONTROL_FD) < 0)
                _exit(1);
        (void)close(conn[0]);
        /* Already there when the worker has no namespace of its own (a container without
         * CAP_SYS_ADMIN: each sandbox then makes one), and setns() would want that capability
         * even to stay. */
        struct stat theirs, ours;
        bool same = fstat(conn[1], &theirs) == 0 && stat("/proc/self/ns/net", &ours) == 0 &&
                    theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
        if (!same && setns(conn[1], CLONE_NEWNET) < 0) {
                send_hello(0, "pyexec-zygote: setns() into the worker's network namespace: %s", strerror(errno));
                _exit(1);
        }
        (void)close(conn[1]);
        (void)prctl(PR_SET_NAME, "pyexec-forker");
        send_hello(1, "ready");
        serve_worker(waiting);
        _exit(0);
}

/* The hub (--hub): the pool's one interpreter of this tier. The control socket is a door that
 * every worker holds; each sends the end of a socket pair through it, and a fork of this
 * process — sharing every page of the interpreter with it and its other forks — serves that
 * worker alone, so the pool forks in parallel while the interpreter's memory is paid once.
 * prepare_err: why the interpreter could not be made (each worker is told at once, so that it
 * runs cold instead of waiting). Returns when every worker holding the door is gone. */
static void serve_hub(const char *prepare_err, const sigset_t *waiting)
{
        (void)prctl(PR_SET_NAME, "pyexec-hub");
        for (;;) {
                struct pollfd pfd = { .fd = ZY_CONTROL_FD, .events = POLLIN };
                int r = ppoll(&pfd, 1, NULL, waiting);
                if (child_exited) {
                        child_exited = 0;
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ; /* a worker's fork, gone with its worker */
                }
                if (r <= 0)
                        continue;
                bool eof;
                int conn[2];
                int got = receive_connection(conn, &eof);
                if (eof)
                        return;
                if (got < 0)
                        continue;
                if (prepare_err) {
                        refuse(conn, prepare_err);
                        continue;
                }
                pid_t pid = fork();
                if (pid == 0)
                        become_forker(conn, waiting);
                if (pid < 0) {
                        refuse(conn, strerror(errno));
                        continue;
                }
                (void)close(conn[0]);
                (void)close(conn[1]);
        }
}

/*   pyexec-zygote PRELOAD          one worker's interpreter (fd 3: its control socket)
 *   pyexec-zygote PRELOAD --hub    the pool's, for every worker (fd 3: the door, serve_hub) */
int main(int argc, char **argv)
{
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                return 1;
        bool hub = argc > 2 && strcmp(argv[2], "--hub") == 0;
        char err[400];
        int r = prepare(argc > 1 ? argv[1] : "", err, sizeof(err));
        sigset_t waiting = block_sigchld();
        if (hub) {
                serve_hub(r < 0 ? err : NULL, &waiting);
                return 0;
        }
        if (r < 0) {
                send_hello(0, "pyexec-zygote: %s", err);
                return 1;
        }
        send_hello(1, "ready");
        serve_worker(&waiting);
        return 0;
}
