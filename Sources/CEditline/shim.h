#ifndef ZKCTL_CEDITLINE_SHIM_H
#define ZKCTL_CEDITLINE_SHIM_H
/* Debian's libedit (libedit-dev), through its native histedit API. el_set and history are
   variadic, which Swift cannot call: these wrappers give each use zkctl makes a fixed signature. */
#include <stdio.h>
#include <string.h>
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
