/*
 * xstate.so: lets Debian 12's user-mode Linux (6.1) run on hosts whose CPUs have AMX
 * (Sapphire Rapids and later), whose XSAVE area is 11008 bytes.
 *
 * Why: UML saves and restores each guest task's FPU state with ptrace(PTRACE_GETREGSET /
 * PTRACE_SETREGSET, NT_X86_XSTATE) and a buffer of sizeof(struct _xstate): 2696 bytes, x87
 * through AVX-512 and PKRU. The host kernel truncates a short GETREGSET, but refuses a
 * SETREGSET shorter than its whole XSAVE area with EFAULT, so every guest's init died at its
 * first return to user space ("userspace - ptrace set fp regs failed, errno = 14").
 *
 * How: preloaded into linux.uml (LD_PRELOAD), this wraps ptrace() and changes one call: a
 * SETREGSET of NT_X86_XSTATE shorter than the host's area reads the target's whole area,
 * lays UML's bytes over its start and writes the whole area back. What lies beyond UML's
 * bytes is AMX's tile state, which is always in its initial state in UML's processes: the
 * host lets a process use AMX only after it asks (arch_prctl ARCH_REQ_XCOMP_PERM), and UML
 * never does. Every other call passes through unchanged, and on a host whose area fits
 * UML's buffer, this one too.
 *
 * UML makes its ptrace calls from one thread, so the scratch buffer needs no lock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define AREA_MAX 65536 /* larger than any XSAVE area a CPU has today (AMX: 11008) */

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

static ptrace_fn real_ptrace;
static size_t area_size; /* the host's XSAVE area, measured at the first SETREGSET */
static unsigned char whole[AREA_MAX];

static long call(enum __ptrace_request request, pid_t pid, void *addr, void *data) {
    if (!real_ptrace) real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return real_ptrace(request, pid, addr, data);
}

/* A SETREGSET of the XSAVE area, made whole from the target's own state when short. */
static long set_xstate(pid_t pid, struct iovec *given) {
    void *regset = (void *)(uintptr_t)NT_X86_XSTATE;
    if (area_size && given->iov_len >= area_size) return call(PTRACE_SETREGSET, pid, regset, given);
    struct iovec area = {whole, AREA_MAX};
    if (call(PTRACE_GETREGSET, pid, regset, &area) != 0) return call(PTRACE_SETREGSET, pid, regset, given);
    area_size = area.iov_len;
    if (given->iov_len >= area_size) return call(PTRACE_SETREGSET, pid, regset, given);
    memcpy(whole, given->iov_base, given->iov_len);
    return call(PTRACE_SETREGSET, pid, regset, &area);
}

long ptrace(enum __ptrace_request request, ...) {
    va_list args;
    va_start(args, request);
    pid_t pid = va_arg(args, pid_t);
    void *addr = va_arg(args, void *);
    void *data = va_arg(args, void *);
    va_end(args);

    if (request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE && data != NULL)
        return set_xstate(pid, data);
    return call(request, pid, addr, data);
}
