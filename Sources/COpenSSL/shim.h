#ifndef ZKCTL_COPENSSL_SHIM_H
#define ZKCTL_COPENSSL_SHIM_H
/* Debian's libssl-dev (OpenSSL 3): the TLS relay's client side.
 *
 * Only the headers are used when zkctl is built. libssl (with the libcrypto it needs) is opened
 * the first time a command uses TLS: linked in, the two libraries cost every start of every
 * command their loading and relocation, about two thirds of all the symbol lookups the dynamic
 * loader made for zkctl. So each OpenSSL function zkctl calls has a wrapper here, zkctl_NAME,
 * that finds NAME once in the opened library. Before the first wrapper is called,
 * zkctl_openssl_missing() must have returned NULL (the library and every function are there);
 * the wrappers do not check again.
 *
 * Swift does not import function-like macros either, so the few macros the relay needs are
 * functions here as well. */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#define ZKCTL_STRINGIFY_(x) #x
#define ZKCTL_STRINGIFY(x) ZKCTL_STRINGIFY_(x)
/* The library the headers describe: libssl.so.3 for OpenSSL 3. */
#define ZKCTL_LIBSSL "libssl.so." ZKCTL_STRINGIFY(OPENSSL_VERSION_MAJOR)

static inline const char *zkctl_openssl_library_name(void) { return ZKCTL_LIBSSL; }

/* The opened library (a function's static: Swift imports no header's own globals). */
static inline void **zkctl_openssl_library_slot(void) {
    static void *library;
    return &library;
}

static inline void zkctl_openssl_open(void) {
    *zkctl_openssl_library_slot() = dlopen(ZKCTL_LIBSSL, RTLD_NOW | RTLD_LOCAL);
}

/* libssl, opened once; NULL when it cannot be. */
static inline void *zkctl_openssl_library(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, zkctl_openssl_open);
    return *zkctl_openssl_library_slot();
}

/* The symbol `name` of libssl or libcrypto; NULL when the library or the symbol is missing. */
static inline void *zkctl_openssl_symbol(const char *name) {
    void *library = zkctl_openssl_library();
    return library == NULL ? NULL : dlsym(library, name);
}

/* Every function zkctl calls: its result, name, parameters and the arguments passed on.
   F for functions with a result, V for the void ones. */
#define ZKCTL_OPENSSL_FUNCTIONS(F, V) \
    F(unsigned long, ERR_get_error, (void), ()) \
    F(unsigned long, ERR_peek_error, (void), ()) \
    F(unsigned long, ERR_peek_last_error, (void), ()) \
    F(const char *, ERR_reason_error_string, (unsigned long e), (e)) \
    V(ERR_clear_error, (void), ()) \
    F(const SSL_METHOD *, TLS_client_method, (void), ()) \
    F(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *method), (method)) \
    V(SSL_CTX_free, (SSL_CTX *ctx), (ctx)) \
    F(long, SSL_CTX_ctrl, (SSL_CTX *ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg)) \
    V(SSL_CTX_set_verify, (SSL_CTX *ctx, int mode, SSL_verify_cb callback), (ctx, mode, callback)) \
    F(int, SSL_CTX_set_default_verify_paths, (SSL_CTX *ctx), (ctx)) \
    F(int, SSL_CTX_load_verify_locations, (SSL_CTX *ctx, const char *file, const char *path), (ctx, file, path)) \
    F(int, SSL_CTX_use_certificate_chain_file, (SSL_CTX *ctx, const char *file), (ctx, file)) \
    F(int, SSL_CTX_use_PrivateKey_file, (SSL_CTX *ctx, const char *file, int type), (ctx, file, type)) \
    F(int, SSL_CTX_check_private_key, (const SSL_CTX *ctx), (ctx)) \
    F(SSL *, SSL_new, (SSL_CTX *ctx), (ctx)) \
    V(SSL_free, (SSL *ssl), (ssl)) \
    F(long, SSL_ctrl, (SSL *ssl, int cmd, long larg, void *parg), (ssl, cmd, larg, parg)) \
    F(int, SSL_set_fd, (SSL *ssl, int fd), (ssl, fd)) \
    V(SSL_set_read_ahead, (SSL *ssl, int yes), (ssl, yes)) \
    V(SSL_set_default_read_buffer_len, (SSL *ssl, size_t len), (ssl, len)) \
    F(int, SSL_has_pending, (const SSL *ssl), (ssl)) \
    F(int, SSL_set1_host, (SSL *ssl, const char *hostname), (ssl, hostname)) \
    F(X509_VERIFY_PARAM *, SSL_get0_param, (SSL *ssl), (ssl)) \
    F(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM *param, const char *ipasc), (param, ipasc)) \
    F(int, SSL_connect, (SSL *ssl), (ssl)) \
    F(int, SSL_read, (SSL *ssl, void *buf, int num), (ssl, buf, num)) \
    F(int, SSL_write, (SSL *ssl, const void *buf, int num), (ssl, buf, num)) \
    F(int, SSL_get_error, (const SSL *ssl, int ret), (ssl, ret)) \
    F(long, SSL_get_verify_result, (const SSL *ssl), (ssl)) \
    F(const char *, X509_verify_cert_error_string, (long n), (n)) \
    F(int, SSL_set_session, (SSL *to, SSL_SESSION *session), (to, session)) \
    F(int, SSL_session_reused, (const SSL *s), (s)) \
    F(const char *, SSL_get_version, (const SSL *s), (s)) \
    F(SSL_SESSION *, SSL_get1_session, (SSL *ssl), (ssl)) \
    V(SSL_SESSION_free, (SSL_SESSION *ses), (ses)) \
    F(long, SSL_SESSION_get_time, (const SSL_SESSION *s), (s)) \
    F(int, SSL_SESSION_is_resumable, (const SSL_SESSION *s), (s)) \
    F(int, i2d_SSL_SESSION, (const SSL_SESSION *in, unsigned char **pp), (in, pp)) \
    F(SSL_SESSION *, d2i_SSL_SESSION, (SSL_SESSION **a, const unsigned char **pp, long length), (a, pp, length)) \
    F(const EVP_MD *, EVP_sha256, (void), ()) \
    F(int, EVP_Digest, (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl), \
      (data, count, md, size, type, impl))

/* zkctl_resolve_NAME: the function, found once (a race only looks it up twice). Each type is
   checked against the header's declaration at compile time. */
#define ZKCTL_OPENSSL_RESOLVER(result, name, parameters) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), result (*) parameters), \
                   #name ": the wrapper's type differs from the header's"); \
    static inline result (*zkctl_resolve_##name(void)) parameters { \
        static result (*function) parameters; \
        result (*found) parameters = __atomic_load_n(&function, __ATOMIC_ACQUIRE); \
        if (found == NULL) { \
            found = (result (*) parameters)zkctl_openssl_symbol(#name); \
            __atomic_store_n(&function, found, __ATOMIC_RELEASE); \
        } \
        return found; \
    }
#define ZKCTL_OPENSSL_WRAP(result, name, parameters, arguments) \
    ZKCTL_OPENSSL_RESOLVER(result, name, parameters) \
    static inline result zkctl_##name parameters { return zkctl_resolve_##name() arguments; }
#define ZKCTL_OPENSSL_WRAP_VOID(name, parameters, arguments) \
    ZKCTL_OPENSSL_RESOLVER(void, name, parameters) \
    static inline void zkctl_##name parameters { zkctl_resolve_##name() arguments; }

ZKCTL_OPENSSL_FUNCTIONS(ZKCTL_OPENSSL_WRAP, ZKCTL_OPENSSL_WRAP_VOID)

/* NULL when libssl is there with every function above, else what is missing: the library's
   file name or the first function not found. */
static inline const char *zkctl_openssl_missing(void) {
#define ZKCTL_OPENSSL_CHECK(result, name, parameters, arguments) \
    if (zkctl_resolve_##name() == NULL) return #name;
#define ZKCTL_OPENSSL_CHECK_VOID(name, parameters, arguments) ZKCTL_OPENSSL_CHECK(void, name, parameters, arguments)
    if (zkctl_openssl_library() == NULL) return ZKCTL_LIBSSL;
    ZKCTL_OPENSSL_FUNCTIONS(ZKCTL_OPENSSL_CHECK, ZKCTL_OPENSSL_CHECK_VOID)
#undef ZKCTL_OPENSSL_CHECK
#undef ZKCTL_OPENSSL_CHECK_VOID
    return NULL;
}

/* The macros, as functions over the wrappers. */
static inline long zkctl_ssl_set_sni(SSL *ssl, const char *name) {
    return zkctl_SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)name);
}
static inline long zkctl_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return zkctl_SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
}
/* SSL_write may take part of a buffer, and be retried with the rest from a buffer that moved. */
static inline long zkctl_ssl_set_relay_mode(SSL *ssl) {
    return zkctl_SSL_ctrl(ssl, SSL_CTRL_MODE, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
}
static inline int zkctl_err_reason(unsigned long e) { return ERR_GET_REASON(e); }
static inline int zkctl_err_is_ssl_lib(unsigned long e) { return ERR_GET_LIB(e) == ERR_LIB_SSL; }
#endif
