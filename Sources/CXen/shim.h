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
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <xenctrl.h>
#include <xenstore.h>
#include <xentoollog.h>
#include <libxl.h>
#include <libxl_utils.h>

/// XBT_NULL is `#define XBT_NULL 0` and imports as Int32; give Swift a typed transaction constant.
static const xs_transaction_t CXEN_XBT_NULL = XBT_NULL;

/// DOMID_SELF expands through the function-like macro xen_mk_uint(), which Swift cannot import.
static const domid_t CXEN_DOMID_SELF = DOMID_SELF;

/// The stdio logger's concrete type is incomplete (OpaquePointer in Swift) and `stderr` is a global
/// var that Swift 6 strict concurrency rejects; return the base logger pointer libxl wants.
static inline xentoollog_logger *cxen_stderr_logger(xentoollog_level level) {
    return (xentoollog_logger *)xtl_createlogger_stdiostream(stderr, level, 0);
}

/// Destroy a logger made by cxen_stderr_logger (the destroy entry point takes the base type).
static inline void cxen_logger_destroy(xentoollog_logger *logger) {
    if (logger) xtl_logger_destroy(logger);
}

/// libxl_ctx_alloc takes LIBXL_VERSION, a macro; keep the version argument in C so it always
/// matches the header we compiled against.
static inline int cxen_libxl_ctx_alloc(libxl_ctx **ctx, xentoollog_logger *logger) {
    return libxl_ctx_alloc(ctx, LIBXL_VERSION, 0, logger);
}

/// errno is a thread-local macro in glibc; read it from C right after a failed call.
static inline int cxen_errno(void) { return errno; }

#endif /* CXEN_SHIM_H */
