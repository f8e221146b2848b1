/* http.h with its server (evloop.h first), both implementations here: C11
 * and C++17, warnings as errors. A second include of http.h after
 * evloop.h is what adds the server when http.h came first elsewhere. */
#define EVLOOP_IMPLEMENTATION
#define HTTP_IMPLEMENTATION
#include "http.h"
#include "evloop.h"
#include "http.h"
