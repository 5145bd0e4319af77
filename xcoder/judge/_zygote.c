/* Native per-test loop of the warm judge supervisor (zygote.py holds the protocol's description).
 *
 * Why C: the supervisor forks a fresh test process per test, and after every fork each memory page
 * the supervisor writes costs it a copy-on-write fault. In Python, receiving a job, waiting for the
 * test, sweeping the namespace and reporting write ~80 distinct pages per test (refcounts, new
 * objects): ~0.25 ms per test on a 2-core VM. This loop writes a handful. It is an accelerator
 * only: zygote.py runs the same protocol in Python when this module cannot be built or loaded.
 *
 * serve() returns only in a forked child, after the child's set-up (fds, scratch dir, rlimits, uid
 * drop): (slot, per-test payload). The parent never returns: it _exit()s when the host closes the
 * control socket. Python is called back only to prepare a program slot (compile its code).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* wire format: keep in sync with zygote.py (JOB_* / REPORT_*) and warm.py */
#define JOB_MAGIC 0x314A4358u    /* "XCJ1" little-endian */
#define REPORT_MAGIC 0x31524358u /* "XCR1" */
#define JOB_HEADER_SIZE 88
#define REPORT_SIZE 80
#define FLAG_PREPARE 1u
#define FLAG_KILL 2u
#define REPORT_TIMED_OUT 1u
#define REPORT_KILLED_BY_HOST 2u
#define REPORT_CLEAN 4u
#define REPORT_ERROR 8u

static const char SETUP_ERROR_PREFIX[] = "\0xcoder-setup-error:";
#define SETUP_ERROR_PREFIX_LEN (sizeof(SETUP_ERROR_PREFIX) - 1)

static int ctl_fd = -1;
static int in_namespace = 1;
static char scratch[1024];
static char tmp_dir[1024];
static char **keep_names;
static Py_ssize_t n_keep;
static PyObject *prepare_cb;
static char *buf;
static size_t bufcap;
/* the host may queue one job behind the running test: it waits here, with its fds */
static char *stash_buf;
static size_t stash_cap;
static long stash_len = -1;
static int stash_fds[8];
static int stash_nfds;

typedef struct {
    uint32_t flags;
    uint64_t id;
    int32_t slot;
    int32_t uid;
    uint64_t wall_ns, cpu_s, fsize, nofile, nproc, stack, as;
    uint32_t prep_len, test_len;
} job_header;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t get_u64(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get_u32(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put_u64(char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put_u32(char *p, uint32_t v) { memcpy(p, &v, 4); }

static int ensure_buf(size_t n) {
    if (n <= bufcap) return 0;
    size_t cap = bufcap ? bufcap : 65536;
    while (cap < n) cap *= 2;
    char *grown = realloc(buf, cap);
    if (!grown) return -1;
    buf = grown;
    bufcap = cap;
    return 0;
}

/* exactly n bytes from the control socket: 1 ok, 0 EOF, -1 error */
static int recv_exact(char *p, size_t n) {
    while (n) {
        ssize_t got = recv(ctl_fd, p, n, 0);
        if (got == 0) return 0;
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 1;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t put = send(fd, p, n, MSG_NOSIGNAL);
        if (put < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

/* One frame (4-byte big-endian length + body) into buf; fds that came with it into fds[].
 * Reads exactly the frame (the length via recvmsg, so the fds of the *next* frame stay queued).
 * Returns the body length, -1 on EOF, -2 on error. */
static long recv_frame(int *fds, int *nfds) {
    char head[4];
    size_t have = 0;
    *nfds = 0;
    while (have < 4) {
        union {
            char bytes[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct iovec iov = {head + have, 4 - have};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof control.bytes;
        ssize_t got = recvmsg(ctl_fd, &msg, MSG_CMSG_CLOEXEC);
        if (got == 0) return -1;
        if (got < 0) {
            if (errno == EINTR) continue;
            return -2;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *passed = (int *)CMSG_DATA(c);
            for (int i = 0; i < count; i++) {
                if (*nfds < 8) fds[(*nfds)++] = passed[i];
                else close(passed[i]);
            }
        }
        have += (size_t)got;
    }
    uint32_t length = ((uint32_t)(uint8_t)head[0] << 24) | ((uint32_t)(uint8_t)head[1] << 16) |
                      ((uint32_t)(uint8_t)head[2] << 8) | (uint32_t)(uint8_t)head[3];
    if (ensure_buf((size_t)length + 1)) return -2;
    int ok = recv_exact(buf, length);
    if (ok == 0) return -1;
    if (ok < 0) return -2;
    return (long)length;
}

static int parse_header(long length, job_header *h) {
    if (length < JOB_HEADER_SIZE || get_u32(buf) != JOB_MAGIC) return -1;
    h->flags = get_u32(buf + 4);
    h->id = get_u64(buf + 8);
    h->slot = (int32_t)get_u32(buf + 16);
    h->uid = (int32_t)get_u32(buf + 20);
    h->wall_ns = get_u64(buf + 24);
    h->cpu_s = get_u64(buf + 32);
    h->fsize = get_u64(buf + 40);
    h->nofile = get_u64(buf + 48);
    h->nproc = get_u64(buf + 56);
    h->stack = get_u64(buf + 64);
    h->as = get_u64(buf + 72);
    h->prep_len = get_u32(buf + 80);
    h->test_len = get_u32(buf + 84);
    if ((uint64_t)JOB_HEADER_SIZE + h->prep_len + h->test_len != (uint64_t)length) return -1;
    return 0;
}

static void send_report(uint64_t id, uint32_t flags, int32_t status, uint64_t wall_ns, uint64_t cpu_ns,
                        uint64_t maxrss_kb, uint64_t minflt, uint64_t fork_ns, uint64_t total_ns, uint64_t sweep_ns) {
    char frame[4 + REPORT_SIZE];
    frame[0] = 0; frame[1] = 0; frame[2] = 0; frame[3] = REPORT_SIZE;
    char *r = frame + 4;
    put_u32(r, REPORT_MAGIC);
    put_u32(r + 4, flags);
    put_u64(r + 8, id);
    put_u32(r + 16, (uint32_t)status);
    put_u32(r + 20, 0);
    put_u64(r + 24, wall_ns);
    put_u64(r + 32, cpu_ns);
    put_u64(r + 40, maxrss_kb);
    put_u64(r + 48, minflt);
    put_u64(r + 56, fork_ns);
    put_u64(r + 64, total_ns);
    put_u64(r + 72, sweep_ns);
    if (send_all(ctl_fd, frame, sizeof frame) < 0) _exit(0); /* the host went away */
}

/* ---- scratch and /tmp clean-up (same rules as zygote.wipe_scratch / wipe_tmp) ---------------- */

static void remove_tree(char *path, size_t len, size_t cap, int depth) {
    struct stat st;
    if (lstat(path, &st) < 0) return;
    if (!S_ISDIR(st.st_mode) || depth > 256) {
        if (unlink(path) < 0 && S_ISDIR(st.st_mode)) rmdir(path);
        return;
    }
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir(dir))) {
            const char *name = entry->d_name;
            if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) continue;
            size_t nlen = strlen(name);
            if (len + 1 + nlen + 1 > cap) continue; /* too deep to name: the rename below handles it */
            path[len] = '/';
            memcpy(path + len + 1, name, nlen + 1);
            remove_tree(path, len + 1 + nlen, cap, depth + 1);
            path[len] = 0;
        }
        closedir(dir);
    }
    rmdir(path);
}

static int dir_is_empty(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return 0;
    struct dirent *entry;
    int empty = 1;
    while ((entry = readdir(dir))) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) continue;
        empty = 0;
        break;
    }
    closedir(dir);
    return empty;
}

static int wipe_scratch(int32_t uid) {
    struct stat st;
    if (lstat(scratch, &st) == 0) {
        if (S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && (uid < 0 || st.st_uid == (uid_t)uid) &&
            dir_is_empty(scratch))
            return 0;
        char path[4096];
        size_t len = strlen(scratch);
        memcpy(path, scratch, len + 1);
        remove_tree(path, len, sizeof path, 0);
        if (lstat(scratch, &st) == 0) { /* never reuse a dirty dir */
            char dead[1200];
            snprintf(dead, sizeof dead, "%s.dead.%llu", scratch, (unsigned long long)now_ns());
            if (rename(scratch, dead) < 0) return -1;
        }
    }
    if (mkdir(scratch, 0700) < 0) return -1;
    if (chmod(scratch, 0700) < 0) return -1; /* mkdir's mode passes through the umask */
    if (uid >= 0 && chown(scratch, (uid_t)uid, (gid_t)uid) < 0) return -1;
    return 0;
}

static void wipe_tmp(void) {
    DIR *dir = opendir(tmp_dir);
    if (!dir) return;
    struct dirent *entry;
    char path[4096];
    size_t base = strlen(tmp_dir);
    memcpy(path, tmp_dir, base);
    while ((entry = readdir(dir))) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) continue;
        int keep = 0;
        for (Py_ssize_t i = 0; i < n_keep; i++) {
            if (strcmp(keep_names[i], name) == 0) {
                keep = 1;
                break;
            }
        }
        size_t nlen = strlen(name);
        if (keep || base + 1 + nlen + 1 > sizeof path) continue;
        path[base] = '/';
        memcpy(path + base + 1, name, nlen + 1);
        remove_tree(path, base + 1 + nlen, sizeof path, 0);
    }
    closedir(dir);
}

/* ---- after a test ------------------------------------------------------------------------------ */

/* SIGKILL every other process of the pid namespace until none is left (a fork bomb keeps spawning
 * until its members are dead). Outside a namespace only the test's own process group. */
static int kill_all_others(pid_t pid) {
    if (!in_namespace) {
        killpg(pid, SIGKILL);
        return 1;
    }
    uint64_t deadline = now_ns() + 3000000000ull;
    pid_t self = getpid();
    for (;;) {
        if (kill(-1, SIGKILL) < 0 && errno == ESRCH) return 1;
        int others = 0;
        DIR *proc = opendir("/proc");
        if (proc) {
            struct dirent *entry;
            while ((entry = readdir(proc))) {
                char *end;
                long other = strtol(entry->d_name, &end, 10);
                if (end == entry->d_name || *end) continue;
                if (other != 1 && other != self) {
                    others = 1;
                    break;
                }
            }
            closedir(proc);
        }
        if (!others) return 1;
        if (now_ns() > deadline) return 0;
        usleep(1000);
    }
}

static void swap_buffers(void) {
    char *b = buf;
    size_t cap = bufcap;
    buf = stash_buf;
    bufcap = stash_cap;
    stash_buf = b;
    stash_cap = cap;
}

/* Wait for the test: its exit, the wall limit, or a kill request from the host. A job frame that
 * arrives meanwhile is the next test, queued: kept (the running test's frame is no longer needed
 * here, the child has its own copy) and started right after this one's report. */
static void supervise(const job_header *h, pid_t pid, uint64_t start, uint64_t forked) {
    uint32_t flags = 0;
    uint64_t deadline = start + h->wall_ns;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) { /* cannot watch it (kernel < 5.3): never run a test unsupervised */
        int saved = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        kill_all_others(pid);
        send_report(h->id, REPORT_ERROR, -saved, 0, 0, 0, 0, 0, 0, 0);
        return;
    }
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            flags |= REPORT_TIMED_OUT;
            break;
        }
        uint64_t wait_ms = (deadline - now + 999999ull) / 1000000ull;
        struct pollfd watch[2] = {{pidfd, POLLIN, 0}, {ctl_fd, POLLIN, 0}};
        int ready = poll(watch, 2, wait_ms > 60000 ? 60000 : (int)wait_ms);
        if (ready < 0 && errno != EINTR) break;
        if (watch[0].revents) break;
        if (watch[1].revents) { /* a kill request, the next job, or the host went away */
            int extra[8], nextra;
            long length = recv_frame(extra, &nextra);
            if (length < 0) _exit(0);
            job_header other;
            if (parse_header(length, &other) == 0 && (other.flags & FLAG_KILL)) {
                for (int i = 0; i < nextra; i++) close(extra[i]);
                if (other.id != h->id) continue; /* meant for a test that already ended */
                flags |= REPORT_KILLED_BY_HOST;
                break;
            }
            if (stash_len >= 0) _exit(3); /* a second queued job: the host broke the protocol */
            swap_buffers();
            stash_len = length;
            stash_nfds = nextra;
            memcpy(stash_fds, extra, sizeof extra);
            continue;
        }
    }
    if (flags & (REPORT_TIMED_OUT | REPORT_KILLED_BY_HOST)) {
        killpg(pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    uint64_t reaped = now_ns();
    close(pidfd);
    if (kill_all_others(pid)) flags |= REPORT_CLEAN;
    uint64_t end = now_ns();
    uint64_t cpu_ns = ((uint64_t)usage.ru_utime.tv_sec + (uint64_t)usage.ru_stime.tv_sec) * 1000000000ull +
                      ((uint64_t)usage.ru_utime.tv_usec + (uint64_t)usage.ru_stime.tv_usec) * 1000ull;
    send_report(h->id, flags, status, reaped - start, cpu_ns, (uint64_t)usage.ru_maxrss, (uint64_t)usage.ru_minflt,
                forked - start, end - start, end - reaped);
}

/* ---- the forked child ------------------------------------------------------------------------- */

static void child_fail(int result_fd, const char *what) {
    char message[512];
    int saved = errno;
    memcpy(message, SETUP_ERROR_PREFIX, SETUP_ERROR_PREFIX_LEN);
    int n = snprintf(message + SETUP_ERROR_PREFIX_LEN, sizeof message - SETUP_ERROR_PREFIX_LEN, "%s: %s", what,
                     strerror(saved));
    size_t total = SETUP_ERROR_PREFIX_LEN + (n > 0 ? (size_t)n : 0);
    if (total > sizeof message) total = sizeof message;
    if (write(result_fd, message, total) < 0) { /* nobody to tell */
    }
    _exit(125);
}

static void set_limit(int result_fd, int which, uint64_t soft, uint64_t hard, const char *what) {
    struct rlimit limit = {(rlim_t)soft, (rlim_t)hard};
    if (setrlimit(which, &limit) < 0) child_fail(result_fd, what);
}

/* fds: stdin, stdout, stderr, result. The result fd ends up as 3. */
static void child_setup(const job_header *h, const int *fds) {
    int result_fd = fds[3];
    if (setsid() < 0) child_fail(result_fd, "setsid");
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0 || dup2(fds[3], 3) < 0)
        child_fail(result_fd, "dup2");
    result_fd = 3;
    if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0) {
        for (int fd = 4; fd < 65536; fd++) close(fd);
    }
    if (chdir(scratch) < 0) child_fail(result_fd, "chdir to the scratch dir");
    set_limit(result_fd, RLIMIT_CPU, h->cpu_s, h->cpu_s + 1, "RLIMIT_CPU");
    set_limit(result_fd, RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
    set_limit(result_fd, RLIMIT_FSIZE, h->fsize, h->fsize, "RLIMIT_FSIZE");
    set_limit(result_fd, RLIMIT_NOFILE, h->nofile, h->nofile, "RLIMIT_NOFILE");
    set_limit(result_fd, RLIMIT_NPROC, h->nproc, h->nproc, "RLIMIT_NPROC");
    set_limit(result_fd, RLIMIT_STACK, h->stack, h->stack, "RLIMIT_STACK");
    if (h->as) set_limit(result_fd, RLIMIT_AS, h->as, h->as, "RLIMIT_AS");
    if (h->uid < 0) return; /* not root (isolation=none on a dev box): nothing to drop to */
    if (setgroups(0, NULL) < 0) child_fail(result_fd, "setgroups");
    if (setgid((gid_t)h->uid) < 0) child_fail(result_fd, "setgid");
    if (setuid((uid_t)h->uid) < 0) child_fail(result_fd, "setuid"); /* drops every capability */
}

/* ---- module API ------------------------------------------------------------------------------- */

static PyObject *zygote_init(PyObject *self, PyObject *args) {
    int fd, namespace_flag;
    const char *scratch_path, *tmp_path;
    PyObject *keep, *callback;
    if (!PyArg_ParseTuple(args, "iissOO", &fd, &namespace_flag, &scratch_path, &tmp_path, &keep, &callback))
        return NULL;
    if (!PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "prepare callback must be callable");
        return NULL;
    }
    if (strlen(scratch_path) >= sizeof scratch || strlen(tmp_path) >= sizeof tmp_dir) {
        PyErr_SetString(PyExc_ValueError, "scratch path too long");
        return NULL;
    }
    PyObject *names = PySequence_Fast(keep, "keep names must be a sequence of str");
    if (!names) return NULL;
    n_keep = PySequence_Fast_GET_SIZE(names);
    keep_names = calloc((size_t)n_keep + 1, sizeof(char *));
    for (Py_ssize_t i = 0; i < n_keep; i++) {
        const char *name = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(names, i));
        if (!name) {
            Py_DECREF(names);
            return NULL;
        }
        keep_names[i] = strdup(name);
    }
    Py_DECREF(names);
    ctl_fd = fd;
    in_namespace = namespace_flag;
    strcpy(scratch, scratch_path);
    strcpy(tmp_dir, tmp_path);
    Py_XDECREF(prepare_cb);
    Py_INCREF(callback);
    prepare_cb = callback;
    if (ensure_buf(65536)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *zygote_serve(PyObject *self, PyObject *unused) {
    if (ctl_fd < 0 || !prepare_cb) {
        PyErr_SetString(PyExc_RuntimeError, "init() first");
        return NULL;
    }
    for (;;) {
        int fds[8], nfds;
        long length;
        if (stash_len >= 0) { /* the job the host queued during the last test */
            swap_buffers();
            length = stash_len;
            nfds = stash_nfds;
            memcpy(fds, stash_fds, sizeof fds);
            stash_len = -1;
        } else {
            length = recv_frame(fds, &nfds);
        }
        if (length == -1) _exit(0); /* the host closed the socket: this worker is done */
        if (length < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return NULL;
        }
        job_header h;
        if (parse_header(length, &h) < 0) {
            for (int i = 0; i < nfds; i++) close(fds[i]);
            send_report(0, REPORT_ERROR, -1, 0, 0, 0, 0, 0, 0, 0);
            continue;
        }
        if (h.flags & FLAG_KILL) { /* a kill that crossed the report of the test it meant: stale */
            for (int i = 0; i < nfds; i++) close(fds[i]);
            continue;
        }
        if (nfds != 4) {
            for (int i = 0; i < nfds; i++) close(fds[i]);
            send_report(h.id, REPORT_ERROR, nfds, 0, 0, 0, 0, 0, 0, 0);
            continue;
        }
        if (h.flags & FLAG_PREPARE) {
            PyObject *done = PyObject_CallFunction(prepare_cb, "iy#", (int)h.slot, buf + JOB_HEADER_SIZE,
                                                   (Py_ssize_t)h.prep_len);
            if (!done) {
                PyErr_Print();
                for (int i = 0; i < 4; i++) close(fds[i]);
                send_report(h.id, REPORT_ERROR, -2, 0, 0, 0, 0, 0, 0, 0);
                continue;
            }
            Py_DECREF(done);
        }
        if (wipe_scratch(h.uid) < 0) {
            for (int i = 0; i < 4; i++) close(fds[i]);
            send_report(h.id, REPORT_ERROR, -errno, 0, 0, 0, 0, 0, 0, 0);
            continue;
        }
        if (in_namespace) wipe_tmp();
        uint64_t start = now_ns();
        PyOS_BeforeFork();
        pid_t pid = fork();
        if (pid == 0) {
            PyOS_AfterFork_Child();
            child_setup(&h, fds);
            return Py_BuildValue("(iy#)", (int)h.slot, buf + JOB_HEADER_SIZE + h.prep_len, (Py_ssize_t)h.test_len);
        }
        int fork_errno = errno;
        PyOS_AfterFork_Parent();
        uint64_t forked = now_ns();
        for (int i = 0; i < 4; i++) close(fds[i]);
        if (pid < 0) {
            send_report(h.id, REPORT_ERROR, -fork_errno, 0, 0, 0, 0, 0, 0, 0);
            continue;
        }
        supervise(&h, pid, start, forked);
    }
}

static PyMethodDef methods[] = {
    {"init", zygote_init, METH_VARARGS, "init(ctl_fd, in_namespace, scratch, tmp_dir, keep_names, prepare)"},
    {"serve", zygote_serve, METH_NOARGS, "Run the per-test loop; returns (slot, payload) in a forked child only."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_xcoder_zygote", NULL, -1, methods};

PyMODINIT_FUNC PyInit__xcoder_zygote(void) { return PyModule_Create(&module); }
