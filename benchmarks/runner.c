/*
 * runner: runs one command and measures it the way /usr/bin/time does (fork, exec, wait4), with
 * nothing but fork and exec inside the timed interval, and a hard time limit.
 *
 *   runner LIMIT_SECONDS RESULT_FILE STDIN STDOUT STDERR PROGRAM [ARG...]
 *
 * Writes "STATUS WALL_SECONDS CPU_SECONDS MAXRSS_KIB" to RESULT_FILE: STATUS is the exit code,
 * 128+N after signal N, or "timeout" when LIMIT_SECONDS passed (the command's process group is
 * then killed). MAXRSS_KIB is ru_maxrss from wait4, the number `/usr/bin/time -f %M` prints;
 * the runner is small, so what the child inherits before exec hardly counts, as with GNU time.
 * SIGINT and SIGTERM to the runner kill the command's process group too.
 *
 * Build: cc -O2 -o runner runner.c
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child_pid > 0) kill(-child_pid, SIGKILL);
}

static void on_term(int sig) {
    (void)sig;
    if (child_pid > 0) kill(-child_pid, SIGKILL);
}

static int redirect(const char *path, int fd, int flags) {
    int f = open(path, flags, 0644);
    if (f < 0) return -1;
    if (f != fd) {
        if (dup2(f, fd) < 0) return -1;
        close(f);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fputs("usage: runner LIMIT_SECONDS RESULT_FILE STDIN STDOUT STDERR PROGRAM [ARG...]\n", stderr);
        return 2;
    }
    int limit = atoi(argv[1]);
    if (limit <= 0) limit = 60;
    const char *result = argv[2];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("runner: fork"); return 1; }
    if (pid == 0) {
        setpgid(0, 0);
        int sigs[] = {SIGINT, SIGTERM, SIGPIPE, SIGQUIT, SIGHUP, SIGALRM};
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (redirect(argv[3], 0, O_RDONLY) || redirect(argv[4], 1, O_WRONLY | O_CREAT | O_TRUNC) ||
            redirect(argv[5], 2, O_WRONLY | O_CREAT | O_TRUNC)) {
            perror("runner: redirect");
            _exit(126);
        }
        execvp(argv[6], argv + 6);
        perror("runner: exec");
        _exit(127);
    }
    setpgid(pid, pid);
    child_pid = pid;
    alarm((unsigned)limit);

    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        /* EINTR from our own handlers: the kill is sent, keep waiting. */
        if (errno != EINTR) { perror("runner: wait4"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);

    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    FILE *f = fopen(result, "w");
    if (!f) { perror("runner: result file"); return 1; }
    if (timed_out) fprintf(f, "timeout");
    else if (WIFEXITED(status)) fprintf(f, "%d", WEXITSTATUS(status));
    else fprintf(f, "%d", 128 + WTERMSIG(status));
    fprintf(f, " %.6f %.6f %ld\n", wall, cpu, ru.ru_maxrss);
    fclose(f);
    return 0;
}
