// zkctl's arguments, and why the Swift runtime does not look for them in a release build.
//
// The runtime finds argv through two functions of its own (`_swift_stdlib_getUnsafeArgvArgc`,
// and `_swift_stdlib_overrideUnsafeArgvArgc` for tests that replace it). On Linux the archive
// member that defines them also carries a static constructor that opens /proc/self/maps, parses
// every line and searches the main thread's stack for argv. That ran before every command and cost
// a one-shot `zkctl get` about a quarter of a millisecond (benchmarks/FINDINGS.md, §16).
//
// This file defines both functions, so the linker takes them from here and never pulls that
// member in. argv comes from glibc instead: it calls each function of the executable's
// .init_array with (argc, argv, envp) before main, and main.swift reads them from here. In a debug
// build the runtime is a shared library with its own copies; whichever the loader binds, both
// return the same vector.
#include "CStartup.h"

#include <stddef.h>

static char **startup_argv;
static int startup_argc;
static char **override_argv;
static int override_argc;

static void zkctl_keep_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    startup_argc = argc;
    startup_argv = argv;
}

__attribute__((used, section(".init_array")))
static void (*const zkctl_keep_arguments_entry)(int, char **, char **) = zkctl_keep_arguments;

char **zkctl_startup_arguments(int *count) {
    static char *none[] = { NULL };
    if (startup_argv == NULL) {
        *count = 0;
        return none;
    }
    *count = startup_argc;
    return startup_argv;
}

char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen);
void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc);

char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen) {
    if (override_argv != NULL) {
        *outArgLen = override_argc;
        return override_argv;
    }
    return zkctl_startup_arguments(outArgLen);
}

void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
    override_argv = argv;
    override_argc = argc;
}
