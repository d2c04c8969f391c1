/* LD_PRELOAD shim for tools/native_host.sh: answers the cpuid instructions that
 * trap_cpuid.py turned into UD0 (0F FF) as this CPU would, less AVX-512, VNNI and AMX, so
 * ONNX Runtime picks the kernels it runs on an AVX2-only x86 host, at native speed. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static struct sigaction chained;  /* the SIGILL handler the process asked for */

static void hide_avx512(unsigned leaf, unsigned sub, unsigned r[4]) {
    if (leaf == 7 && sub == 0) {
        r[1] &= ~0xdc230000u; /* EBX: AVX-512 F DQ IFMA PF ER CD BW VL */
        r[2] &= ~0x00005842u; /* ECX: AVX-512 VBMI VBMI2 VNNI BITALG VPOPCNTDQ */
        r[3] &= ~0x03c0010cu; /* EDX: AVX-512 4VNNIW 4FMAPS VP2INTERSECT FP16; AMX BF16 TILE INT8 */
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~0x00000030u; /* EAX: AVX-VNNI, AVX-512 BF16 */
    } else if (leaf == 0xd && sub == 0) {
        r[0] &= ~0x000600e0u; /* EAX: opmask, ZMM and AMX tile state */
    }
}

static void pass_on(int sig, siginfo_t *info, void *context) {
    if (chained.sa_flags & SA_SIGINFO)
        chained.sa_sigaction(sig, info, context);
    else if (chained.sa_handler != SIG_IGN && chained.sa_handler != SIG_DFL)
        chained.sa_handler(sig);
    else {  /* default action: returning re-executes the instruction and the kernel kills us */
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        real_sigaction(SIGILL, &fallback, NULL);
    }
}

static void on_sigill(int sig, siginfo_t *info, void *context) {
    greg_t *reg = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)reg[REG_RIP];
    if (info->si_code != ILL_ILLOPN || ip[0] != 0x0f || ip[1] != 0xff) {
        pass_on(sig, info, context);
        return;
    }
    unsigned leaf = (unsigned)reg[REG_RAX], sub = (unsigned)reg[REG_RCX], r[4];
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    hide_avx512(leaf, sub, r);
    reg[REG_RAX] = r[0];
    reg[REG_RBX] = r[1];
    reg[REG_RCX] = r[2];
    reg[REG_RDX] = r[3];
    reg[REG_RIP] += 2;
}

/* Python's faulthandler (on under pytest) installs its own SIGILL handler: keep ours first. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGILL)
        return real_sigaction(sig, act, old);
    if (old)
        *old = chained;
    if (act)
        chained = *act;
    return 0;
}

__attribute__((constructor)) static void install(void) {
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigill;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    real_sigaction(SIGILL, &action, &chained);
}
