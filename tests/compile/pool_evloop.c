/* Builds pool.h with its loop glue (evloop.h first), both implementations:
 * C11 and C++17, warnings as errors. */
#define EVLOOP_IMPLEMENTATION
#define POOL_IMPLEMENTATION
#include "evloop.h"
#include "pool.h"
