/* An LD_PRELOAD fault injector for the crash sweep (tests/crash): counts every durable call a
 * process makes inside one folder, by kind, and at the N-th call of one kind kills the process
 * (SIGKILL) or fails the call with an errno, with no change to the code under test.
 *
 * Why not strace's inject=...:when=N: strace counts per syscall *and per tracee* (per thread),
 * and a Python process makes the same syscalls outside the run folder (imports, stderr), so
 * `when=N` cannot name "the 7th fsync inside the run folder" of a multi-threaded worker.
 * Here counting is per process over all its threads, restricted to paths under CRASH_ROOT.
 *
 * Environment:
 *   CRASH_ROOT    absolute folder; only calls on paths inside it count (required, else a no-op)
 *   CRASH_LOG     append one line per counted call: "<rank> <kind> <n> <path>" (the enumeration)
 *   CRASH_KIND    write | fsync | rename | link | unlink | mkdir | create   (inject at this kind)
 *   CRASH_N       the N-th call of CRASH_KIND in the process whose rank is CRASH_RANK
 *   CRASH_RANK    rank to inject in (LOCAL_RANK of the process, "0" when unset); default 0
 *   CRASH_ACTION  kill | cut | EIO | ENOSPC | EINVAL   (cut: SIGKILL to the whole process group,
 *                 the power cut of the harness, which then drops what was not fsynced)
 *   CRASH_SYNCLOG append "W <ino>" at each write and "S <ino> <size>" after each successful fsync
 *                 of a regular file inside CRASH_ROOT: what a power cut would keep (crash_harness.cut)
 *   CRASH_SUFFIX  inject only at calls whose path ends with this; N counts those calls alone
 *   CRASH_CONTAINS  likewise, calls whose path contains this (both filters apply when both are set)
 *   CRASH_FIRED   a file created when the fault fires (so a test knows it landed)
 * Kinds: write = write/pwrite64/writev; fsync = fsync/fdatasync; rename = rename/renameat/renameat2;
 * link = link/linkat; unlink = unlink/unlinkat (files and folders, AT_REMOVEDIR) and rmdir;
 * mkdir = mkdir/mkdirat; create = open/openat with O_CREAT.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { K_WRITE, K_FSYNC, K_RENAME, K_LINK, K_UNLINK, K_MKDIR, K_CREATE, K_N };
static const char *KIND_NAMES[K_N] = {"write", "fsync", "rename", "link", "unlink", "mkdir", "create"};

static int initialised;
static char root[PATH_MAX];
static size_t root_len;
static char log_path[PATH_MAX];
static char fired_path[PATH_MAX];
static char rank[32] = "0";
static char suffix[PATH_MAX];
static char contains[PATH_MAX];
static long suffix_count;
static int target_kind = -1;
static long target_n;
static int action_errno;  /* 0: kill */
static int action_group;  /* cut: kill the process group (every rank), as a power cut stops all */
static char sync_log[PATH_MAX];
static int inject_here;
static long counts[K_N];

static void init(void) {
    if (__atomic_load_n(&initialised, __ATOMIC_ACQUIRE)) return;
    const char *r = getenv("CRASH_ROOT");
    if (r && *r) {
        strncpy(root, r, sizeof root - 2);
        root_len = strlen(root);
        while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = 0;
    }
    const char *l = getenv("CRASH_LOG");
    if (l) strncpy(log_path, l, sizeof log_path - 1);
    const char *f = getenv("CRASH_FIRED");
    if (f) strncpy(fired_path, f, sizeof fired_path - 1);
    const char *lr = getenv("LOCAL_RANK");
    if (lr && *lr) strncpy(rank, lr, sizeof rank - 1);
    const char *k = getenv("CRASH_KIND");
    for (int i = 0; k && i < K_N; i++)
        if (!strcmp(k, KIND_NAMES[i])) target_kind = i;
    const char *n = getenv("CRASH_N");
    target_n = n ? atol(n) : 0;
    const char *a = getenv("CRASH_ACTION");
    action_group = a && !strcmp(a, "cut");
    const char *sl = getenv("CRASH_SYNCLOG");
    if (sl) strncpy(sync_log, sl, sizeof sync_log - 1);
    action_errno = !a || !strcmp(a, "kill") || action_group ? 0 : !strcmp(a, "ENOSPC") ? ENOSPC
                 : !strcmp(a, "EINVAL") ? EINVAL : EIO;
    const char *sfx = getenv("CRASH_SUFFIX");
    if (sfx) strncpy(suffix, sfx, sizeof suffix - 1);
    const char *cts = getenv("CRASH_CONTAINS");
    if (cts) strncpy(contains, cts, sizeof contains - 1);
    const char *tr = getenv("CRASH_RANK");
    inject_here = target_kind >= 0 && target_n > 0 && !strcmp(tr && *tr ? tr : "0", rank);
    __atomic_store_n(&initialised, 1, __ATOMIC_RELEASE);
}

/* The absolute path `p` names relative to dirfd (AT_FDCWD or a folder's fd), without syscalls
 * that this shim intercepts. Not canonicalised beyond that: the run folder is given absolute. */
static void resolve(int dirfd, const char *p, char *out, size_t size) {
    out[0] = 0;
    if (!p) return;
    if (p[0] == '/') { snprintf(out, size, "%s", p); return; }
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) return;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0) return;
        base[n] = 0;
    }
    snprintf(out, size, "%s/%s", base, p);
}

static void fd_path(int fd, char *out, size_t size) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, size - 1);
    out[n < 0 ? 0 : n] = 0;
}

static int inside(const char *path) {
    return root_len && !strncmp(path, root, root_len) && (path[root_len] == '/' || path[root_len] == 0);
}

static void append_line(const char *path, const char *line) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    syscall(SYS_write, fd, line, strlen(line));
    syscall(SYS_close, fd);
}

/* Count one call of `kind` on `path`; returns -1 (errno set) when this call must fail. */
static int point(int kind, const char *path) {
    init();
    if (!inside(path)) return 0;
    long n = __atomic_add_fetch(&counts[kind], 1, __ATOMIC_SEQ_CST);
    if (log_path[0]) {
        char line[PATH_MAX + 96];
        snprintf(line, sizeof line, "%s %s %ld %s\n", rank, KIND_NAMES[kind], n, path);
        append_line(log_path, line);
    }
    if (!inject_here || kind != target_kind) return 0;
    if (suffix[0] || contains[0]) {
        size_t lp = strlen(path), ls = strlen(suffix);
        if (suffix[0] && (lp < ls || strcmp(path + lp - ls, suffix))) return 0;
        if (contains[0] && !strstr(path, contains)) return 0;
        n = __atomic_add_fetch(&suffix_count, 1, __ATOMIC_SEQ_CST);
    }
    if (n != target_n) return 0;
    if (fired_path[0]) {
        char line[PATH_MAX + 96];
        snprintf(line, sizeof line, "%s %s %ld %s\n", rank, KIND_NAMES[kind], n, path);
        append_line(fired_path, line);
    }
    if (!action_errno) {
        syscall(SYS_kill, action_group ? 0 : getpid(), SIGKILL);
        for (;;) pause();
    }
    errno = action_errno;
    return -1;
}

/* The power-cut model (LazyFS's: un-fsynced file data is lost, names are kept): which regular
 * files under the root were written, and the size each had when last fsynced. */
static void sync_note(int fd, int what) {  /* 0: written, 1: fsynced, 2: opened empty */
    init();
    if (!sync_log[0] || !root_len) return;
    int saved = errno;
    char p[PATH_MAX];
    fd_path(fd, p, sizeof p);
    struct stat st;
    if (!inside(p) || syscall(SYS_fstat, fd, &st) || !S_ISREG(st.st_mode)) { errno = saved; return; }
    char line[96];
    if (what == 1) snprintf(line, sizeof line, "S %lu %lld\n", (unsigned long)st.st_ino, (long long)st.st_size);
    else if (what == 0) snprintf(line, sizeof line, "W %lu\n", (unsigned long)st.st_ino);
    else if (st.st_size == 0) snprintf(line, sizeof line, "C %lu\n", (unsigned long)st.st_ino);  /* a new life */
    else { errno = saved; return; }
    append_line(sync_log, line);
    errno = saved;
}

#define REAL(name, ret, ...) \
    static ret (*real_##name)(__VA_ARGS__); \
    if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static int fd_point(int kind, int fd) {
    init();
    if (!root_len) return 0;
    char p[PATH_MAX];
    fd_path(fd, p, sizeof p);
    return point(kind, p);
}

static int at_point(int kind, int dirfd, const char *p) {
    init();
    if (!root_len) return 0;
    char abs[PATH_MAX];
    resolve(dirfd, p, abs, sizeof abs);
    return point(kind, abs);
}

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write, ssize_t, int, const void *, size_t);
    if (fd > 2 && fd_point(K_WRITE, fd)) return -1;
    sync_note(fd, 0);
    return real_write(fd, buf, n);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
    if (fd_point(K_WRITE, fd)) return -1;
    sync_note(fd, 0);
    return real_pwrite64(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    if (fd_point(K_WRITE, fd)) return -1;
    sync_note(fd, 0);
    return real_pwrite(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev, ssize_t, int, const struct iovec *, int);
    if (fd > 2 && fd_point(K_WRITE, fd)) return -1;
    sync_note(fd, 0);
    return real_writev(fd, iov, cnt);
}

int fsync(int fd) {
    REAL(fsync, int, int);
    if (fd_point(K_FSYNC, fd)) return -1;
    int r = real_fsync(fd);
    if (!r) sync_note(fd, 1);
    return r;
}

int fdatasync(int fd) {
    REAL(fdatasync, int, int);
    if (fd_point(K_FSYNC, fd)) return -1;
    int r = real_fdatasync(fd);
    if (!r) sync_note(fd, 1);
    return r;
}

int rename(const char *a, const char *b) {
    REAL(rename, int, const char *, const char *);
    if (at_point(K_RENAME, AT_FDCWD, b)) return -1;
    return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b) {
    REAL(renameat, int, int, const char *, int, const char *);
    if (at_point(K_RENAME, db, b)) return -1;
    return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    REAL(renameat2, int, int, const char *, int, const char *, unsigned);
    if (at_point(K_RENAME, db, b)) return -1;
    return real_renameat2(da, a, db, b, flags);
}

int link(const char *a, const char *b) {
    REAL(link, int, const char *, const char *);
    if (at_point(K_LINK, AT_FDCWD, b)) return -1;
    return real_link(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags) {
    REAL(linkat, int, int, const char *, int, const char *, int);
    if (at_point(K_LINK, db, b)) return -1;
    return real_linkat(da, a, db, b, flags);
}

int unlink(const char *p) {
    REAL(unlink, int, const char *);
    if (at_point(K_UNLINK, AT_FDCWD, p)) return -1;
    return real_unlink(p);
}

int unlinkat(int d, const char *p, int flags) {
    REAL(unlinkat, int, int, const char *, int);
    if (at_point(K_UNLINK, d, p)) return -1;
    return real_unlinkat(d, p, flags);
}

int rmdir(const char *p) {
    REAL(rmdir, int, const char *);
    if (at_point(K_UNLINK, AT_FDCWD, p)) return -1;
    return real_rmdir(p);
}

int mkdir(const char *p, mode_t m) {
    REAL(mkdir, int, const char *, mode_t);
    if (at_point(K_MKDIR, AT_FDCWD, p)) return -1;
    return real_mkdir(p, m);
}

int mkdirat(int d, const char *p, mode_t m) {
    REAL(mkdirat, int, int, const char *, mode_t);
    if (at_point(K_MKDIR, d, p)) return -1;
    return real_mkdirat(d, p, m);
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *p, int flags, ...) {
    REAL(open, int, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if ((flags & O_CREAT) && at_point(K_CREATE, AT_FDCWD, p)) return -1;
    int fd = real_open(p, flags, m);
    if (fd >= 0 && (flags & (O_CREAT | O_TRUNC))) sync_note(fd, 2);
    return fd;
}

int open64(const char *p, int flags, ...) {
    REAL(open64, int, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if ((flags & O_CREAT) && at_point(K_CREATE, AT_FDCWD, p)) return -1;
    int fd = real_open64(p, flags, m);
    if (fd >= 0 && (flags & (O_CREAT | O_TRUNC))) sync_note(fd, 2);
    return fd;
}

int openat(int d, const char *p, int flags, ...) {
    REAL(openat, int, int, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if ((flags & O_CREAT) && at_point(K_CREATE, d, p)) return -1;
    int fd = real_openat(d, p, flags, m);
    if (fd >= 0 && (flags & (O_CREAT | O_TRUNC))) sync_note(fd, 2);
    return fd;
}

int openat64(int d, const char *p, int flags, ...) {
    REAL(openat64, int, int, const char *, int, ...);
    va_list ap; va_start(ap, flags); mode_t m = mode_arg(flags, ap); va_end(ap);
    if ((flags & O_CREAT) && at_point(K_CREATE, d, p)) return -1;
    int fd = real_openat64(d, p, flags, m);
    if (fd >= 0 && (flags & (O_CREAT | O_TRUNC))) sync_note(fd, 2);
    return fd;
}
