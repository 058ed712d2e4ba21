/*
 * CXenStore: the guest reporter's C boundary, libxenstore alone (Debian's libxen-dev). The reporter
 * runs inside a guest, where it needs only xs_open/xs_write/xs_close: importing CXen instead would
 * bring libxenlight, libxlutil and libxenctrl (dom0's toolstack) into its NEEDED list. Only
 * Sources/ArbiterReporter imports this module; the arbiter's own xenstore access goes through CXen.
 * Names differ from CXen's so that a file importing both would see no ambiguity.
 */
#ifndef CXENSTORE_SHIM_H
#define CXENSTORE_SHIM_H

#include <errno.h>
#include <xenstore.h>

/// XBT_NULL is `#define XBT_NULL 0` and imports as Int32; give Swift a typed transaction constant.
static const xs_transaction_t CXENSTORE_XBT_NULL = XBT_NULL;

/// errno is a thread-local macro in glibc; read it from C right after a failed call.
static inline int cxenstore_errno(void) { return errno; }

#endif /* CXENSTORE_SHIM_H */
