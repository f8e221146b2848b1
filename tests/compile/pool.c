/* Builds pool.h alone with its implementation: C11 and C++17, warnings as
 * errors. */
#define POOL_IMPLEMENTATION
#include "pool.h"
#include "pool.h" /* a second include is harmless */
