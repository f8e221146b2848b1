/* Builds evloop.h with its implementation: C11 and C++17, warnings as errors. */
#define EVLOOP_IMPLEMENTATION
#include "evloop.h"
#include "evloop.h" /* a second include is harmless */
