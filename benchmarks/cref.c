/*
 * cref: the C reference for zkctl's benchmark, written straight over libzookeeper_mt.
 * It is what "close to what the C client itself can do" means in benchmarks/RESULTS.md.
 *
 *   cref get    HOSTS PATH                      connect, get, print the value, close the session
 *   cref gets   HOSTS PATH N                    the same with N gets, one after the other (one
 *                                               round trip each), each value printed
 *   (every mode) --resolve-delay MS             zoo_set_servers_resolution_delay(MS) after init;
 *                                               without it the library re-resolves the server list
 *                                               at every poll, as zkctl does today
 *   cref walk   HOSTS ROOT [options]            pipelined walk: children (+ data, + ACL) of every node
 *        --data            also read every value
 *        --acl             also read every ACL
 *        --window N        requests in flight (default 512)
 *        --json            one JSON line {"path","data"} per node (an export), else one path per line
 *        --out FILE        write there instead of stdout
 *   cref create HOSTS ROOT A B [--batch N] [--window N] [--value-len N]
 *                                               create ROOT, ROOT/a0..a{A-1}, ROOT/ai/b0..b{B-1}
 *                                               with zoo_amulti batches (default 1000 ops, 4 in flight)
 *   cref delete HOSTS ROOT [--batch N] [--window N]
 *                                               walk ROOT, then delete it bottom-up in multi batches
 *
 * Values are the benchmark's 50-byte JSON strings: '"' + 8-digit sequence number + 'x' * 40 + '"',
 * numbered in creation order (ROOT is 0, then a0, a0/b0, ..., a0/b{B-1}, a1, ...).
 *
 * Build: cc -O2 -DTHREADED -o cref cref.c -lzookeeper_mt
 * Every run is bounded by alarm(); exit 0 ok, 1 ZooKeeper error, 2 usage, 3 could not connect.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#define TIME_LIMIT_SECONDS 900
#define CONNECT_TIMEOUT_SECONDS 10
#define VALUE_LEN_DEFAULT 50

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int session_state; /* 0 connecting, 1 connected, -1 failed */
static int resolve_delay_set, resolve_delay;

static void die(int code, const char *what, int rc) {
    if (rc) fprintf(stderr, "cref: %s: %s\n", what, zerror(rc));
    else fprintf(stderr, "cref: %s\n", what);
    exit(code);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) die(1, "out of memory", 0);
    return p;
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)path; (void)ctx;
    if (type != ZOO_SESSION_EVENT) return;
    pthread_mutex_lock(&mu);
    if (state == ZOO_CONNECTED_STATE) session_state = 1;
    else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) session_state = -1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static zhandle_t *connect_or_die(const char *hosts) {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(hosts, session_watcher, 10000, NULL, NULL, 0);
    if (!zh) die(3, "zookeeper_init failed", 0);
    /* By default the client resolves the server list again (getaddrinfo, a netlink dump with
     * AI_ADDRCONFIG) every time it polls its socket. --resolve-delay sets
     * zoo_set_servers_resolution_delay (-1: only on connection loss); without it the library's
     * default stands, as zkctl runs it today. */
    if (resolve_delay_set) zoo_set_servers_resolution_delay(zh, resolve_delay);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CONNECT_TIMEOUT_SECONDS;
    pthread_mutex_lock(&mu);
    while (session_state == 0) {
        if (pthread_cond_timedwait(&cv, &mu, &deadline) == ETIMEDOUT) break;
    }
    int ok = session_state == 1;
    pthread_mutex_unlock(&mu);
    if (!ok) die(3, "no session", 0);
    return zh;
}

/* The value of the node created n-th. */
static void make_value(char *buf, int len, long n) {
    if (len < 2) { memset(buf, 'x', (size_t)len); return; }
    char digits[32];
    int d = snprintf(digits, sizeof digits, "%08ld", n);
    buf[0] = '"';
    for (int i = 1; i < len - 1; i++) buf[i] = (i - 1 < d) ? digits[i - 1] : 'x';
    buf[len - 1] = '"';
}

/* ------------------------------------------------------------------------------------------ */
/* get */

static int run_get(const char *hosts, const char *path, int times) {
    zhandle_t *zh = connect_or_die(hosts);
    static char buf[1 << 20];
    int rc = ZOK;
    for (int i = 0; i < times && rc == ZOK; i++) {
        int len = (int)sizeof buf;
        struct Stat stat;
        rc = zoo_get(zh, path, 0, buf, &len, &stat);
        if (rc == ZOK) {
            if (len > 0) fwrite(buf, 1, (size_t)len, stdout);
            fputc('\n', stdout);
            fflush(stdout);
        } else {
            fprintf(stderr, "cref: %s: %s\n", path, zerror(rc));
        }
    }
    zookeeper_close(zh);
    return rc == ZOK ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */
/* walk: a work queue of paths, fed by children replies, drained while the window allows. */

struct node {
    char *path;
    int pending; /* replies still to come */
};

static struct {
    zhandle_t *zh;
    int with_data, with_acl, json, collect;
    int window, inflight, fatal;
    char **queue;
    size_t head, tail, cap;
    char **collected; /* with collect: every path, in breadth-first order */
    size_t ncollected, capcollected;
    FILE *out;
    long nodes;
} W;

static void push_path(char *p) {
    if (W.tail == W.cap) {
        /* Reclaim the consumed front only when it is at least half the array (amortised O(1)). */
        if (W.head >= W.cap / 2) {
            memmove(W.queue, W.queue + W.head, (W.tail - W.head) * sizeof *W.queue);
            W.tail -= W.head;
            W.head = 0;
        }
        if (W.tail == W.cap) {
            W.cap = W.cap ? W.cap * 2 : 1024;
            W.queue = realloc(W.queue, W.cap * sizeof *W.queue);
            if (!W.queue) die(1, "out of memory", 0);
        }
    }
    W.queue[W.tail++] = p;
}

static void write_json_string(FILE *f, const char *s, int len) {
    static const char hex[] = "0123456789abcdef";
    fputc('"', f);
    for (int i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); }
        else if (c < 0x20) { fputs("\\u00", f); fputc(hex[c >> 4], f); fputc(hex[c & 15], f); }
        else fputc(c, f);
    }
    fputc('"', f);
}

static void node_done(struct node *n) {
    if (--n->pending > 0) return;
    free(n->path);
    free(n);
}

static void pump(void);

static void finish_reply(void) {
    W.inflight--;
    pump();
    if (W.inflight == 0) pthread_cond_broadcast(&cv);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void children_cb(int rc, const struct String_vector *kids, const void *data) {
    struct node *n = (struct node *)data;
    pthread_mutex_lock(&mu);
    if (rc == ZOK) {
        W.nodes++;
        if (!W.with_data) {
            fputs(n->path, W.out);
            fputc('\n', W.out);
        }
        if (W.collect) {
            if (W.ncollected == W.capcollected) {
                W.capcollected = W.capcollected ? W.capcollected * 2 : 1024;
                W.collected = realloc(W.collected, W.capcollected * sizeof *W.collected);
                if (!W.collected) die(1, "out of memory", 0);
            }
            W.collected[W.ncollected++] = strdup(n->path);
        }
        /* Children in name order, as a listing shows them. */
        char **names = xmalloc((size_t)(kids->count > 0 ? kids->count : 1) * sizeof *names);
        for (int i = 0; i < kids->count; i++) names[i] = kids->data[i];
        qsort(names, (size_t)kids->count, sizeof *names, cmp_str);
        size_t plen = strlen(n->path);
        int root = plen == 1;
        for (int i = 0; i < kids->count; i++) {
            size_t clen = strlen(names[i]);
            char *p = xmalloc(plen + clen + 2);
            memcpy(p, n->path, plen);
            size_t at = root ? plen : plen + 1;
            if (!root) p[plen] = '/';
            memcpy(p + at, names[i], clen + 1);
            push_path(p);
        }
        free(names);
    } else if (rc != ZNONODE) {
        fprintf(stderr, "cref: children of %s: %s\n", n->path, zerror(rc));
        W.fatal = 1;
    }
    node_done(n);
    finish_reply();
    pthread_mutex_unlock(&mu);
}

static void data_cb(int rc, const char *value, int len, const struct Stat *stat, const void *data) {
    (void)stat;
    struct node *n = (struct node *)data;
    pthread_mutex_lock(&mu);
    if (rc == ZOK) {
        if (W.json) {
            fputs("{\"path\":", W.out);
            write_json_string(W.out, n->path, (int)strlen(n->path));
            fputs(",\"data\":", W.out);
            write_json_string(W.out, value ? value : "", len > 0 ? len : 0);
            fputs("}\n", W.out);
        } else {
            fputs(n->path, W.out);
            fputc(' ', W.out);
            if (value && len > 0) fwrite(value, 1, (size_t)len, W.out);
            fputc('\n', W.out);
        }
    } else if (rc != ZNONODE) {
        fprintf(stderr, "cref: data of %s: %s\n", n->path, zerror(rc));
        W.fatal = 1;
    }
    node_done(n);
    finish_reply();
    pthread_mutex_unlock(&mu);
}

static void acl_cb(int rc, struct ACL_vector *acl, struct Stat *stat, const void *data) {
    (void)acl; (void)stat;
    struct node *n = (struct node *)data;
    pthread_mutex_lock(&mu);
    if (rc != ZOK && rc != ZNONODE) {
        fprintf(stderr, "cref: ACL of %s: %s\n", n->path, zerror(rc));
        W.fatal = 1;
    }
    node_done(n);
    finish_reply();
    pthread_mutex_unlock(&mu);
}

/* Called with mu held: issue requests for queued paths while the window allows. */
static void pump(void) {
    int per = 1 + W.with_data + W.with_acl;
    while (!W.fatal && W.head < W.tail && (W.inflight + per <= W.window || W.inflight == 0)) {
        struct node *n = xmalloc(sizeof *n);
        n->path = W.queue[W.head++];
        n->pending = per;
        W.inflight += per;
        int rc = zoo_aget_children(W.zh, n->path, 0, children_cb, n);
        if (rc == ZOK && W.with_data) rc = zoo_aget(W.zh, n->path, 0, data_cb, n);
        if (rc == ZOK && W.with_acl) rc = zoo_aget_acl(W.zh, n->path, acl_cb, n);
        if (rc != ZOK) die(1, "request", rc);
    }
}

static int walk(zhandle_t *zh, const char *root) {
    W.zh = zh;
    pthread_mutex_lock(&mu);
    char *r = strdup(root);
    if (!r) die(1, "out of memory", 0);
    push_path(r);
    pump();
    while (W.inflight > 0) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return W.fatal ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* multi batches: create and delete */

struct batch {
    int count;
    zoo_op_t *ops;
    zoo_op_result_t *results;
    char **paths;
    char *pathbufs;
};

static struct {
    int inflight, window, fatal;
    long done_ops;
} M;

static void free_batch(struct batch *b) {
    for (int i = 0; i < b->count; i++) free(b->paths[i]);
    free(b->paths);
    free(b->ops);
    free(b->results);
    free(b->pathbufs);
    free(b);
}

static void multi_cb(int rc, const void *data) {
    struct batch *b = (struct batch *)data;
    pthread_mutex_lock(&mu);
    if (rc != ZOK) {
        int first = -1;
        for (int i = 0; i < b->count; i++) {
            if (b->results[i].err != ZOK && b->results[i].err != ZRUNTIMEINCONSISTENCY) { first = i; break; }
        }
        fprintf(stderr, "cref: multi: %s (%s)\n", zerror(rc), first >= 0 ? b->paths[first] : "?");
        M.fatal = 1;
    }
    M.done_ops += b->count;
    M.inflight--;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    free_batch(b);
}

static struct batch *new_batch(int cap) {
    struct batch *b = xmalloc(sizeof *b);
    b->count = 0;
    b->ops = xmalloc((size_t)cap * sizeof *b->ops);
    b->results = xmalloc((size_t)cap * sizeof *b->results);
    b->paths = xmalloc((size_t)cap * sizeof *b->paths);
    b->pathbufs = NULL;
    return b;
}

/* Sends b once fewer than the window's multis are in flight. */
static void send_batch(zhandle_t *zh, struct batch *b) {
    pthread_mutex_lock(&mu);
    while (M.inflight >= M.window && !M.fatal) pthread_cond_wait(&cv, &mu);
    if (M.fatal) { pthread_mutex_unlock(&mu); free_batch(b); return; }
    M.inflight++;
    pthread_mutex_unlock(&mu);
    int rc = zoo_amulti(zh, b->count, b->ops, b->results, multi_cb, b);
    if (rc != ZOK) die(1, "zoo_amulti", rc);
}

static void wait_multis(void) {
    pthread_mutex_lock(&mu);
    while (M.inflight > 0) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

#define PATHBUF 16

static int run_create(zhandle_t *zh, const char *root, long a, long b, int batch, int value_len) {
    long total = 1 + a * (1 + b);
    struct batch *cur = NULL;
    long seq = 0;
    char path[4096];
    for (long i = -1; i < a && !M.fatal; i++) {
        for (long j = -1; j < (i < 0 ? 0 : b) && !M.fatal; j++) {
            if (i < 0) snprintf(path, sizeof path, "%s", root);
            else if (j < 0) snprintf(path, sizeof path, "%s/a%ld", root, i);
            else snprintf(path, sizeof path, "%s/a%ld/b%ld", root, i, j);
            if (!cur) {
                cur = new_batch(batch);
                /* The create ops' result-path buffers, then the values. */
                cur->pathbufs = xmalloc((size_t)batch * PATHBUF + (size_t)batch * (size_t)value_len);
            }
            char *v = cur->pathbufs + (size_t)batch * PATHBUF + (size_t)cur->count * (size_t)value_len;
            make_value(v, value_len, seq++);
            char *p = strdup(path);
            if (!p) die(1, "out of memory", 0);
            cur->paths[cur->count] = p;
            zoo_create_op_init(&cur->ops[cur->count], p, v, value_len, &ZOO_OPEN_ACL_UNSAFE, 0,
                               cur->pathbufs + (size_t)cur->count * PATHBUF, PATHBUF);
            cur->count++;
            if (cur->count == batch) { send_batch(zh, cur); cur = NULL; }
        }
    }
    if (cur && cur->count > 0) send_batch(zh, cur);
    else if (cur) free_batch(cur);
    wait_multis();
    if (!M.fatal && M.done_ops != total) fprintf(stderr, "cref: created %ld of %ld\n", M.done_ops, total);
    return M.fatal ? 1 : 0;
}

static int run_delete(zhandle_t *zh, const char *root, int batch) {
    W.collect = 1;
    W.out = fopen("/dev/null", "w");
    if (walk(zh, root) != 0) return 1;
    struct batch *cur = NULL;
    /* Breadth-first order reversed: every child before its parent. */
    for (size_t k = W.ncollected; k-- > 0 && !M.fatal;) {
        if (!cur) cur = new_batch(batch);
        cur->paths[cur->count] = W.collected[k];
        zoo_delete_op_init(&cur->ops[cur->count], W.collected[k], -1);
        cur->count++;
        if (cur->count == batch) { send_batch(zh, cur); cur = NULL; }
    }
    if (cur && cur->count > 0) send_batch(zh, cur);
    else if (cur) free_batch(cur);
    wait_multis();
    free(W.collected);
    return M.fatal ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(void) {
    fputs("usage: cref get HOSTS PATH [--resolve-delay MS]\n"
          "       cref gets HOSTS PATH N\n"
          "       cref walk HOSTS ROOT [--data] [--acl] [--window N] [--json] [--out FILE]\n"
          "       cref create HOSTS ROOT A B [--batch N] [--window N] [--value-len N]\n"
          "       cref delete HOSTS ROOT [--batch N] [--window N]\n", stderr);
    exit(2);
}

static int int_arg(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 100000000) usage();
    return (int)v;
}

int main(int argc, char **argv) {
    alarm(TIME_LIMIT_SECONDS);
    if (argc < 4) usage();
    const char *mode = argv[1], *hosts = argv[2], *target = argv[3];
    /* --resolve-delay MS may come anywhere after the target. */
    int kept = 4;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--resolve-delay") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < -1 || v > 86400000) usage();
            resolve_delay_set = 1;
            resolve_delay = (int)v;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    if (strcmp(mode, "get") == 0) {
        if (argc != 4) usage();
        return run_get(hosts, target, 1);
    }
    if (strcmp(mode, "gets") == 0) {
        if (argc != 5) usage();
        return run_get(hosts, target, int_arg(argv[4]));
    }
    int window = -1, batch = 1000, value_len = VALUE_LEN_DEFAULT;
    const char *out = NULL;
    long a = 0, b = 0;
    int first_opt = 4;
    if (strcmp(mode, "create") == 0) {
        if (argc < 6) usage();
        a = int_arg(argv[4]);
        b = int_arg(argv[5]);
        first_opt = 6;
    } else if (strcmp(mode, "walk") != 0 && strcmp(mode, "delete") != 0) {
        usage();
    }
    for (int i = first_opt; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0) W.with_data = 1;
        else if (strcmp(argv[i], "--acl") == 0) W.with_acl = 1;
        else if (strcmp(argv[i], "--json") == 0) W.json = 1;
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) window = int_arg(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) batch = int_arg(argv[++i]);
        else if (strcmp(argv[i], "--value-len") == 0 && i + 1 < argc) value_len = int_arg(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[++i];
        else usage();
    }
    zhandle_t *zh = connect_or_die(hosts);
    int status;
    if (strcmp(mode, "walk") == 0) {
        W.window = window > 0 ? window : 512;
        W.out = out ? fopen(out, "w") : stdout;
        if (!W.out) die(1, "cannot open the output file", 0);
        static char obuf[1 << 16];
        setvbuf(W.out, obuf, _IOFBF, sizeof obuf);
        status = walk(zh, target);
        if (fflush(W.out) != 0) status = 1;
    } else if (strcmp(mode, "create") == 0) {
        M.window = window > 0 ? window : 4;
        status = run_create(zh, target, a, b, batch, value_len);
    } else {
        W.window = 512;
        M.window = window > 0 ? window : 4;
        status = run_delete(zh, target, batch);
    }
    zookeeper_close(zh);
    return status;
}
