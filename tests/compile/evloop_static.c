/* evloop.h with EVLOOP_STATIC and the poll backend: every function static,
 * none of them used, no warning. */
#define EVLOOP_STATIC
#define EVLOOP_BACKEND_POLL
#define EVLOOP_IMPLEMENTATION
#include "evloop.h"
