#ifndef ZKCTL_CEDITLINE_SHIM_H
#define ZKCTL_CEDITLINE_SHIM_H
/* Debian's libedit (libedit-dev), through its native histedit API. el_set and history are
   variadic, which Swift cannot call: these wrappers give each use zkctl makes a fixed signature.
 *
 * Only the header is used when zkctl is built: libedit (with libtinfo and libbsd behind it) is
 * opened when the shell first needs a line editor, so that no other command pays for loading it
 * at start. zkctl_history_open returns NULL when the library is missing (the shell then reads
 * plain lines); the other wrappers are only called on an editor it made. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <histedit.h>

/* The opened library (a function's static: Swift imports no header's own globals). */
static inline void **zkctl_editline_library_slot(void) {
    static void *library;
    return &library;
}

static inline void zkctl_editline_open_library(void) {
    *zkctl_editline_library_slot() = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
}

/* The symbol `name` of libedit, found once per wrapper; NULL when the library or it is missing. */
static inline void *zkctl_editline_symbol(const char *name) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, zkctl_editline_open_library);
    void *library = *zkctl_editline_library_slot();
    return library == NULL ? NULL : dlsym(library, name);
}

/* zkctl_resolve_NAME: the function, checked against the header's declaration at compile time. */
#define ZKCTL_EDITLINE_RESOLVER(name) \
    static inline __typeof__(&name) zkctl_resolve_##name(void) { \
        static __typeof__(&name) function; \
        __typeof__(&name) found = __atomic_load_n(&function, __ATOMIC_ACQUIRE); \
        if (found == NULL) { \
            found = (__typeof__(&name))zkctl_editline_symbol(#name); \
            __atomic_store_n(&function, found, __ATOMIC_RELEASE); \
        } \
        return found; \
    }
ZKCTL_EDITLINE_RESOLVER(el_init)
ZKCTL_EDITLINE_RESOLVER(el_set)
ZKCTL_EDITLINE_RESOLVER(el_end)
ZKCTL_EDITLINE_RESOLVER(el_gets)
ZKCTL_EDITLINE_RESOLVER(el_line)
ZKCTL_EDITLINE_RESOLVER(el_insertstr)
ZKCTL_EDITLINE_RESOLVER(history_init)
ZKCTL_EDITLINE_RESOLVER(history)
ZKCTL_EDITLINE_RESOLVER(history_end)

/* Whether libedit is there with every function zkctl calls. */
static inline int zkctl_editline_available(void) {
    return zkctl_resolve_el_init() && zkctl_resolve_el_set() && zkctl_resolve_el_end() &&
        zkctl_resolve_el_gets() && zkctl_resolve_el_line() && zkctl_resolve_el_insertstr() &&
        zkctl_resolve_history_init() && zkctl_resolve_history() && zkctl_resolve_history_end();
}

static inline void zkctl_el_end(EditLine *el) { zkctl_resolve_el_end()(el); }
static inline const char *zkctl_el_gets(EditLine *el, int *count) { return zkctl_resolve_el_gets()(el, count); }
static inline const LineInfo *zkctl_el_line(EditLine *el) { return zkctl_resolve_el_line()(el); }
static inline int zkctl_el_insertstr(EditLine *el, const char *text) { return zkctl_resolve_el_insertstr()(el, text); }
static inline void zkctl_history_end(History *h) { zkctl_resolve_history_end()(h); }

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
    EditLine *el = zkctl_resolve_el_init()(program, stdin, stderr, stderr);
    if (el == NULL) return NULL;
    zkctl_resolve_el_set()(el, EL_EDITOR, "emacs");
    zkctl_resolve_el_set()(el, EL_PROMPT, zkctl_editline_prompt);
    zkctl_resolve_el_set()(el, EL_HIST, zkctl_resolve_history(), entries);
    zkctl_resolve_el_set()(el, EL_BIND, "^R", "em-inc-search-prev", NULL);
    return el;
}

/* Tab runs `complete` (which reads el_line and inserts with el_insertstr). */
static inline void zkctl_editline_set_completion(EditLine *el, unsigned char (*complete)(EditLine *, int)) {
    zkctl_resolve_el_set()(el, EL_ADDFN, "zkctl-complete", "complete a command, option or znode path", complete);
    zkctl_resolve_el_set()(el, EL_BIND, "^I", "zkctl-complete", NULL);
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
    zkctl_resolve_el_set()(el, EL_GETCFN, zkctl_editline_read);
    zkctl_resolve_el_set()(el, EL_ADDFN, "zkctl-interrupt", "drop the line and show a fresh prompt", interrupt);
    zkctl_resolve_el_set()(el, EL_BIND, "^C", "zkctl-interrupt", NULL);
    return 0;
}

/* Wakes the editor's read with a ^C (from the signal path, not the handler itself). */
static inline void zkctl_editline_wake(void) {
    int fd = zkctl_editline_wake_pipe()[1];
    if (fd >= 0) { char byte = 3; (void)write(fd, &byte, 1); }
}

/* Shows the rest of the line after the cursor and "^C", then a new line, as a terminal does;
   on libedit's output stream (stderr, where the prompt goes, so that stdout holds only what
   the commands print), after what it wrote so far. */
static inline void zkctl_editline_show_interrupt(EditLine *el) {
    const LineInfo *line = zkctl_resolve_el_line()(el);
    if (line != NULL && line->lastchar > line->cursor)
        fwrite(line->cursor, 1, (size_t)(line->lastchar - line->cursor), stderr);
    fputs("^C\n", stderr);
    fflush(stderr);
}

/* Forgets a wake-up that came while no line was read. */
static inline void zkctl_editline_drain(void) {
    int fd = zkctl_editline_wake_pipe()[0];
    char byte;
    if (fd >= 0) while (read(fd, &byte, 1) == 1) {}
}

static inline History *zkctl_history_open(int size) {
    if (!zkctl_editline_available()) return NULL;
    History *h = zkctl_resolve_history_init()();
    if (h == NULL) return NULL;
    HistEvent ev;
    zkctl_resolve_history()(h, &ev, H_SETSIZE, size);
    zkctl_resolve_history()(h, &ev, H_SETUNIQUE, 1);
    return h;
}

static inline int zkctl_history_enter(History *h, const char *line) {
    HistEvent ev;
    return zkctl_resolve_history()(h, &ev, H_ENTER, line);
}

static inline int zkctl_history_load(History *h, const char *file) {
    HistEvent ev;
    return zkctl_resolve_history()(h, &ev, H_LOAD, file);
}

static inline int zkctl_history_save(History *h, const char *file) {
    HistEvent ev;
    return zkctl_resolve_history()(h, &ev, H_SAVE, file);
}
#endif
