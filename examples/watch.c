/* watch - re-run a command when files change (like nodemon), on evloop.h.
 *
 *   cc -O2 examples/watch.c -o watch -pthread
 *   ./watch --dir ./src --exec "make test"
 *
 * Options:
 *   --dir PATH       directory (or file) to watch, recursively; may repeat;
 *                    default "."
 *   --exec CMD       the command, run with /bin/sh -c (required)
 *   --ext LIST       only files with these extensions, e.g. "c,h"
 *   --debounce MS    quiet time that ends a burst of events (default 200)
 *   --no-start       do not run the command at start
 *
 * Prints "[10:23:45] Changed: src/index.c" for each file of a burst, then
 * runs the command once. A command still running when files change is
 * stopped (SIGTERM) and started again when it has exited. New
 * subdirectories are followed. Hidden files (".name") and editor backups
 * ("name~", "*.swp") are ignored. Ctrl-C stops the command and exits.
 */
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_DIRS 16

typedef struct watched {
    evloop_fswatch w;
    const char *dir; /* as given, without a leading "./" */
    char *prefix;    /* what names are relative to: the directory, or a file's
                        directory; "" for the current one */
} watched;

static watched dirs[MAX_DIRS];
static int ndirs;
static const char *command, *extensions;
static evloop *loop;
/* The command's process. Its struct is reused for the next run only after
 * the close callback of the previous one ran (CHILD_CLOSING until then). */
static evloop_process child;
static enum { CHILD_NONE, CHILD_RUNNING, CHILD_CLOSING } child_state;
static int restart_pending, quitting;
static evloop_signal sigint, sigterm;

static void stamp(void)
{
    time_t now = time(NULL);
    struct tm tm;
    char buf[16];
    localtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    printf("[%s] ", buf);
}

static int ignored(const char *name)
{
    const char *base = strrchr(name, '/'), *dot;
    size_t n;
    base = base ? base + 1 : name;
    n = strlen(base);
    if (!n || base[0] == '.' || base[n - 1] == '~' || (n > 4 && strcmp(base + n - 4, ".swp") == 0))
        return 1;
    if (!extensions)
        return 0;
    dot = strrchr(base, '.');
    if (!dot)
        return 1;
    dot++;
    {
        const char *p = extensions;
        size_t elen = strlen(dot);
        while (*p) {
            size_t len = strcspn(p, ",");
            if (len == elen && strncmp(p, dot, len) == 0)
                return 0;
            p += len;
            if (*p == ',')
                p++;
        }
    }
    return 1;
}

/* The directory names are relative to, for printing: dir itself without
 * trailing slashes, or the directory of a watched file; "" for ".". */
static char *display_prefix(const char *dir)
{
    struct stat sb;
    size_t n = strlen(dir);
    char *p;
    if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) { /* a file: names are its name */
        const char *slash = strrchr(dir, '/');
        n = slash ? (size_t)(slash - dir) + (slash == dir) : 0;
    }
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '.')
        n = 0;
    p = (char *)malloc(n + 1);
    if (p) {
        memcpy(p, dir, n);
        p[n] = 0;
    }
    return p;
}

static void print_path(const char *prefix, const char *name)
{
    size_t n = strlen(prefix);
    if (!n)
        printf("%s\n", name);
    else
        printf("%s%s%s\n", prefix, prefix[n - 1] == '/' ? "" : "/", name);
}

static void start_command(void);

static void on_child_closed(evloop_handle *h)
{
    (void)h;
    child_state = CHILD_NONE;
    if (!quitting && restart_pending) {
        restart_pending = 0;
        start_command();
    }
}

static void on_exit_cb(evloop_process *p, int64_t status, int sig)
{
    stamp();
    if (sig)
        printf("Stopped by signal %d\n", sig);
    else
        printf("Exited with code %lld\n", (long long)status);
    fflush(stdout);
    child_state = CHILD_CLOSING;
    evloop_close(&p->handle, on_child_closed); /* restarts from there if due */
}

static void start_command(void)
{
    char *args[] = {(char *)"sh", (char *)"-c", (char *)command, NULL};
    evloop_process_options o;
    int rc;
    memset(&o, 0, sizeof o); /* stdio inherited */
    o.file = "/bin/sh";
    o.args = args;
    stamp();
    printf("Running: %s\n", command);
    fflush(stdout);
    rc = evloop_spawn(loop, &child, &o, on_exit_cb);
    if (rc < 0) {
        stamp();
        printf("Cannot run /bin/sh: %s\n", evloop_strerror(rc));
        return;
    }
    child_state = CHILD_RUNNING;
}

/* After a burst has been printed: run (or restart) the command once. */
static void rerun(evloop *l, void *arg)
{
    (void)l;
    (void)arg;
    if (!restart_pending || child_state == CHILD_CLOSING)
        return; /* on_child_closed starts it */
    if (child_state == CHILD_RUNNING) {
        evloop_process_kill(&child, SIGTERM); /* then on_exit_cb, on_child_closed */
        return;
    }
    restart_pending = 0;
    start_command();
}

static void on_change(evloop_fswatch *w, const char *name, unsigned events)
{
    const watched *d = (const watched *)w->handle.data;
    const char *what = (events & EVLOOP_FS_DELETE)   ? "Deleted"
                       : (events & EVLOOP_FS_ADD)    ? "Added"
                       : (events & EVLOOP_FS_RENAME) ? "Renamed"
                                                     : "Changed";
    if (events & EVLOOP_FS_OVERFLOW) {
        stamp();
        printf("Too many changes at once in %s\n", d->dir);
    } else {
        if (ignored(name))
            return;
        stamp();
        printf("%s: ", what);
        print_path(d->prefix, name);
    }
    fflush(stdout);
    if (!restart_pending) {
        restart_pending = 1;
        evloop_set_immediate(loop, rerun, NULL); /* after the whole burst */
    }
}

static void close_all(evloop_handle *h, void *arg)
{
    (void)arg;
    if (!evloop_is_closing(h) && h != &child.handle)
        evloop_close(h, NULL);
}

static void on_signal(evloop_signal *s, int signum)
{
    (void)signum;
    quitting = 1;
    if (child_state == CHILD_RUNNING)
        evloop_process_kill(&child, SIGTERM);
    evloop_walk(s->handle.loop, close_all, NULL);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --exec CMD [--dir PATH]... [--ext c,h] [--debounce MS] [--no-start]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    evloop_fswatch_options o;
    int i, rc, start = 1;
    memset(&o, 0, sizeof o);
    o.flags = EVLOOP_FSWATCH_RECURSIVE;
    o.debounce_ms = 200;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc && ndirs < MAX_DIRS) {
            const char *d = argv[++i];
            while (d[0] == '.' && d[1] == '/' && d[2])
                d += 2;
            dirs[ndirs++].dir = d;
        } else if (strcmp(argv[i], "--exec") == 0 && i + 1 < argc) {
            command = argv[++i];
        } else if (strcmp(argv[i], "--ext") == 0 && i + 1 < argc) {
            extensions = argv[++i];
        } else if (strcmp(argv[i], "--debounce") == 0 && i + 1 < argc) {
            o.debounce_ms = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-start") == 0) {
            start = 0;
        } else {
            return usage(argv[0]);
        }
    }
    if (!command)
        return usage(argv[0]);
    if (!ndirs)
        dirs[ndirs++].dir = ".";
    if ((rc = evloop_new(&loop, NULL)) < 0) {
        fprintf(stderr, "%s\n", evloop_strerror(rc));
        return 1;
    }
    for (i = 0; i < ndirs; i++) {
        if (!(dirs[i].prefix = display_prefix(dirs[i].dir))) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        dirs[i].w.handle.data = &dirs[i];
        evloop_fswatch_init(loop, &dirs[i].w);
        rc = evloop_fswatch_start(&dirs[i].w, dirs[i].dir, &o, on_change);
        if (rc < 0) {
            fprintf(stderr, "watch %s: %s\n", dirs[i].dir, evloop_strerror(rc));
            return 1;
        }
        stamp();
        printf("Watching %s\n", dirs[i].dir);
    }
    evloop_signal_init(loop, &sigint);
    evloop_signal_init(loop, &sigterm);
    evloop_signal_start(&sigint, on_signal, SIGINT);
    evloop_signal_start(&sigterm, on_signal, SIGTERM);
    if (start)
        start_command();
    fflush(stdout);
    evloop_run(loop, EVLOOP_RUN_DEFAULT);
    for (i = 0; i < ndirs; i++)
        free(dirs[i].prefix);
    return evloop_free(loop) == 0 ? 0 : 1;
}
