/* evloop.h's kqueue backend (macOS, the BSDs), compiled on Linux against
 * the declarations in tests/compile/shim/sys/event.h: it cannot run here,
 * but it must build, as C11 and C++17, warnings as errors. */
#define EVLOOP_BACKEND_KQUEUE
#define EVLOOP_IMPLEMENTATION
#include "evloop.h"
