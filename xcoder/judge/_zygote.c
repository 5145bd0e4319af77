/* Native per-test loop of the warm judge supervisor (protocol: protocol.py's docstring).
 *
 * Why C: the supervisor forks a fresh test process per test, and after every fork each memory page
 * the supervisor writes costs it a copy-on-write fault. In Python, receiving a job, waiting for the
 * test, reading its output, sweeping the namespace and reporting write ~80 distinct pages per test
 * (refcounts, new objects). This loop writes a handful. It is the only per-test loop: the judge
 * refuses to start when it cannot be built (native.py).
 *
 * The host hands over tests in batches (up to QUEUE_MAX queued here); this loop runs them one at a
 * time: stdin into a memfd, output pipes, fork, wall limit on a pidfd, stdout/stderr streamed back
 * in chunks (the output limit is enforced here), reap, namespace sweep, one report per test.
 *
 * serve() returns only in a forked child, after the child's set-up (fds, scratch dir, rlimits, uid
 * drop): (slot, per-test payload). The parent never returns: it _exit()s when the host closes the
 * control socket. Python is called back only to prepare a program slot (load its code).
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif

/* ---- wire format: every protocol number comes from xcoder/judge/protocol.py, through the header
 * native.py generates from it at build time (tests/judge/test_protocol.py: none is defined here) */
#include "xcoder_protocol.h"
#define MAX_PROGRAM_BYTES (64u << 20)
#define QUIET_NS 1000000ull       /* the first millisecond of a test: only its exit wakes us */
#define BIG_PIPE (1 << 20)

static const char SETUP_ERROR_PREFIX[] = SETUP_ERROR_PREFIX_BYTES;

typedef struct {
    uint32_t flags;
    uint64_t id;
    int32_t slot;
    int32_t uid;
    uint64_t wall_ns, cpu_s, fsize, nofile, nproc, stack, as, output_limit;
    uint32_t payload_len, stdin_len, nfds;
    int fds[2];        /* passed fds: stdin (TEST_STDIN_FD) then payload (TEST_PAYLOAD_FD) */
    char *inline_data; /* payload then stdin, in this entry's queue slab slot */
} test_entry;

/* What the child can run without returning to Python (zygote.prepare registers it per slot):
 * a module-level code object (plus an assert kind's test code) in a pristine `__main__` template,
 * or a compiled binary to exec. Anything else (call kind, code the supervisor could not load)
 * returns to Python's run_as_main. */
#define FAST_NONE 0
#define FAST_EXEC 1
#define FAST_BINARY 2
typedef struct {
    int mode;
    PyObject *code, *test_code, *module, *globals;
    PyObject *fn_name, *caller; /* call kind: child.call_function and the name to call */
    char *binary;
} fast_slot;
static fast_slot fast[MAX_SLOTS];
static PyObject *main_argv, *main_path0; /* the children's sys.argv and sys.path[0], built once */
static PyObject *reseed_inst, *reseed_method; /* random._inst and _random.Random.seed (zygote.import_warm_modules) */
static int opened_for_write;              /* set by the child's audit hook */

static int ctl_fd = -1;
static int oom_fd = -1; /* the worker's memory.oom_control (read-only), or -1 */
static int in_namespace = 1;
static char scratch[1024];
static char tmp_dir[1024];
static char **keep_names;
static Py_ssize_t n_keep;
static PyObject *prepare_cb;
static unsigned char slot_ready[MAX_SLOTS];

/* Queue: a ring of entries; each entry's inline bytes live in its own slab slot. The slab and the
 * output buffers are MADV_DONTFORK: a test process never inherits other tests' inputs, and fork does
 * not copy their page tables. */
static test_entry queue[QUEUE_MAX];
static int q_head, q_len;
static char *slab;            /* QUEUE_MAX * INLINE_MAX */
static char *out_bufs[4];     /* [stream] -> CHUNK_BYTES */
static size_t out_len[4];
static char *payload_copy;    /* the running test's inline payload, in forkable memory */
static int stdin_memfd = -1;  /* reused for every inline stdin */
static long long last_oom = -1;
static int head_running;      /* the head of the queue has been forked (its report is pending) */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t get_u64(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get_u32(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put_u64(char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put_u32(char *p, uint32_t v) { memcpy(p, &v, 4); }

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

static void send_iov(struct iovec *iov, int n) {
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)n;
    for (;;) {
        ssize_t put = sendmsg(ctl_fd, &msg, MSG_NOSIGNAL);
        if (put < 0) {
            if (errno == EINTR) continue;
            _exit(0); /* the host went away */
        }
        size_t left = (size_t)put;
        while (msg.msg_iovlen && left >= msg.msg_iov[0].iov_len) {
            left -= msg.msg_iov[0].iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (!msg.msg_iovlen) return;
        msg.msg_iov[0].iov_base = (char *)msg.msg_iov[0].iov_base + left;
        msg.msg_iov[0].iov_len -= left;
    }
}

static void send_chunk(uint64_t id, uint32_t stream) {
    char head[4 + CHUNK_HEADER_SIZE];
    put_u32(head, (uint32_t)(CHUNK_HEADER_SIZE + out_len[stream]));
    char *h = head + 4;
    put_u32(h + CHUNK_OFF_MAGIC, CHUNK_MAGIC);
    put_u32(h + CHUNK_OFF_STREAM, stream);
    put_u64(h + CHUNK_OFF_ID, id);
    put_u32(h + CHUNK_OFF_LEN, (uint32_t)out_len[stream]);
    put_u32(h + CHUNK_OFF_PAD, 0);
    struct iovec iov[2] = {{head, sizeof head}, {out_bufs[stream], out_len[stream]}};
    send_iov(iov, 2);
    out_len[stream] = 0;
}

typedef struct {
    uint32_t flags;
    int32_t status, code;
    uint64_t wall_ns, cpu_ns, maxrss_kb, minflt, fork_ns, total_ns, sweep_ns, output_total;
} report;

/* One report frame: the fixed record, then what is still buffered of stdout, stderr, result. */
static void send_report(uint64_t id, const report *r) {
    char head[4 + REPORT_HEADER_SIZE];
    size_t tails = out_len[1] + out_len[2] + out_len[3];
    char *h = head + 4;
    put_u32(head, (uint32_t)(REPORT_HEADER_SIZE + tails));
    put_u32(h + REPORT_OFF_MAGIC, REPORT_MAGIC);
    put_u32(h + REPORT_OFF_FLAGS, r->flags);
    put_u64(h + REPORT_OFF_ID, id);
    put_u32(h + REPORT_OFF_STATUS, (uint32_t)r->status);
    put_u32(h + REPORT_OFF_CODE, (uint32_t)r->code);
    put_u64(h + REPORT_OFF_WALL_NS, r->wall_ns);
    put_u64(h + REPORT_OFF_CPU_NS, r->cpu_ns);
    put_u64(h + REPORT_OFF_MAXRSS_KB, r->maxrss_kb);
    put_u64(h + REPORT_OFF_MINFLT, r->minflt);
    put_u64(h + REPORT_OFF_FORK_NS, r->fork_ns);
    put_u64(h + REPORT_OFF_TOTAL_NS, r->total_ns);
    put_u64(h + REPORT_OFF_SWEEP_NS, r->sweep_ns);
    put_u64(h + REPORT_OFF_OUTPUT_TOTAL, r->output_total);
    put_u32(h + REPORT_OFF_OUT_LEN, (uint32_t)out_len[1]);
    put_u32(h + REPORT_OFF_ERR_LEN, (uint32_t)out_len[2]);
    put_u32(h + REPORT_OFF_RES_LEN, (uint32_t)out_len[3]);
    put_u32(h + REPORT_OFF_PAD, 0);
    struct iovec iov[4] = {{head, sizeof head}, {out_bufs[1], out_len[1]}, {out_bufs[2], out_len[2]},
                           {out_bufs[3], out_len[3]}};
    send_iov(iov, 4);
    out_len[1] = out_len[2] = out_len[3] = 0;
}

static void report_error(uint64_t id, int32_t code) {
    report r;
    memset(&r, 0, sizeof r);
    r.flags = REPORT_ERROR | REPORT_CLEAN;
    r.code = code;
    send_report(id, &r);
}

static void close_entry_fds(test_entry *e) {
    for (uint32_t i = 0; i < e->nfds && i < 2; i++) close(e->fds[i]);
    e->nfds = 0;
}

static void clear_fast(int slot) {
    fast_slot *f = &fast[slot];
    Py_CLEAR(f->code);
    Py_CLEAR(f->test_code);
    Py_CLEAR(f->module);
    Py_CLEAR(f->globals);
    Py_CLEAR(f->fn_name);
    Py_CLEAR(f->caller);
    free(f->binary);
    f->binary = NULL;
    f->mode = FAST_NONE;
}

/* ---- receiving frames ------------------------------------------------------------------------ */

/* Read one frame: its length with recvmsg (fds travel with the frame's first byte: the host sends
 * every frame that carries fds in its own sendmsg), then its body. Frames are handled here:
 * a program is prepared at once, a test is queued. Returns 1 handled, 0 host closed, -1 error. */
static int read_frame(void) {
    char len_bytes[4];
    int fds[4], nfds = 0;
    size_t have = 0;
    while (have < 4) {
        union {
            char bytes[CMSG_SPACE(4 * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct iovec iov = {len_bytes + have, 4 - have};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof control.bytes;
        ssize_t got = recvmsg(ctl_fd, &msg, MSG_CMSG_CLOEXEC);
        if (got == 0) return 0;
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *passed = (int *)CMSG_DATA(c);
            for (int i = 0; i < count; i++) {
                if (nfds < 4) fds[nfds++] = passed[i];
                else close(passed[i]);
            }
        }
        have += (size_t)got;
    }
    uint32_t length = get_u32(len_bytes);
    char magic_bytes[4];
    if (length < 4 || recv_exact(magic_bytes, 4) != 1) goto broken;
    uint32_t magic = get_u32(magic_bytes);
    if (magic == PROGRAM_MAGIC) {
        char rest[PROGRAM_HEADER_SIZE - 4];
        if (length < PROGRAM_HEADER_SIZE || nfds || recv_exact(rest, sizeof rest) != 1) goto broken;
        uint32_t slot = get_u32(rest + PROGRAM_OFF_SLOT - 4), plen = get_u32(rest + PROGRAM_OFF_LEN - 4);
        if (slot >= MAX_SLOTS || plen != length - PROGRAM_HEADER_SIZE || plen > MAX_PROGRAM_BYTES) goto broken;
        char *body = malloc(plen ? plen : 1);
        if (!body) goto broken;
        if (recv_exact(body, plen) != 1) {
            free(body);
            goto broken;
        }
        slot_ready[slot] = 0;
        clear_fast(slot);
        PyObject *done = PyObject_CallFunction(prepare_cb, "iy#", (int)slot, body, (Py_ssize_t)plen);
        free(body);
        if (done) {
            slot_ready[slot] = 1;
            Py_DECREF(done);
        } else {
            PyErr_Print(); /* to the worker log; the slot's tests are refused */
        }
        return 1;
    }
    if (magic == RETRACT_MAGIC) { /* a long test holds this worker: the host reschedules what waits behind it */
        char pad[4];
        if (length != 8 || nfds || recv_exact(pad, 4) != 1) goto broken;
        int keep = head_running ? 1 : 0;
        for (int i = keep; i < q_len; i++) {
            test_entry *e = &queue[(q_head + i) % QUEUE_MAX];
            close_entry_fds(e);
            report r;
            memset(&r, 0, sizeof r);
            r.flags = REPORT_RETRACTED | REPORT_CLEAN;
            send_report(e->id, &r);
        }
        q_len = keep;
        return 1;
    }
    if (magic != TEST_MAGIC || length < TEST_HEADER_SIZE || q_len >= QUEUE_MAX) goto broken;
    char h[TEST_HEADER_SIZE];
    if (recv_exact(h + TEST_OFF_FLAGS, TEST_HEADER_SIZE - TEST_OFF_FLAGS) != 1) goto broken; /* the magic is read */
    test_entry *e = &queue[(q_head + q_len) % QUEUE_MAX];
    memset(e, 0, sizeof *e);
    e->flags = get_u32(h + TEST_OFF_FLAGS);
    e->id = get_u64(h + TEST_OFF_ID);
    e->slot = (int32_t)get_u32(h + TEST_OFF_SLOT);
    e->uid = (int32_t)get_u32(h + TEST_OFF_UID);
    e->wall_ns = get_u64(h + TEST_OFF_WALL_NS);
    e->cpu_s = get_u64(h + TEST_OFF_CPU_S);
    e->fsize = get_u64(h + TEST_OFF_FSIZE);
    e->nofile = get_u64(h + TEST_OFF_NOFILE);
    e->nproc = get_u64(h + TEST_OFF_NPROC);
    e->stack = get_u64(h + TEST_OFF_STACK);
    e->as = get_u64(h + TEST_OFF_AS);
    e->output_limit = get_u64(h + TEST_OFF_OUTPUT_LIMIT);
    e->payload_len = get_u32(h + TEST_OFF_PAYLOAD_LEN);
    e->stdin_len = get_u32(h + TEST_OFF_STDIN_LEN);
    e->nfds = get_u32(h + TEST_OFF_NFDS);
    uint32_t want_fds = ((e->flags & TEST_STDIN_FD) ? 1u : 0u) + ((e->flags & TEST_PAYLOAD_FD) ? 1u : 0u);
    uint64_t inline_len = (uint64_t)((e->flags & TEST_PAYLOAD_FD) ? 0 : e->payload_len) +
                          ((e->flags & TEST_STDIN_FD) ? 0 : e->stdin_len);
    if (e->nfds != want_fds || (uint32_t)nfds != want_fds || inline_len > INLINE_MAX ||
        (uint64_t)TEST_HEADER_SIZE + inline_len != length)
        goto broken;
    for (int i = 0; i < nfds; i++) e->fds[i] = fds[i];
    e->inline_data = slab + (size_t)((q_head + q_len) % QUEUE_MAX) * INLINE_MAX;
    if (recv_exact(e->inline_data, (size_t)inline_len) != 1) goto broken;
    q_len++;
    return 1;
broken: /* the host broke the protocol (or went away mid-frame): nothing after this can be trusted */
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return -1;
}

/* 1 when a whole frame waits in the control socket (0 when only part of one has arrived yet,
 * -1 when the host closed it): a test is running, and a blocking read of a half-sent frame would
 * leave it unwatched. The length is peeked without taking the frame's fds. */
static int frame_complete(void) {
    char len_bytes[4];
    ssize_t got = recv(ctl_fd, len_bytes, 4, MSG_PEEK | MSG_DONTWAIT);
    if (got == 0) return -1;
    if (got < 4) return 0;
    int queued = 0;
    if (ioctl(ctl_fd, FIONREAD, &queued) < 0) return 0;
    return (uint64_t)queued >= 4 + (uint64_t)get_u32(len_bytes) ? 1 : 0;
}

static int ctl_stalled; /* part of a frame is here, the rest is not: look again shortly */

/* Handle every frame that is ready (at most until the queue is full). -1: stop serving. Not
 * blocking, only whole frames are read (see frame_complete); blocking: wait for one frame. */
static int read_ready_frames(int block) {
    ctl_stalled = 0;
    for (;;) {
        if (q_len >= QUEUE_MAX) return 0;
        struct pollfd p = {ctl_fd, POLLIN, 0};
        int ready = poll(&p, 1, block ? -1 : 0);
        if (ready < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (ready == 0) return 0;
        if (!block) {
            int whole = frame_complete();
            if (whole < 0) return -1;
            if (!whole) {
                ctl_stalled = 1;
                return 0;
            }
        }
        int got = read_frame();
        if (got <= 0) return -1;
        block = 0;
    }
}

/* ---- scratch and /tmp clean-up ---------------------------------------------------------------- */

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

/* The cgroup's OOM-kill counter (memory.oom_control "oom_kill N"), or -1 when unknown. */
static long long read_oom_kills(void) {
    if (oom_fd < 0) return -1;
    char text[512];
    ssize_t got = pread(oom_fd, text, sizeof text - 1, 0);
    if (got <= 0) return -1;
    text[got] = 0;
    char *at = strstr(text, "oom_kill ");
    return at ? atoll(at + 9) : -1;
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

/* fds: stdin, stdout, stderr, result (ends up as 3), payload (or -1; ends up as 4 while read). */
static void child_setup(const test_entry *e, const int *in_fds) {
    int fds[5];
    memcpy(fds, in_fds, sizeof fds);
    int result_fd = fds[3];
    if (setsid() < 0) child_fail(result_fd, "setsid");
    /* every source fd is >= 3 (0-2 are the supervisor's own): wiring 0,1,2,3 in order never
     * clobbers a source still needed, except a payload fd numbered 3 or 4: move it out first */
    if (fds[4] >= 0 && fds[4] < 5 && (fds[4] = fcntl(fds[4], F_DUPFD_CLOEXEC, 5)) < 0)
        child_fail(result_fd, "moving the payload fd");
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0 || dup2(fds[3], 3) < 0)
        child_fail(result_fd, "dup2");
    result_fd = 3;
    int first_closed = 4;
    if (fds[4] >= 0) {
        if (dup2(fds[4], 4) < 0) child_fail(result_fd, "dup2 payload");
        first_closed = 5;
    }
    if (syscall(SYS_close_range, (unsigned)first_closed, ~0u, 0u) < 0) {
        for (int fd = first_closed; fd < 65536; fd++) close(fd);
    }
    if (chdir(scratch) < 0) child_fail(result_fd, "chdir to the scratch dir");
    set_limit(result_fd, RLIMIT_CPU, e->cpu_s, e->cpu_s + 1, "RLIMIT_CPU");
    set_limit(result_fd, RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
    set_limit(result_fd, RLIMIT_FSIZE, e->fsize, e->fsize, "RLIMIT_FSIZE");
    set_limit(result_fd, RLIMIT_NOFILE, e->nofile, e->nofile, "RLIMIT_NOFILE");
    set_limit(result_fd, RLIMIT_NPROC, e->nproc, e->nproc, "RLIMIT_NPROC");
    set_limit(result_fd, RLIMIT_STACK, e->stack, e->stack, "RLIMIT_STACK");
    if (e->as) set_limit(result_fd, RLIMIT_AS, e->as, e->as, "RLIMIT_AS");
    if (e->uid < 0) return; /* not root (isolation=none on a dev box): nothing to drop to */
    if (setgroups(0, NULL) < 0) child_fail(result_fd, "setgroups");
    if (setgid((gid_t)e->uid) < 0) child_fail(result_fd, "setgid");
    if (setuid((uid_t)e->uid) < 0) child_fail(result_fd, "setuid"); /* drops every capability */
}

/* In the child: the call payload as bytes (from the copy, or read whole from fd 4). */
static PyObject *child_payload(const test_entry *e) {
    if (!(e->flags & TEST_PAYLOAD_FD)) return PyBytes_FromStringAndSize(payload_copy, (Py_ssize_t)e->payload_len);
    PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)e->payload_len);
    if (!data) return NULL;
    size_t have = 0;
    while (have < e->payload_len) {
        ssize_t got = pread(4, PyBytes_AS_STRING(data) + have, e->payload_len - have, (off_t)have);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        have += (size_t)got;
    }
    close(4);
    if (have != e->payload_len) {
        Py_DECREF(data);
        child_fail(3, "reading the call payload");
    }
    return data;
}

/* ---- the child's fast path ---------------------------------------------------------------------- */

/* child.py's _audit_open_for_write in C: a file opened for writing may hold buffers only a real
 * interpreter shutdown flushes, so such a run is concluded by Python (and finalized for real). */
static int audit_open_for_write(const char *event, PyObject *args, void *unused) {
    if (opened_for_write || strcmp(event, "open") != 0 || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 3)
        return 0;
    PyObject *mode = PyTuple_GET_ITEM(args, 1), *flags = PyTuple_GET_ITEM(args, 2);
    if (PyUnicode_Check(mode)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(mode);
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ_CHAR(mode, i);
            if (c == 'w' || c == 'a' || c == 'x' || c == '+') opened_for_write = 1;
        }
    }
    if (PyLong_Check(flags)) {
        long value = PyLong_AsLong(flags);
        if (value == -1 && PyErr_Occurred()) PyErr_Clear();
        else if (value & (O_WRONLY | O_RDWR)) opened_for_write = 1;
    }
    return 0;
}

/* 1 when the shutdown needs Python: threads to join or atexit callbacks to run. */
static int needs_python_shutdown(void) {
    PyObject *modules = PyImport_GetModuleDict();
    if (PyDict_GetItemString(modules, "threading")) return 1;
    PyObject *atexit_mod = PyDict_GetItemString(modules, "atexit");
    if (!atexit_mod) return 0;
    PyObject *count = PyObject_CallMethod(atexit_mod, "_ncallbacks", NULL);
    if (!count) {
        PyErr_Clear();
        return 1;
    }
    long n = PyLong_AsLong(count);
    Py_DECREF(count);
    if (n == -1 && PyErr_Occurred()) PyErr_Clear();
    return n != 0;
}

/* CPython's file_is_closed: a stream whose `closed` cannot be read counts as open. */
static int stream_is_closed(PyObject *stream) {
    PyObject *closed = PyObject_GetAttrString(stream, "closed");
    if (!closed) {
        PyErr_Clear();
        return 0;
    }
    int r = PyObject_IsTrue(closed);
    Py_DECREF(closed);
    if (r < 0) PyErr_Clear();
    return r > 0;
}

/* Flush sys.stdout, sys.stderr, then the original std objects (not closed ones), as
 * _finalize_fast does; 0 if any flush failed (Python then reports it as CPython would). */
static int flush_std_streams(void) {
    static const char *names[] = {"stdout", "stderr", "__stdout__", "__stderr__"};
    PyObject *seen[4];
    for (int i = 0; i < 4; i++) {
        PyObject *stream = PySys_GetObject(names[i]); /* borrowed */
        seen[i] = stream;
        if (!stream || stream == Py_None || (i >= 2 && (stream == seen[0] || stream == seen[1]))) continue;
        if (stream_is_closed(stream)) continue;
        PyObject *done = PyObject_CallMethod(stream, "flush", NULL);
        if (!done) {
            PyErr_Clear();
            return 0;
        }
        Py_DECREF(done);
    }
    return 1;
}

static PyObject *iobase_type, *stringio_type, *bytesio_type; /* from _io (zygote_set_main) */

/* child.holds_own_streams in C: an io object of the program's own among its globals (not a std
 * stream, not a StringIO/BytesIO) writes its buffer only in its finalizer. Type checks only. */
static int holds_own_streams(PyObject *globals) {
    if (!iobase_type) return 0;
    static const char *names[] = {"stdin", "stdout", "stderr", "__stdin__", "__stdout__", "__stderr__"};
    PyObject *std[6];
    for (int i = 0; i < 6; i++) std[i] = PySys_GetObject(names[i]);
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(globals, &pos, &key, &value)) {
        if (!PyObject_TypeCheck(value, (PyTypeObject *)iobase_type)) continue;
        if (PyObject_TypeCheck(value, (PyTypeObject *)stringio_type) ||
            PyObject_TypeCheck(value, (PyTypeObject *)bytesio_type))
            continue;
        int is_std = 0;
        for (int i = 0; i < 6; i++) is_std |= value == std[i];
        if (!is_std) return 1;
    }
    return 0;
}

/* child.conclude for the common endings, in C: SystemExit(None | int) or an exception shown by
 * the default sys.excepthook (the traceback starts at the program: nothing of ours is on it),
 * then the emulated shutdown and _exit. Returns (nothing printed yet) when Python must decide:
 * a message-bearing or huge SystemExit code, a replaced excepthook. */
static void end_with_exception(PyObject *type, PyObject *exc, PyObject *tb) {
    int status;
    if (PyErr_GivenExceptionMatches(type, PyExc_SystemExit)) {
        PyObject *code = PyObject_GetAttrString(exc, "code");
        if (!code) {
            PyErr_Clear();
            return;
        }
        int overflow = 0;
        long value = code == Py_None ? 0 : (PyLong_Check(code) ? PyLong_AsLongAndOverflow(code, &overflow) : -1);
        int handled = code == Py_None || (PyLong_Check(code) && !(value == -1 && PyErr_Occurred()));
        Py_DECREF(code);
        if (!handled) {
            PyErr_Clear();
            return; /* a message to print: child._system_exit_status */
        }
        status = overflow ? 255 : (int)(value & 0xFF); /* CPython: (int)PyLong_AsLong(code), -1 on overflow */
    } else {
        PyObject *hook = PySys_GetObject("excepthook"), *original = PySys_GetObject("__excepthook__");
        if (!hook || hook != original) return; /* the program installed its own hook: Python calls it */
        PyErr_Display(type, exc, tb); /* what the default sys.excepthook does */
        status = 1;
    }
    if (!flush_std_streams()) {
        PyObject *out = PySys_GetObject("stdout");
        if (out && out != Py_None && !stream_is_closed(out)) {
            PyObject *done = PyObject_CallMethod(out, "flush", NULL);
            if (!done) PyErr_WriteUnraisable(out); /* as CPython's flush_std_files */
            Py_XDECREF(done);
        }
        PyErr_Clear();
        status = 120;
    }
    _exit(status);
}

/* Run the slot's program as `python3 prog.py` would, in this (forked, set-up) child: fresh
 * `__main__`, argv and sys.path[0]; the module code (and an assert kind's test code); then the
 * emulated shutdown and _exit. Returns only when Python must conclude: ("ran", exception or
 * None, opened_for_write) for child.conclude, or NULL with an exception set. */
static PyObject *run_fast(const fast_slot *f, PyObject *arguments) {
    if (PySys_AddAuditHook(audit_open_for_write, NULL) < 0) return NULL;
    if (PyDict_SetItemString(PyImport_GetModuleDict(), "__main__", f->module) < 0) return NULL;
    if (PySys_SetObject("argv", main_argv) < 0) return NULL;
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    if (path && PyList_Check(path) && PyList_GET_SIZE(path) > 0) {
        Py_INCREF(main_path0);
        if (PyList_SetItem(path, 0, main_path0) < 0) return NULL; /* the old entry stays alive: KEEP_ALIVE */
    }
    PyObject *value = PyEval_EvalCode(f->code, f->globals, f->globals);
    if (value && f->test_code) {
        Py_DECREF(value);
        value = PyEval_EvalCode(f->test_code, f->globals, f->globals);
    }
    if (value && f->caller) { /* call kind: the JSON harness stays in Python (child.call_function) */
        Py_DECREF(value);
        value = arguments ? PyObject_CallFunction(f->caller, "OOOi", f->globals, f->fn_name, arguments, 3) : NULL;
    }
    if (!value) {
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        PyErr_NormalizeException(&type, &exc, &tb);
        if (tb && exc) PyException_SetTraceback(exc, tb);
        int real_finalization = opened_for_write || holds_own_streams(f->globals);
        if (exc && !real_finalization && !needs_python_shutdown()) end_with_exception(type, exc, tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        return Py_BuildValue("(sNi)", "ran", exc ? exc : Py_NewRef(Py_None), real_finalization);
    }
    Py_DECREF(value);
    int real_finalization = opened_for_write || holds_own_streams(f->globals);
    if (!real_finalization && !needs_python_shutdown() && flush_std_streams()) _exit(0);
    return Py_BuildValue("(sOi)", "ran", Py_None, real_finalization);
}

/* ---- one test ---------------------------------------------------------------------------------- */

typedef struct {
    int fd;          /* read end, -1 once at EOF */
    uint32_t stream; /* STREAM_* */
    uint64_t kept;   /* bytes forwarded (or buffered) so far */
    int big;         /* pipe already enlarged */
} out_pipe;

/* Read what is there; 1 if the output limit is now exceeded. */
static int drain_pipe(out_pipe *p, uint64_t id, uint64_t limit, uint64_t *total) {
    for (;;) {
        size_t room = CHUNK_BYTES - out_len[p->stream];
        if (!room) {
            send_chunk(id, p->stream);
            room = CHUNK_BYTES;
        }
        ssize_t got = read(p->fd, out_bufs[p->stream] + out_len[p->stream], room);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            got = 0;
        }
        if (got == 0) {
            close(p->fd);
            p->fd = -1;
            return 0;
        }
        uint64_t n = (uint64_t)got;
        if (p->stream != STREAM_RESULT) *total += n;
        /* keep at most `limit` bytes of each stream; count everything */
        uint64_t keep = p->kept >= limit ? 0 : (limit - p->kept < n ? limit - p->kept : n);
        p->kept += keep;
        out_len[p->stream] += (size_t)keep;
        if (!p->big && (size_t)got == room && p->stream == STREAM_STDOUT) { /* a big writer: fewer wake-ups */
            fcntl(p->fd, F_SETPIPE_SZ, BIG_PIPE);
            p->big = 1;
        }
        if (p->stream != STREAM_RESULT && *total > limit) return 1;
        if ((size_t)got < room) return 0; /* drained for now */
    }
}

/* Run the head of the queue. Returns 0 in the parent when the test is reported, 1 in the child. */
static int run_test(test_entry *e, PyObject **child_result) {
    int fds[5] = {-1, -1, -1, -1, -1}; /* stdin, stdout w, stderr w, result w, payload */
    int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int fd_index = 0;
    const char *inline_ptr = e->inline_data;
    if (e->slot < 0 || e->slot >= MAX_SLOTS || !slot_ready[e->slot]) {
        close_entry_fds(e);
        report_error(e->id, -3);
        return 0;
    }
    if (e->flags & TEST_STDIN_FD) {
        fds[0] = e->fds[fd_index++];
    } else {
        fds[0] = stdin_memfd;
    }
    if (e->flags & TEST_PAYLOAD_FD) {
        fds[4] = e->fds[fd_index++];
    } else {
        memcpy(payload_copy, inline_ptr, e->payload_len);
        inline_ptr += e->payload_len;
    }
    if (!(e->flags & TEST_STDIN_FD)) { /* refill the reused stdin memfd */
        size_t left = e->stdin_len;
        const char *p = inline_ptr;
        int bad = ftruncate(stdin_memfd, 0) < 0;
        off_t at = 0;
        while (!bad && left) {
            ssize_t put = pwrite(stdin_memfd, p, left, at);
            if (put < 0 && errno == EINTR) continue;
            if (put <= 0) bad = 1;
            else {
                p += put;
                at += put;
                left -= (size_t)put;
            }
        }
        if (bad || lseek(stdin_memfd, 0, SEEK_SET) < 0) {
            int err = errno;
            close_entry_fds(e);
            report_error(e->id, -err);
            return 0;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (pipe2(pipes[i], O_CLOEXEC) < 0) {
            int err = errno;
            for (int j = 0; j < i; j++) {
                close(pipes[j][0]);
                close(pipes[j][1]);
            }
            close_entry_fds(e);
            report_error(e->id, -err);
            return 0;
        }
    }
    fds[1] = pipes[0][1];
    fds[2] = pipes[1][1];
    fds[3] = pipes[2][1];
    if (wipe_scratch(e->uid) < 0) {
        int err = errno;
        for (int i = 0; i < 3; i++) {
            close(pipes[i][0]);
            close(pipes[i][1]);
        }
        close_entry_fds(e);
        report_error(e->id, -err);
        return 0;
    }
    if (in_namespace) wipe_tmp();
    uint64_t start = now_ns();
    head_running = 1; /* from here on this test reports itself (a retract leaves it alone) */
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        PyOS_AfterFork_Child();
        child_setup(e, fds);
        const fast_slot *f = &fast[e->slot];
        if (f->mode == FAST_BINARY) {
            char *argv[] = {f->binary, NULL};
            execv(f->binary, argv);
            child_fail(3, "exec of the compiled program");
        }
        if (f->mode == FAST_EXEC) {
            PyObject *arguments = NULL;
            if (f->caller) {
                PyObject *payload = child_payload(e);
                arguments = payload ? PyUnicode_FromEncodedObject(payload, "utf-8", "strict") : NULL;
                Py_XDECREF(payload);
                if (!arguments) {
                    *child_result = NULL;
                    return 1;
                }
            }
            *child_result = run_fast(f, arguments);
            Py_XDECREF(arguments);
            return 1;
        }
        PyObject *payload = child_payload(e);
        *child_result = payload ? Py_BuildValue("(iN)", (int)e->slot, payload) : NULL;
        return 1;
    }
    int fork_errno = errno;
    PyOS_AfterFork_Parent();
    uint64_t forked = now_ns();
    for (int i = 0; i < 3; i++) close(pipes[i][1]);
    if (e->flags & TEST_PAYLOAD_FD) close(fds[4]);
    if (pid < 0) {
        for (int i = 0; i < 3; i++) close(pipes[i][0]);
        if (e->flags & TEST_STDIN_FD) close(fds[0]); /* the payload fd, if any, is closed above */
        report_error(e->id, -fork_errno);
        return 0;
    }
    out_pipe outs[3] = {{pipes[0][0], STREAM_STDOUT, 0, 0}, {pipes[1][0], STREAM_STDERR, 0, 0},
                        {pipes[2][0], STREAM_RESULT, 0, 0}};
    for (int i = 0; i < 3; i++) fcntl(outs[i].fd, F_SETFL, O_NONBLOCK);
    report r;
    memset(&r, 0, sizeof r);
    uint64_t total = 0;
    uint64_t deadline = start + e->wall_ns;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) { /* cannot watch it (kernel < 5.3): never run a test unsupervised */
        int saved = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        kill_all_others(pid);
        for (int i = 0; i < 3; i++) close(outs[i].fd);
        if (e->flags & TEST_STDIN_FD) close(fds[0]);
        report_error(e->id, -saved);
        return 0;
    }
    int kill_it = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            struct pollfd exited = {pidfd, POLLIN, 0};
            if (poll(&exited, 1, 0) == 1) break; /* it ended in time, we were late to look */
            r.flags |= REPORT_TIMED_OUT;
            kill_it = 1;
            break;
        }
        /* During its first millisecond only the test's exit (or the host) wakes us: a small output
         * waits in the pipe and is read after the exit, one wake-up per tiny test. */
        int quiet = now < start + QUIET_NS;
        struct pollfd watch[5];
        int n = 0;
        watch[n++] = (struct pollfd){pidfd, POLLIN, 0};
        watch[n++] = (struct pollfd){ctl_fd, (q_len < QUEUE_MAX && !ctl_stalled) ? POLLIN : 0, 0};
        int first_pipe = n;
        if (!quiet)
            for (int i = 0; i < 3; i++)
                if (outs[i].fd >= 0) watch[n++] = (struct pollfd){outs[i].fd, POLLIN, 0};
        uint64_t until = quiet ? start + QUIET_NS : deadline;
        if (ctl_stalled && until > now + 1000000ull) until = now + 1000000ull; /* the frame's rest */
        ctl_stalled = 0;
        uint64_t wait_ms = (until - now + 999999ull) / 1000000ull;
        int ready = poll(watch, (nfds_t)n, wait_ms > 60000 ? 60000 : (int)wait_ms);
        if (ready < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (watch[0].revents) break; /* exited */
        if (watch[1].revents) {
            if (read_ready_frames(0) < 0) _exit(0); /* the host left or broke the protocol */
        }
        int exceeded = 0;
        for (int k = first_pipe; k < n; k++) {
            if (!watch[k].revents) continue;
            for (int i = 0; i < 3; i++)
                if (outs[i].fd == watch[k].fd) exceeded |= drain_pipe(&outs[i], e->id, e->output_limit, &total);
        }
        if (exceeded) {
            r.flags |= REPORT_OUTPUT_EXCEEDED;
            kill_it = 1;
            break;
        }
    }
    if (kill_it) {
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
    if (kill_all_others(pid)) r.flags |= REPORT_CLEAN;
    /* every writer is gone (or the sweep failed): read what is left, briefly */
    uint64_t drain_until = now_ns() + 2000000000ull;
    for (int i = 0; i < 3; i++) {
        while (outs[i].fd >= 0) {
            if (drain_pipe(&outs[i], e->id, e->output_limit, &total)) r.flags |= REPORT_OUTPUT_EXCEEDED;
            if (outs[i].fd < 0) break;
            uint64_t now = now_ns();
            if (now >= drain_until) {
                close(outs[i].fd);
                outs[i].fd = -1;
                break;
            }
            struct pollfd p = {outs[i].fd, POLLIN, 0};
            poll(&p, 1, (int)((drain_until - now) / 1000000ull) + 1);
        }
    }
    if (e->flags & TEST_STDIN_FD) close(fds[0]);
    /* read after every test (an OOM kill of a passing test's helper must not be charged to a
     * later test); it counts for this test only if the test failed */
    int failed = (WIFEXITED(status) && WEXITSTATUS(status) != 0) || WIFSIGNALED(status);
    if (oom_fd >= 0) {
        long long kills = read_oom_kills();
        if (failed && kills >= 0 && last_oom >= 0 && kills > last_oom) r.flags |= REPORT_OOM;
        if (kills >= 0) last_oom = kills;
    }
    uint64_t end = now_ns();
    r.status = status;
    r.wall_ns = reaped - start;
    r.cpu_ns = ((uint64_t)usage.ru_utime.tv_sec + (uint64_t)usage.ru_stime.tv_sec) * 1000000000ull +
               ((uint64_t)usage.ru_utime.tv_usec + (uint64_t)usage.ru_stime.tv_usec) * 1000ull;
    r.maxrss_kb = (uint64_t)usage.ru_maxrss;
    r.minflt = (uint64_t)usage.ru_minflt;
    r.fork_ns = forked - start;
    r.total_ns = end - start;
    r.sweep_ns = end - reaped;
    r.output_total = total;
    send_report(e->id, &r);
    if (!(r.flags & REPORT_CLEAN)) _exit(4); /* something survived the sweep: never run another test here */
    return 0;
}

/* ---- module API ------------------------------------------------------------------------------- */

static void *dontfork_region(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    madvise(p, bytes, MADV_DONTFORK);
    memset(p, 0, bytes); /* resident now: counted in the worker's memory baseline, not in a test's */
    return p;
}

static PyObject *zygote_init(PyObject *self, PyObject *args) {
    int fd, namespace_flag, oom;
    const char *scratch_path, *tmp_path;
    PyObject *keep, *callback;
    if (!PyArg_ParseTuple(args, "iissOOi", &fd, &namespace_flag, &scratch_path, &tmp_path, &keep, &callback, &oom))
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
    oom_fd = oom;
    in_namespace = namespace_flag;
    strcpy(scratch, scratch_path);
    strcpy(tmp_dir, tmp_path);
    Py_XDECREF(prepare_cb);
    Py_INCREF(callback);
    prepare_cb = callback;
    slab = dontfork_region((size_t)QUEUE_MAX * INLINE_MAX);
    for (int s = 1; s <= 3; s++) out_bufs[s] = dontfork_region(CHUNK_BYTES);
    payload_copy = malloc(INLINE_MAX);
    if (!slab || !out_bufs[1] || !out_bufs[2] || !out_bufs[3] || !payload_copy) return PyErr_NoMemory();
    stdin_memfd = (int)syscall(SYS_memfd_create, "stdin", MFD_CLOEXEC);
    if (stdin_memfd < 0) return PyErr_SetFromErrno(PyExc_OSError);
    last_oom = read_oom_kills();
    Py_RETURN_NONE;
}

static PyObject *zygote_serve(PyObject *self, PyObject *unused) {
    if (ctl_fd < 0 || !prepare_cb) {
        PyErr_SetString(PyExc_RuntimeError, "init() first");
        return NULL;
    }
    for (;;) {
        if (!q_len) {
            if (read_ready_frames(1) < 0) _exit(0); /* the host closed the socket: this worker is done */
            continue;
        }
        test_entry *e = &queue[q_head];
        PyObject *child_result = NULL;
        int in_child = run_test(e, &child_result);
        if (in_child) return child_result; /* NULL + exception if the payload could not be built */
        head_running = 0;
        q_head = (q_head + 1) % QUEUE_MAX;
        q_len--;
        if (read_ready_frames(0) < 0) _exit(0);
    }
}

static PyObject *zygote_register_exec(PyObject *self, PyObject *args) {
    int slot;
    PyObject *code, *test_code, *module, *fn_name = Py_None, *caller = Py_None;
    if (!PyArg_ParseTuple(args, "iO!OO!|OO", &slot, &PyCode_Type, &code, &test_code, &PyModule_Type, &module, &fn_name,
                          &caller))
        return NULL;
    if (slot < 0 || slot >= MAX_SLOTS || (test_code != Py_None && !PyCode_Check(test_code)) ||
        (caller != Py_None && (!PyCallable_Check(caller) || !PyUnicode_Check(fn_name)))) {
        PyErr_SetString(PyExc_ValueError, "bad slot, test code or call harness");
        return NULL;
    }
    PyObject *globals = PyModule_GetDict(module); /* borrowed */
    if (!globals) return NULL;
    clear_fast(slot);
    fast_slot *f = &fast[slot];
    f->code = Py_NewRef(code);
    f->test_code = test_code == Py_None ? NULL : Py_NewRef(test_code);
    f->module = Py_NewRef(module);
    f->globals = Py_NewRef(globals);
    if (caller != Py_None) {
        f->caller = Py_NewRef(caller);
        f->fn_name = Py_NewRef(fn_name);
    }
    f->mode = FAST_EXEC;
    Py_RETURN_NONE;
}

static PyObject *zygote_register_binary(PyObject *self, PyObject *args) {
    int slot;
    const char *binary;
    if (!PyArg_ParseTuple(args, "is", &slot, &binary)) return NULL;
    if (slot < 0 || slot >= MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "bad slot");
        return NULL;
    }
    clear_fast(slot);
    fast[slot].binary = strdup(binary);
    if (!fast[slot].binary) return PyErr_NoMemory();
    fast[slot].mode = FAST_BINARY;
    Py_RETURN_NONE;
}

static PyObject *zygote_set_main(PyObject *self, PyObject *args) {
    PyObject *argv, *path0;
    if (!PyArg_ParseTuple(args, "O!U", &PyList_Type, &argv, &path0)) return NULL;
    Py_XSETREF(main_argv, Py_NewRef(argv));
    Py_XSETREF(main_path0, Py_NewRef(path0));
    PyObject *io_mod = PyImport_ImportModule("_io");
    if (!io_mod) return NULL;
    Py_XSETREF(iobase_type, PyObject_GetAttrString(io_mod, "_IOBase"));
    Py_XSETREF(stringio_type, PyObject_GetAttrString(io_mod, "StringIO"));
    Py_XSETREF(bytesio_type, PyObject_GetAttrString(io_mod, "BytesIO"));
    Py_DECREF(io_mod);
    if (!iobase_type || !stringio_type || !bytesio_type || !PyType_Check(iobase_type) || !PyType_Check(stringio_type) ||
        !PyType_Check(bytesio_type)) {
        Py_CLEAR(iobase_type);
        PyErr_SetString(PyExc_RuntimeError, "_io types not found");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *zygote_set_reseed(PyObject *self, PyObject *args) {
    PyObject *inst, *method;
    if (!PyArg_ParseTuple(args, "OO", &inst, &method)) return NULL;
    if (!PyCallable_Check(method)) {
        PyErr_SetString(PyExc_TypeError, "seed method must be callable");
        return NULL;
    }
    Py_XSETREF(reseed_inst, Py_NewRef(inst));
    Py_XSETREF(reseed_method, Py_NewRef(method));
    Py_RETURN_NONE;
}

/* random's at-fork hook without Python frames: Random.seed(None) is the C seed from os.urandom
 * plus gauss_next = None (registered by zygote.import_warm_modules; runs in every forked child). */
static PyObject *zygote_reseed(PyObject *self, PyObject *unused) {
    if (!reseed_inst) Py_RETURN_NONE;
    PyObject *done = PyObject_CallFunctionObjArgs(reseed_method, reseed_inst, Py_None, NULL);
    if (!done) return NULL;
    Py_DECREF(done);
    if (PyObject_SetAttrString(reseed_inst, "gauss_next", Py_None) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"set_reseed", zygote_set_reseed, METH_VARARGS, "set_reseed(instance, seed): what reseed() reseeds, and how"},
    {"reseed", zygote_reseed, METH_NOARGS, "random's at-fork hook in C (register it with os.register_at_fork)"},
    {"register_exec", zygote_register_exec, METH_VARARGS,
     "register_exec(slot, code, test_code_or_None, main_module[, fn_name, call_function]): the child runs it"},
    {"register_binary", zygote_register_binary, METH_VARARGS, "register_binary(slot, path): the child execs it"},
    {"set_main", zygote_set_main, METH_VARARGS, "set_main(argv_list, path0): the children's sys.argv and sys.path[0]"},
    {"init", zygote_init, METH_VARARGS,
     "init(ctl_fd, in_namespace, scratch, tmp_dir, keep_names, prepare, oom_fd)"},
    {"serve", zygote_serve, METH_NOARGS, "Run the per-test loop; returns (slot, payload) in a forked child only."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_xcoder_zygote", NULL, -1, methods};

PyMODINIT_FUNC PyInit__xcoder_zygote(void) { return PyModule_Create(&module); }
