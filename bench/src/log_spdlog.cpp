// spdlog side of bench/log: the same one million lines as log_bench.c,
// through spdlog's basic file sink, synchronous or asynchronous (the default
// thread pool: one thread, 8192-entry queue, block when full). The pattern
// makes JSON-looking lines of about the same size as ours.
//
//   log_spdlog sync|async tput|lat FILE [LINES]
//   prints: lines_per_sec p50_ns p99_ns p999_ns
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static long long now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s sync|async tput|lat FILE [LINES]\n", argv[0]);
        return 2;
    }
    bool async = std::strcmp(argv[1], "async") == 0, lat = std::strcmp(argv[2], "lat") == 0;
    long n = argc > 4 ? std::atol(argv[4]) : 1000000;
    std::vector<unsigned> samples(lat ? (size_t)n : 0);
    std::shared_ptr<spdlog::logger> lg;
    if (async)
        lg = spdlog::basic_logger_mt<spdlog::async_factory>("bench", argv[3], true);
    else
        lg = spdlog::basic_logger_mt("bench", argv[3], true);
    lg->set_pattern("{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\",\"level\":\"%l\",\"msg\":%v}",
                    spdlog::pattern_time_type::utc);
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        long long a = lat ? now_ns() : 0;
        lg->info("\"request handled\",\"path\":\"{}\",\"status\":{},\"ms\":{}", "/api/users",
                 200 + i % 5, (double)(i % 1000) * 0.25);
        if (lat) samples[(size_t)i] = (unsigned)(now_ns() - a);
    }
    lg->flush();
    lg.reset();
    spdlog::shutdown(); // drains the async queue, joins the thread, closes the file
    long long t1 = now_ns();
    double rate = (double)n / ((double)(t1 - t0) / 1e9);
    if (lat) {
        std::sort(samples.begin(), samples.end());
        std::printf("%.0f %u %u %u\n", rate, samples[(size_t)n / 2], samples[(size_t)n * 99 / 100],
                    samples[(size_t)n * 999 / 1000]);
    } else {
        std::printf("%.0f - - -\n", rate);
    }
    return 0;
}
