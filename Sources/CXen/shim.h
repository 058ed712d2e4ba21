/*
 * CXen: the thin C boundary between the arbiter and Debian's libxen-dev (Xen 4.17).
 * Only Sources/Arbiter/Xen/ imports this module. Everything here is either an include or a
 * small static inline wrapper with a reason; no logic lives in C.
 */
#ifndef CXEN_SHIM_H
#define CXEN_SHIM_H

/* Pin the libxl API. Without a definition libxl.h means "latest", which can change under us with
 * a Xen upgrade. Older values (< 0x041300) rename functions with #define macros that Swift never
 * sees, so Swift would silently bind the plain (newest) symbol: only 0x041300+ is safe here. */
#define LIBXL_API_VERSION 0x041400

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <xenctrl.h>
#include <xenstore.h>
#include <xentoollog.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>

/// XBT_NULL is `#define XBT_NULL 0` and imports as Int32; give Swift a typed transaction constant.
static const xs_transaction_t CXEN_XBT_NULL = XBT_NULL;

/// DOMID_SELF expands through the function-like macro xen_mk_uint(), which Swift cannot import.
static const domid_t CXEN_DOMID_SELF = DOMID_SELF;

/// A xentoollog logger that hands each message to a C function pointer (Swift passes one that logs
/// through swift-log). xentoollog's vmessage is variadic (va_list), which Swift cannot implement, so the
/// formatting happens here.
typedef void (*cxen_log_fn)(int level, const char *context, const char *message);
typedef struct { xentoollog_logger base; cxen_log_fn fn; int min_level; } cxen_callback_logger;

static inline void cxen_cb_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval,
                                    const char *context, const char *format, va_list al) {
    cxen_callback_logger *c = (cxen_callback_logger *)l;
    if ((int)level < c->min_level) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, format, al);
    if (errnoval >= 0) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, ": %s", strerror(errnoval));
    }
    c->fn((int)level, context ? context : "", buf);
}
static inline void cxen_cb_progress(xentoollog_logger *l, const char *context, const char *doing_what,
                                    int percent, unsigned long done, unsigned long total) {
    (void)l; (void)context; (void)doing_what; (void)percent; (void)done; (void)total;
}
static inline void cxen_cb_destroy(xentoollog_logger *l) { free(l); }

/// Allocates a callback logger; messages below `min_level` (an xentoollog_level) are dropped.
static inline xentoollog_logger *cxen_callback_logger_new(cxen_log_fn fn, int min_level) {
    cxen_callback_logger *c = (cxen_callback_logger *)calloc(1, sizeof *c);
    if (!c) return 0;
    c->base.vmessage = cxen_cb_vmessage;
    c->base.progress = cxen_cb_progress;
    c->base.destroy = cxen_cb_destroy;
    c->fn = fn;
    c->min_level = min_level;
    return &c->base;
}

/// libxl_ctx_alloc takes LIBXL_VERSION, a macro; keep the version argument in C so it always
/// matches the header we compiled against.
static inline int cxen_libxl_ctx_alloc(libxl_ctx **ctx, xentoollog_logger *logger) {
    return libxl_ctx_alloc(ctx, LIBXL_VERSION, 0, logger);
}

/// errno is a thread-local macro in glibc; read it from C right after a failed call.
static inline int cxen_errno(void) { return errno; }

#endif /* CXEN_SHIM_H */
