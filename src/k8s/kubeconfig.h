/*
 * kubeconfig.h - credentials for the Kubernetes API: read from a kubeconfig
 * file or from the in-cluster service account, and applied to a libcurl
 * handle.  Internal to src/k8s (the watch source, watch.c); see
 * docs/kubernetes-api.md.
 *
 * A kubeconfig is followed the way kubectl follows it: current-context ->
 * the context of that name -> its cluster (server, certificate-authority
 * or certificate-authority-data, insecure-skip-tls-verify) and its user
 * (token, tokenFile, client-certificate[-data], client-key[-data]).
 * Relative paths are relative to the kubeconfig's directory.  `exec` and
 * `auth-provider` users (cloud plugins) and basic auth are refused with a
 * message saying so.  Files named by the kubeconfig are checked readable
 * once at load and then read by libcurl at each new connection, so
 * rotated certificates are picked up; *-data values are decoded into
 * memory and handed to libcurl as blobs, never written to disk.
 *
 * In-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT give the
 * server; the token and ca.crt come from
 * /var/run/secrets/kubernetes.io/serviceaccount, or from the directory in
 * FLOWVIS_SERVICEACCOUNT_DIR (for tests).  Token files are re-read for
 * every request, because bound service-account tokens rotate.
 *
 * Ownership: struct fv_k8s_creds owns every string in it; fv_k8s_creds_fini
 * zeroes the secrets before freeing them.  Once loaded it is read-only and
 * may be used from any thread.
 */
#ifndef FV_K8S_KUBECONFIG_H
#define FV_K8S_KUBECONFIG_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

/* The default in-cluster credentials directory. */
#define FV_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* The environment variable that replaces it. */
#define FV_K8S_SA_DIR_ENV "FLOWVIS_SERVICEACCOUNT_DIR"

struct fv_k8s_creds {
    char *server;        /* "https://host:port" (IPv6 in brackets), no trailing '/' */
    char *ca_file;       /* CA bundle to verify the server with, or NULL */
    char *ca_pem;        /* decoded certificate-authority-data, or NULL */
    size_t ca_pem_len;   /* its bytes */
    bool insecure;       /* insecure-skip-tls-verify: no server verification */
    char *token;         /* a static bearer token, or NULL */
    char *token_file;    /* a file holding the bearer token, re-read per request, or NULL */
    char *cert_file;     /* client certificate (PEM), or NULL */
    char *cert_pem;      /* decoded client-certificate-data, or NULL */
    size_t cert_pem_len; /* its bytes */
    char *key_file;      /* client key (PEM), or NULL */
    char *key_pem;       /* decoded client-key-data, or NULL */
    size_t key_pem_len;  /* its bytes */
    char source[320];    /* "kubeconfig /x/config" or "service account /dir": for messages */
};

/*
 * Loads credentials from the kubeconfig at path, or from the in-cluster
 * service account when path is NULL or "".  On failure returns -EINVAL
 * (or -ENOMEM) with a message in err naming the file and the problem, and
 * leaves *out empty (fv_k8s_creds_fini is still safe).
 */
int fv_k8s_creds_load(const char *path, struct fv_k8s_creds *out, char *err, size_t errlen);
/* Frees (and zeroes the secrets of) c; safe on a zeroed or failed struct. */
void fv_k8s_creds_fini(struct fv_k8s_creds *c);

/*
 * Sets the TLS options of c on easy and appends "Authorization: Bearer ..."
 * to *headers when there is a token (reading token_file now).  0, or
 * -errno / -ENOMEM with err set (e.g. the token file is unreadable).
 */
int fv_k8s_creds_apply(const struct fv_k8s_creds *c, CURL *easy, struct curl_slist **headers,
                       char *err, size_t errlen);

/* Decodes base64 (standard alphabet, padding optional, whitespace skipped)
 * into a new NUL-terminated buffer.  0, -EINVAL on a bad character, -ENOMEM. */
int fv_k8s_base64_decode(const char *in, char **out, size_t *outlen);

#endif
