/*
 * xstate.so: lets Debian 12's user-mode Linux (6.1) run on hosts whose CPUs have a large
 * XSAVE area (AVX-512, PKRU, AMX: 11008 bytes on a Sapphire Rapids host, against the 832
 * bytes of an AVX2 one).
 *
 * Why: UML saves and restores each guest task's FPU state with ptrace(PTRACE_GETREGSET /
 * PTRACE_SETREGSET, NT_X86_XSTATE) and a buffer of sizeof(struct _xstate), 832 bytes. The
 * host kernel truncates a short GETREGSET, but refuses a SETREGSET shorter than its whole
 * XSAVE area with EFAULT, so every guest's init dies at its first return to user space
 * ("userspace - ptrace set fp regs failed, errno = 14").
 *
 * How: preloaded into linux.uml (LD_PRELOAD), this wraps ptrace() for NT_X86_XSTATE only.
 * A GETREGSET reads the whole area into a shadow kept per caller buffer (UML's buffer is
 * per guest task) and hands UML its prefix; a SETREGSET lays UML's prefix over that shadow
 * and writes the whole area. The state UML cannot hold (ZMM registers, AMX tiles) thus
 * follows each guest task instead of leaking between threads sharing a host process.
 * Without a shadow for that buffer (evicted, or a fresh task), the host process's current
 * state fills the rest: the task that last ran there, which is nearly always the same one.
 * On a host whose XSAVE area fits UML's buffer, every call passes through unchanged.
 *
 * UML's ptrace calls come from one thread, so the tables need no lock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define AREA_MAX 65536 /* larger than any XSAVE area a CPU has today (AMX: 11008) */
#define SHADOWS 64     /* guest tasks whose full state is kept; the rest use the fallback */

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

static ptrace_fn real_ptrace;
static size_t area;  /* the host kernel's XSAVE area size; 0 until first measured */
static unsigned char scratch[AREA_MAX];
static struct {
    const void *owner; /* the UML buffer this shadow belongs to */
    unsigned char state[AREA_MAX];
} *shadows;

static long call(enum __ptrace_request request, pid_t pid, void *addr, void *data) {
    if (!real_ptrace) real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return real_ptrace(request, pid, addr, data);
}

/* The whole area of pid into buffer (AREA_MAX bytes); measures the area's size once. */
static long read_whole(pid_t pid, unsigned char *buffer) {
    struct iovec whole = {buffer, AREA_MAX};
    long result = call(PTRACE_GETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, &whole);
    if (result == 0 && !area) area = whole.iov_len;
    return result;
}

static unsigned char *shadow_of(const void *owner, int claim) {
    static unsigned char storage[SHADOWS * (sizeof(const void *) + AREA_MAX)];
    if (!shadows) shadows = (void *)storage;
    size_t slot = ((uintptr_t)owner >> 4) % SHADOWS;
    if (shadows[slot].owner != owner) {
        if (!claim) return NULL;
        shadows[slot].owner = owner;
    }
    return shadows[slot].state;
}

static long get_state(pid_t pid, struct iovec *wanted) {
    unsigned char *shadow = shadow_of(wanted->iov_base, 1);
    long result = read_whole(pid, shadow);
    if (result != 0) return result;
    size_t given = wanted->iov_len < area ? wanted->iov_len : area;
    memcpy(wanted->iov_base, shadow, given);
    wanted->iov_len = given;
    return 0;
}

static long set_state(pid_t pid, struct iovec *given) {
    unsigned char *whole = shadow_of(given->iov_base, 0);
    if (!whole) {
        long result = read_whole(pid, scratch);
        if (result != 0) return result;
        whole = scratch;
    }
    memcpy(whole, given->iov_base, given->iov_len);
    struct iovec full = {whole, area};
    return call(PTRACE_SETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, &full);
}

long ptrace(enum __ptrace_request request, ...) {
    va_list args;
    va_start(args, request);
    pid_t pid = va_arg(args, pid_t);
    void *addr = va_arg(args, void *);
    void *data = va_arg(args, void *);
    va_end(args);

    int xstate = (request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
                 (uintptr_t)addr == NT_X86_XSTATE && data != NULL;
    if (!xstate) return call(request, pid, addr, data);
    if (!area) {
        long measured = read_whole(pid, scratch);
        if (measured != 0) return measured;
    }
    struct iovec *io = data;
    if (io->iov_len >= area) return call(request, pid, addr, data);
    return request == PTRACE_GETREGSET ? get_state(pid, io) : set_state(pid, io);
}
