#ifndef ZKCTL_CEDITLINE_SHIM_H
#define ZKCTL_CEDITLINE_SHIM_H
/* Debian's libedit (libedit-dev), through its native histedit API. el_set and history are
   variadic, which Swift cannot call: these wrappers give each use zkctl makes a fixed signature. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <histedit.h>

/* The prompt libedit shows, set before each line (one editor per process). */
static inline char *zkctl_editline_prompt_buffer(void) {
    static char text[1024];
    return text;
}

static inline char *zkctl_editline_prompt(EditLine *el) {
    (void)el;
    return zkctl_editline_prompt_buffer();
}

static inline void zkctl_editline_set_prompt(const char *text) {
    char *buffer = zkctl_editline_prompt_buffer();
    strncpy(buffer, text, 1023);
    buffer[1023] = '\0';
}

/* An Emacs-keys editor on the terminal with a history of `size` lines (Up/Down, Ctrl-R). */
static inline EditLine *zkctl_editline_open(const char *program, History *entries) {
    EditLine *el = el_init(program, stdin, stdout, stderr);
    if (el == NULL) return NULL;
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_PROMPT, zkctl_editline_prompt);
    el_set(el, EL_HIST, history, entries);
    el_set(el, EL_BIND, "^R", "em-inc-search-prev", NULL);
    return el;
}

/* Tab runs `complete` (which reads el_line and inserts with el_insertstr). */
static inline void zkctl_editline_set_completion(EditLine *el, unsigned char (*complete)(EditLine *, int)) {
    el_set(el, EL_ADDFN, "zkctl-complete", "complete a command, option or znode path", complete);
    el_set(el, EL_BIND, "^I", "zkctl-complete", NULL);
}

/* Ctrl-C at the prompt. The terminal still turns ^C into SIGINT (so ^Z and ^\ keep their
   meaning); zkctl's handler, with no command running, writes a byte to this pipe. The editor's
   reads wait on the terminal and the pipe together, and a byte on the pipe is read as ^C, the
   key bound to `interrupt`. */
static inline int *zkctl_editline_wake_pipe(void) {
    static int fds[2] = {-1, -1};
    return fds;
}

/* One character from stdin (UTF-8 or whatever the locale says), or ^C when woken: libedit's
   read function (EL_GETCFN). 1 for a character, 0 at end of input, -1 on an error. */
static inline int zkctl_editline_read(EditLine *el, wchar_t *out) {
    (void)el;
    int wake = zkctl_editline_wake_pipe()[0];
    mbstate_t state;
    memset(&state, 0, sizeof state);
    for (;;) {
        struct pollfd ready[2] = {{STDIN_FILENO, POLLIN, 0}, {wake, POLLIN, 0}};
        if (poll(ready, wake >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (wake >= 0 && (ready[1].revents & POLLIN)) {
            char byte;
            while (read(wake, &byte, 1) == 1) {}
            *out = L'\003';
            return 1;
        }
        if (ready[0].revents == 0) continue;
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -1;
        }
        wchar_t wide;
        size_t used = mbrtowc(&wide, &c, 1, &state);
        if (used == (size_t)-2) continue; /* more bytes of one character to come */
        if (used == (size_t)-1) {         /* not a character here: the byte as it is */
            memset(&state, 0, sizeof state);
            *out = (wchar_t)(unsigned char)c;
            return 1;
        }
        *out = used == 0 ? L'\0' : wide;
        return 1;
    }
}

/* Ctrl-C (see above) runs `interrupt`; returns 0, or -1 when the pipe cannot be made. */
static inline int zkctl_editline_set_interrupt(EditLine *el, unsigned char (*interrupt)(EditLine *, int)) {
    int *fds = zkctl_editline_wake_pipe();
    if (fds[0] < 0 && pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < 2; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    el_set(el, EL_GETCFN, zkctl_editline_read);
    el_set(el, EL_ADDFN, "zkctl-interrupt", "drop the line and show a fresh prompt", interrupt);
    el_set(el, EL_BIND, "^C", "zkctl-interrupt", NULL);
    return 0;
}

/* Wakes the editor's read with a ^C (from the signal path, not the handler itself). */
static inline void zkctl_editline_wake(void) {
    int fd = zkctl_editline_wake_pipe()[1];
    if (fd >= 0) { char byte = 3; (void)write(fd, &byte, 1); }
}

/* Shows the rest of the line after the cursor and "^C", then a new line, as a terminal does;
   on libedit's output stream (stdout), after what it wrote so far. */
static inline void zkctl_editline_show_interrupt(EditLine *el) {
    const LineInfo *line = el_line(el);
    if (line != NULL && line->lastchar > line->cursor)
        fwrite(line->cursor, 1, (size_t)(line->lastchar - line->cursor), stdout);
    fputs("^C\n", stdout);
    fflush(stdout);
}

/* Forgets a wake-up that came while no line was read. */
static inline void zkctl_editline_drain(void) {
    int fd = zkctl_editline_wake_pipe()[0];
    char byte;
    if (fd >= 0) while (read(fd, &byte, 1) == 1) {}
}

static inline History *zkctl_history_open(int size) {
    History *h = history_init();
    if (h == NULL) return NULL;
    HistEvent ev;
    history(h, &ev, H_SETSIZE, size);
    history(h, &ev, H_SETUNIQUE, 1);
    return h;
}

static inline int zkctl_history_enter(History *h, const char *line) {
    HistEvent ev;
    return history(h, &ev, H_ENTER, line);
}

static inline int zkctl_history_load(History *h, const char *file) {
    HistEvent ev;
    return history(h, &ev, H_LOAD, file);
}

static inline int zkctl_history_save(History *h, const char *file) {
    HistEvent ev;
    return history(h, &ev, H_SAVE, file);
}
#endif
