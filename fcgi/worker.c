/* worker.c — pyexec-worker: the FastCGI pool that spawn-fcgi starts, and its master.
 *
 *   spawn-fcgi -n -s SOCKET -- pyexec-worker [-c CONFIG] [-w WORKERS] [-m MONITOR_SOCKET] [-o USER]
 *
 * spawn-fcgi binds the socket and execs this program with it as fd 0 (FastCGI's listening
 * socket). The process becomes the pool's master. It checks once that sandboxes can be set up
 * on this machine, forks the workers (serve.c), which accept on the shared socket, and the
 * monitor (monitor.c), which answers health checks and metrics on a socket of its own. Then
 * it only looks after them:
 *
 *   - a worker that dies is replaced at once, or after a growing back-off (up to 5 s) when
 *     workers keep dying right after they start;
 *   - SIGHUP reloads the config: a new generation of workers starts with it, and the old one
 *     is retired (each finishes the request it holds) once the new one accepts — no request
 *     is refused meanwhile. An invalid config is logged and ignored;
 *   - SIGTERM/SIGINT drain: every worker finishes its request and exits, then the monitor,
 *     then the master. No process outlives it: workers and monitor get SIGTERM if the master
 *     dies, sandboxes SIGKILL if their worker dies, and orphans come back to the master
 *     (child subreaper) to be reaped. */
#define _GNU_SOURCE
#include <errno.h>
#include <fastcgi.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "monitor.h"
#include "sandbox.h"
#include "serve.h"
#include "stats.h"

#define TICK_MS 50
#define RETIRE_AFTER_MS 10000 /* retire the old generation even if the new one is slow to start */

static struct sb_config config;
static struct key_set *keys; /* the config's api_keys_file, parsed; NULL: none */
static bool exposed;         /* --exposed: nginx listens beyond loopback */
static const char *config_path;
static int pinned_workers; /* -w: overrides the config's "workers" */
static struct pool_stats *stats;

/* The master's own view of each slot (the shared one is in stats->slots). */
static struct {
        long long started_ms;
        long long respawn_at_ms; /* > 0: replace at this time */
        bool retiring;           /* sent SIGTERM by a reload: not to be replaced */
} slot_info[POOL_MAX_SLOTS];
static unsigned generation;
static unsigned quick_deaths;
static pid_t monitor_pid = -1;
static int monitor_fd = -1;
/* The pool's warm interpreters (sandbox.h), and those of earlier configs whose workers are
 * still finishing (a reload that changed what is preloaded). */
static struct sb_hub *hub;
static long long hub_started_ms;
#define MAX_RETIRING_HUBS 8
static struct sb_hub *retiring_hubs[MAX_RETIRING_HUBS];

static volatile sig_atomic_t stop_signal, reload_requested;
static void on_stop(int sig) { stop_signal = sig; }
static void on_hup(int sig) { (void)sig; reload_requested = 1; }

/* ---- start-up checks ------------------------------------------------------------------- */

/* Whether sandboxes work here: a known script, run once before any worker starts. */
static void check_sandbox(void)
{
        if (sb_probe(&config, stats->sandbox_problem, sizeof(stats->sandbox_problem)) == 0)
                stats->sandbox_ok = 1;
}

/* What scripts find installed, for GET /runtime: asked once of a sandbox, since packages do
 * not change under a running pool (a reload keeps it). Only where the probe passed: otherwise
 * /health says why and /runtime shows no inventory. */
static void take_inventory(void)
{
        if (!stats->sandbox_ok)
                return;
        struct sbuf json = { 0 };
        char err[512];
        if (sb_inventory(&config, &json, err, sizeof(err)) < 0 ||
            stats_set_inventory(stats, json.data, json.len, err, sizeof(err)) < 0)
                log_line("event=inventory_failed reason=\"%s\" -- /runtime shows no python or packages", err);
        sbuf_free(&json);
}

/* What GET /runtime tells: set at start and at each reload. */
static void publish_runtime(void)
{
        bool cg = sb_cgroups_enabled();
        snprintf(stats->runtime.cgroups, sizeof(stats->runtime.cgroups), "%s", sb_cgroups_name());
        snprintf(stats->runtime.cgroups_problem, sizeof(stats->runtime.cgroups_problem), "%s",
                 cg ? "" : sb_cgroups_problem());
        snprintf(stats->runtime.mode, sizeof(stats->runtime.mode), "%s", config.supply.warm ? "warm" : "cold");
        stats->runtime.workers = config.service.workers;
        stats->runtime.limits = config.limits;
        stats->runtime.body_max_bytes = config.service.body_max_bytes;
        auth_publish(stats, keys, exposed);
}

/* The config and its keys file: a key file that does not parse refuses both. */
static int load_config(struct sb_config *c, struct key_set **k, char *err, size_t errlen)
{
        *k = NULL;
        sb_config_default(c);
        if (config_path && sb_config_load(c, config_path, err, errlen) < 0)
                return -1;
        if (pinned_workers)
                c->service.workers = (unsigned)pinned_workers;
        if (sb_limits_check_ids(&c->limits, "/etc", err, errlen) < 0)
                return -1;
        if (c->service.workers * 2 > POOL_MAX_SLOTS) {
                snprintf(err, errlen, "workers: at most %d", POOL_MAX_SLOTS / 2);
                return -1;
        }
        return auth_load(c, k, err, errlen) < 0 ? -1 : 0;
}

/* ---- children -------------------------------------------------------------------------- */

static int free_slot(void)
{
        for (int i = 0; i < POOL_MAX_SLOTS; i++)
                if (stats->slots[i].pid == 0 && slot_info[i].respawn_at_ms == 0)
                        return i;
        return -1;
}

/* fork() for the pool's own children, the workers and the monitor. A signal that reaches a
 * child between fork() and its own dispositions runs the master's handler there, which only
 * sets the child's copy of the master's flags: a drain's SIGTERM to a worker forked a moment
 * before was lost, the worker waited for connections and the master for the worker, forever
 * (test_lifecycle, SIGTERM ~200 ms into the start: 1 CI run in ~5; 1 in 90 tries under load).
 * So the master's signals stay blocked across fork(), and the child unblocks them once they
 * are back to their defaults (SIGHUP: ignored, as the children do): what came meanwhile is
 * then delivered to the child as a child's. */
static pid_t fork_pool_child(void)
{
        sigset_t masters, saved;
        sigemptyset(&masters);
        sigaddset(&masters, SIGTERM);
        sigaddset(&masters, SIGINT);
        sigaddset(&masters, SIGHUP);
        (void)sigprocmask(SIG_BLOCK, &masters, &saved);
        pid_t pid = fork();
        int fork_errno = errno;
        if (pid == 0) {
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                signal(SIGHUP, SIG_IGN);
        }
        (void)sigprocmask(SIG_SETMASK, &saved, NULL);
        errno = fork_errno;
        return pid;
}

static void spawn_worker(int slot, bool warm_first)
{
        stats->slots[slot].generation = generation;
        stats_set_state(stats, slot, SLOT_STARTING);
        slot_info[slot] = (typeof(slot_info[0])){ .started_ms = monotonic_ms() };
        pid_t pid = fork_pool_child();
        if (pid == 0) {
                if (monitor_fd >= 0)
                        (void)close(monitor_fd);
                sb_hub_in_child(hub, true);
                serve_main(&config, stats, slot, hub, warm_first);
        }
        if (pid < 0) {
                log_line("event=fork_failed reason=\"%s\"", strerror(errno));
                slot_info[slot].respawn_at_ms = monotonic_ms() + 1000;
                return;
        }
        __atomic_store_n(&stats->slots[slot].pid, pid, __ATOMIC_RELAXED);
}

static void spawn_monitor(void)
{
        if (monitor_fd < 0)
                return;
        pid_t pid = fork_pool_child();
        if (pid == 0) {
                sb_hub_in_child(hub, false);
                /* The monitor answers on its own socket: the pool's (fd 0) is not its business. */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup3(null, FCGI_LISTENSOCK_FILENO, 0) < 0)
                        _exit(1);
                (void)close(null);
                monitor_main(monitor_fd, stats);
        }
        monitor_pid = pid;
}

static int live_workers(unsigned gen, bool *all_ready)
{
        int n = 0;
        *all_ready = true;
        for (int i = 0; i < POOL_MAX_SLOTS; i++) {
                if (stats->slots[i].pid <= 0 || stats->slots[i].generation != gen)
                        continue;
                n++;
                if (__atomic_load_n(&stats->slots[i].state, __ATOMIC_RELAXED) == SLOT_STARTING)
                        *all_ready = false;
        }
        return n;
}

/* ---- the pool's interpreters ------------------------------------------------------------ */

static void start_hub(void)
{
        char err[256];
        hub_started_ms = monotonic_ms();
        if (sb_hub_new(&config.supply, &hub, err, sizeof(err)) < 0) {
                hub = NULL;
                log_line("event=warm_unavailable reason=\"%s\" -- each worker starts interpreters of its own", err);
        }
}

/* A reload: the interpreters stay unless what they preload changed (or fresh is asked for: a
 * rotation); then new ones start and the old ones end with the last worker that uses them.
 * Before the new workers are forked. */
/* A free place in retiring_hubs, or -1. */
static int free_retiring_slot(void)
{
        for (int i = 0; i < MAX_RETIRING_HUBS; i++)
                if (!retiring_hubs[i])
                        return i;
        return -1;
}

static void reload_hub(bool fresh)
{
        if (!fresh && sb_hub_serves(hub, &config.supply))
                return;
        int slot = free_retiring_slot();
        sb_hub_retire(hub);
        if (hub && slot >= 0 && !sb_hub_finished(hub))
                retiring_hubs[slot] = hub;
        else /* none ran, or too many reloads in flight: this one's workers lose their interpreters */
                sb_hub_free(hub);
        hub = NULL;
        start_hub();
}

/* Whether pid was one of the interpreters, which then restart or, retired, are done with. */
static bool hub_reaped(pid_t pid, int status)
{
        const char *preload = sb_hub_reaped(hub, pid);
        if (preload) {
                log_line("event=interpreter_exit preload=\"%s\" status=%d -- starting it again", preload, status);
                return true;
        }
        for (int i = 0; i < MAX_RETIRING_HUBS; i++) {
                if (retiring_hubs[i] && sb_hub_reaped(retiring_hubs[i], pid)) {
                        if (sb_hub_finished(retiring_hubs[i])) {
                                sb_hub_free(retiring_hubs[i]);
                                retiring_hubs[i] = NULL;
                        }
                        return true;
                }
        }
        return false;
}

static void stop_hubs(void)
{
        sb_hub_free(hub);
        hub = NULL;
        for (int i = 0; i < MAX_RETIRING_HUBS; i++) {
                sb_hub_free(retiring_hubs[i]);
                retiring_hubs[i] = NULL;
        }
}

/* ---- children, continued ------------------------------------------------------------------ */

static void reap(void)
{
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (pid == monitor_pid) {
                        monitor_pid = -1;
                        if (!stop_signal) {
                                log_line("event=monitor_died status=%d -- restarting it", status);
                                spawn_monitor();
                        }
                        continue;
                }
                if (hub_reaped(pid, status))
                        continue;
                int slot = -1;
                for (int i = 0; i < POOL_MAX_SLOTS; i++)
                        if (stats->slots[i].pid == pid)
                                slot = i;
                if (slot < 0)
                        continue; /* an orphan handed to us as subreaper */
                __atomic_store_n(&stats->slots[slot].pid, 0, __ATOMIC_RELAXED);
                stats_set_state(stats, slot, SLOT_FREE);
                bool expected = stop_signal || slot_info[slot].retiring;
                if (WIFSIGNALED(status))
                        log_line("event=worker_exit worker=%d signal=%d expected=%d", (int)pid, WTERMSIG(status), expected);
                else
                        log_line("event=worker_exit worker=%d status=%d expected=%d", (int)pid, WEXITSTATUS(status),
                                 expected);
                if (expected || stats->slots[slot].generation != generation)
                        continue;
                /* Replace it: at once if it had lived a while, else with a growing back-off. */
                stats_add(&stats->respawns, 1);
                long long now = monotonic_ms();
                quick_deaths = now - slot_info[slot].started_ms < 1000 ? quick_deaths + 1 : 0;
                long long delay = quick_deaths > 1 ? 100LL << (quick_deaths < 7 ? quick_deaths : 7) : 0;
                slot_info[slot].respawn_at_ms = now + (delay > 5000 ? 5000 : delay);
        }
}

static void respawn_due(void)
{
        long long now = monotonic_ms();
        for (int i = 0; i < POOL_MAX_SLOTS; i++) {
                if (slot_info[i].respawn_at_ms == 0 || now < slot_info[i].respawn_at_ms)
                        continue;
                slot_info[i].respawn_at_ms = 0;
                if (!stop_signal)
                        spawn_worker(i, false);
        }
}

/* ---- reload ---------------------------------------------------------------------------- */

static long long reload_started_ms;

/* A new generation of workers with the current config; the old one is retired once it accepts. */
static void start_generation(void)
{
        generation++;
        reload_started_ms = monotonic_ms();
        /* Slots waiting for a respawn belong to the old generation: drop them. */
        for (int i = 0; i < POOL_MAX_SLOTS; i++)
                slot_info[i].respawn_at_ms = 0;
        for (unsigned n = 0; n < config.service.workers; n++) {
                int slot = free_slot();
                if (slot >= 0)
                        spawn_worker(slot, true);
        }
}

static void reload(void)
{
        struct sb_config fresh;
        struct key_set *fresh_keys;
        char err[512];
        if (load_config(&fresh, &fresh_keys, err, sizeof(err)) < 0) {
                log_line("event=reload_rejected reason=\"%s\" -- keeping the running config", err);
                return;
        }
        config = fresh;
        free(keys);
        keys = fresh_keys;
        publish_runtime();
        reload_hub(false);
        start_generation();
        log_line("event=reload generation=%u workers=%u wall_time_s=%u memory_mb=%lu api_keys=%d", generation,
                 config.service.workers, config.limits.wall_time_s, config.limits.memory_mb,
                 keys ? (int)keys->count : -1);
}

/* Every warm_rotate_s, new interpreters and a new generation of workers, as a reload that
 * changed the preload would start: each interpreter's string hash secret and memory layout
 * are its own from its start (CPython picks the secret once; its forks, every script of the
 * tier, share it and the addresses of everything mapped), so a script can learn them and
 * use them against the scripts that come after it from the same interpreter (a dict of
 * strings that all collide, for one that handles text it is sent). Rotating bounds that to
 * the scripts of warm_rotate_s seconds (where the pool has no hub, the new workers start
 * interpreters of their own, as new). Not while a reload's roll is still under way. */
static void rotate_interpreters(void)
{
        if (!config.supply.warm || !config.supply.warm_rotate_s || reload_started_ms ||
            monotonic_ms() - hub_started_ms < (long long)config.supply.warm_rotate_s * 1000)
                return;
        /* Nor while the interpreters of MAX_RETIRING_HUBS earlier rotations still serve old
         * workers' long scripts: reload_hub would have no place for these and end them under
         * their scripts. */
        if (free_retiring_slot() < 0)
                return;
        reload_hub(true);
        start_generation();
        log_line("event=rotate generation=%u warm_rotate_s=%u", generation, config.supply.warm_rotate_s);
}

/* Once the new generation accepts (or after RETIRE_AFTER_MS), the old one finishes its
 * requests and goes. */
static void retire_old_generation(void)
{
        if (!reload_started_ms)
                return;
        bool ready;
        live_workers(generation, &ready);
        if (!ready && monotonic_ms() - reload_started_ms < RETIRE_AFTER_MS)
                return;
        for (int i = 0; i < POOL_MAX_SLOTS; i++) {
                if (stats->slots[i].pid > 0 && stats->slots[i].generation != generation && !slot_info[i].retiring) {
                        slot_info[i].retiring = true;
                        (void)kill(stats->slots[i].pid, SIGTERM);
                }
        }
        reload_started_ms = 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(const char *argv0)
{
        fprintf(stderr, "usage: %s [-c CONFIG] [-w WORKERS] [-m MONITOR_SOCKET] [-o SOCKET_OWNER]\n"
                        "       (fd 0: the FastCGI listening socket, as spawn-fcgi passes it)\n"
                        "       (--exposed: nginx listens beyond loopback; without api keys, /health warns)\n"
                        "       %s [-c CONFIG] [-w WORKERS] --print-config   (the settings in force, key=value)\n"
                        "       %s --print-error-kinds   (every error_kind of the API and its HTTP status)\n",
                argv0, argv0, argv0);
}

/* A unix socket path, or HOST:PORT for TCP (libfcgi's convention). */
static bool is_tcp(const char *where) { return strchr(where, ':') != NULL; }

static int open_monitor_socket(const char *path, const char *owner)
{
        if (is_tcp(path))
                return FCGX_OpenSocket(path, 64);
        (void)unlink(path);
        int fd = FCGX_OpenSocket(path, 64);
        if (fd < 0)
                return -1;
        struct passwd *pw = owner ? getpwnam(owner) : NULL;
        if (pw && chown(path, pw->pw_uid, pw->pw_gid) < 0)
                log_line("event=warning reason=\"chown %s: %s\"", path, strerror(errno));
        (void)chmod(path, pw ? 0660 : 0666);
        return fd;
}

struct options {
        const char *monitor_path, *owner;
        bool print_config;
        bool print_error_kinds;
};

/* 0 to go on; -1: -h, usage shown, exit 0; else the exit status (after a message). */
static int parse_args(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = { { "print-config", no_argument, NULL, 'p' },
                                                  { "print-error-kinds", no_argument, NULL, 'k' },
                                                  { "exposed", no_argument, NULL, 'x' },
                                                  { NULL, 0, NULL, 0 } };
        config_path = getenv("PYEXEC_CONFIG");
        int opt;
        while ((opt = getopt_long(argc, argv, "c:w:m:o:ph", longopts, NULL)) != -1) {
                switch (opt) {
                case 'c': config_path = optarg; break;
                case 'w': pinned_workers = atoi(optarg); break;
                case 'm': o->monitor_path = optarg; break;
                case 'o': o->owner = optarg; break;
                case 'p': o->print_config = true; break;
                case 'k': o->print_error_kinds = true; break;
                case 'x': exposed = true; break;
                default: usage(argv[0]); return opt == 'h' ? -1 : 1;
                }
        }
        if (pinned_workers < 0 || pinned_workers > POOL_MAX_SLOTS / 2) {
                fprintf(stderr, "pyexec-worker: -w must be from 1 to %d\n", POOL_MAX_SLOTS / 2);
                return 1;
        }
        char err[512];
        if (load_config(&config, &keys, err, sizeof(err)) < 0) {
                fprintf(stderr, "pyexec-worker: %s\n", err);
                return 1;
        }
        return 0;
}

/* Before FCGX_Init(): libfcgi installs its own SIGTERM handler where it finds the default one,
 * which only sets its "shutdown pending" flag. A SIGTERM during start-up then never reached
 * us, and every worker and monitor forked afterwards inherited the flag, so their accept
 * returned at once and the master replaced them forever (test_lifecycle caught it, 1 run in
 * ~20). */
static void install_master_signals(void)
{
        struct sigaction sa = { .sa_handler = on_stop };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &(struct sigaction){ .sa_handler = on_hup }, NULL);
        signal(SIGPIPE, SIG_IGN);
}

/* The shared counters, the monitor's socket and the start-up probe, with what it found in
 * the log. 0, or the exit status. */
static int start_pool(const struct options *o)
{
        if (FCGX_Init() != 0 || !(stats = stats_create())) {
                fprintf(stderr, "pyexec-worker: cannot initialise libfcgi or the shared counters\n");
                return 1;
        }
        if (o->monitor_path && (monitor_fd = open_monitor_socket(o->monitor_path, o->owner)) < 0) {
                fprintf(stderr, "pyexec-worker: cannot listen on %s\n", o->monitor_path);
                return 1;
        }
        check_sandbox(); /* the master makes no more sandboxes after these two; each worker has its own */
        take_inventory();
        publish_runtime();
        if (!sb_cgroups_enabled())
                log_line("event=cgroups_unavailable reason=\"%s\" -- %s", sb_cgroups_problem(),
                         config.limits.require_cgroups ? "scripts are refused (require_cgroups = 1)"
                                                : "sandboxes are limited by rlimits only (require_cgroups = 0)");
        if (exposed && !keys)
                log_line("event=warning reason=\"%s\" -- WARNING: %s", "no API keys", STATS_OPEN_WARNING);
        if (stats->sandbox_ok)
                log_line("event=start workers=%u sandbox=ok mode=%s prefork=%u cgroups=%s wall_time_s=%u memory_mb=%lu",
                         config.service.workers, config.supply.warm ? "warm" : "cold", config.supply.prefork,
                         sb_cgroups_name(), config.limits.wall_time_s, config.limits.memory_mb);
        else
                log_line("event=start workers=%u sandbox=UNAVAILABLE reason=\"%s\" -- scripts will be refused with 500 "
                         "sandbox_error and /health answers 503; nothing runs unsandboxed",
                         config.service.workers, stats->sandbox_problem);
        return 0;
}

/* Until SIGTERM/SIGINT: reap and replace workers, sweep orphaned cgroups, reload on SIGHUP. */
static void supervise(void)
{
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        (void)prctl(PR_SET_NAME, "pyexec-master");
        if (stop_signal)
                return; /* stopped while starting: drain() has nothing to wait for */
        start_hub();
        spawn_monitor();
        for (unsigned i = 0; i < config.service.workers; i++)
                spawn_worker((int)i, false);
        long long next_sweep = 0;
        while (!stop_signal) {
                reap();
                /* Cgroups of sandboxes whose worker died (or left idle) are not removed by it. */
                if (monotonic_ms() >= next_sweep) {
                        sb_cgroups_sweep();
                        next_sweep = monotonic_ms() + 2000;
                }
                if (reload_requested) {
                        reload_requested = 0;
                        reload();
                }
                rotate_interpreters();
                retire_old_generation();
                respawn_due();
                sb_hub_tick(hub);
                struct timespec tick = { 0, TICK_MS * 1000000L };
                nanosleep(&tick, NULL); /* interrupted by signals, so SIGTERM is seen at once */
        }
}

/* Every worker finishes the request it holds, then the monitor goes, then this process. */
static void drain(const struct options *o)
{
        log_line("event=stopping signal=%d", (int)stop_signal);
        __atomic_store_n(&stats->draining, 1, __ATOMIC_RELAXED);
        for (int i = 0; i < POOL_MAX_SLOTS; i++)
                if (stats->slots[i].pid > 0)
                        (void)kill(stats->slots[i].pid, SIGTERM);
        for (;;) {
                bool any = false;
                for (int i = 0; i < POOL_MAX_SLOTS; i++)
                        any |= stats->slots[i].pid > 0;
                if (!any)
                        break;
                reap();
                struct timespec tick = { 0, TICK_MS * 1000000L };
                nanosleep(&tick, NULL);
        }
        stop_hubs();
        if (monitor_pid > 0)
                (void)kill(monitor_pid, SIGTERM);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        if (o->monitor_path && !is_tcp(o->monitor_path))
                (void)unlink(o->monitor_path);
        if (sb_cgroups_enabled()) {
                usleep(100000); /* the last sandboxes' namespaces are still being torn down */
                sb_cgroups_sweep();
        }
        log_line("event=stopped");
}

int main(int argc, char **argv)
{
        struct options o = { 0 };
        int r = parse_args(argc, argv, &o);
        if (r != 0)
                return r < 0 ? 0 : r;
        /* For scripts/serve.sh: the values in force, from the one parser there is. */
        if (o.print_config)
                return sb_config_print(&config, stdout) == 0 ? 0 : 1;
        /* For the tests that hold nginx's pages, the sources and the README to the table. */
        if (o.print_error_kinds) {
                for (size_t i = 0; i < sb_error_kind_count; i++)
                        printf("%s %d\n", sb_error_kinds[i].name, sb_error_kinds[i].status);
                return fflush(stdout) == 0 ? 0 : 1;
        }
        struct stat st;
        if (fstat(0, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                fprintf(stderr, "pyexec-worker: fd 0 is not a socket; start me with spawn-fcgi\n");
                usage(argv[0]);
                return 1;
        }
        install_master_signals();
        if ((r = start_pool(&o)) != 0)
                return r;
        supervise();
        drain(&o);
        return 0;
}
