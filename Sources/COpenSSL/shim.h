#ifndef ZKCTL_COPENSSL_SHIM_H
#define ZKCTL_COPENSSL_SHIM_H
/* Debian's libssl-dev (OpenSSL 3): the TLS relay's client side. Swift does not import function-like
   macros, so the few the relay needs are wrapped here as functions. */
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static inline long zkctl_ssl_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline long zkctl_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
/* SSL_write may take part of a buffer, and be retried with the rest from a buffer that moved. */
static inline long zkctl_ssl_set_relay_mode(SSL *ssl) {
    return SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}
static inline int zkctl_err_reason(unsigned long e) { return ERR_GET_REASON(e); }
static inline int zkctl_err_is_ssl_lib(unsigned long e) { return ERR_GET_LIB(e) == ERR_LIB_SSL; }
#endif
