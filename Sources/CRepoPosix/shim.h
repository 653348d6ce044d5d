// Linux calls the Glibc Swift module does not expose: extended attributes, O_NOATIME, mallopt.
// No _GNU_SOURCE here: it would change shared type definitions and clash with SwiftGlibc.
#ifndef CREPO_POSIX_SHIM_H
#define CREPO_POSIX_SHIM_H
#include <sys/types.h>
#include <sys/xattr.h>
#include <malloc.h>
#include <stdio.h>
#include <spawn.h>
#include <errno.h>

// O_NOATIME is only visible with _GNU_SOURCE; its value is 01000000 on every Linux
// architecture except alpha, sparc and parisc (asm-generic/fcntl.h).
static inline int crepo_o_noatime(void) { return 01000000; }

// O_DIRECT is only visible with _GNU_SOURCE too, and differs between architectures: 040000 in
// asm-generic/fcntl.h (x86, riscv), 0200000 on arm and arm64. 0 elsewhere: no direct I/O.
static inline int crepo_o_direct(void) {
#if defined(__x86_64__) || defined(__i386__) || defined(__riscv)
    return 040000;
#elif defined(__aarch64__) || defined(__arm__)
    return 0200000;
#else
    return 0;
#endif
}

static inline ssize_t crepo_llistxattr(const char *path, char *list, size_t size) {
    return llistxattr(path, list, size);
}
static inline ssize_t crepo_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return lgetxattr(path, name, value, size);
}
static inline int crepo_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
    return lsetxattr(path, name, value, size, 0);
}
static inline int crepo_lremovexattr(const char *path, const char *name) {
    return lremovexattr(path, name);
}

// Flushes standard output; -1 (errno set) if it or an earlier write to it failed.
static inline int crepo_flush_stdout(void) {
    if (fflush(stdout) != 0) return -1;
    return ferror(stdout) ? -1 : 0;
}

// sync_file_range(2) with SYNC_FILE_RANGE_WRITE (2 in glibc's bits/fcntl-linux.h), a GNU
// extension: starts writeback of `fd`'s dirty pages in [offset, offset + length) (length 0: to
// the end) and returns without waiting for it, so that a later fsync finds the data on its way
// to disk. 0, or -1 with errno set.
extern int sync_file_range(int fd, long long offset, long long nbytes, unsigned int flags);
static inline int crepo_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, 2);
}

// Fixes glibc's mmap threshold (see RepoMain.main).
static inline int crepo_set_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }

// Starts `path` with `argv` and `envp` in a new session (POSIX_SPAWN_SETSID, a GNU extension
// whose value is 0x80 in glibc's spawn.h), its standard streams on /dev/null, and does not
// wait for it: a helper that outlives the command that started it (WAL prefetching) and holds
// none of its caller's pipes open. Returns the pid, or -1 with errno set.
static inline pid_t crepo_spawn_detached(const char *path, char *const argv[], char *const envp[]) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    if (posix_spawn_file_actions_init(&actions) != 0) return -1;
    if (posix_spawnattr_init(&attr) != 0) { posix_spawn_file_actions_destroy(&actions); return -1; }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", 0 /* O_RDONLY */, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", 1 /* O_WRONLY */, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", 1 /* O_WRONLY */, 0);
    posix_spawnattr_setflags(&attr, 0x80);
    int rc = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) { errno = rc; return -1; }
    return pid;
}
#endif
