// The process's own argument vector, as the C library handed it to the program's constructors.
// arguments.c says why zkctl keeps it itself rather than leave it to the Swift runtime.
#ifndef ZKCTL_CSTARTUP_H
#define ZKCTL_CSTARTUP_H

/// The arguments the process started with (argv[0] first), and their count in *count. Never NULL:
/// an empty vector when the C library passed none.
char *_Nullable *_Nonnull zkctl_startup_arguments(int *_Nonnull count);

#endif
