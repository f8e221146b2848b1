#!/bin/sh
# build.sh - the project's whole build, in POSIX sh.
#
#   ./build.sh                  build every example and test (gcc -O2)
#   ./build.sh test [PATTERN]   build and run the suite: gcc -O2, clang ASan+UBSan,
#                               TSan (threaded tests), the poll backend (loop
#                               tests), every header as C11 and C++17, a short
#                               fuzz run; ends with "N passed, N failed"
#   ./build.sh demo [ARGS]      build and start the demo program
#   ./build.sh bench NAME       run the benchmark script bench/NAME
#   ./build.sh fuzz NAME SECS   run the libFuzzer target tests/fuzz/fuzz_NAME.c
#   ./build.sh clean            remove build/
#
# Environment: CC (default gcc), CLANG (default clang), JOBS (parallel
# compiles, default: number of cores), CONFIGS (subset of "o2 asan tsan poll
# compile fuzz" for `test`), FUZZ_SECONDS (the suite's fuzz run, default 10).
#
# A test file is tests/test_NAME.c. A line "/* build: tsan poll */" in it adds
# the TSan run (threaded code) and the poll-backend run (event-loop code).
set -eu
cd "$(dirname "$0")"

CC=${CC:-gcc}
CLANG=${CLANG:-clang}
JOBS=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
STD="-std=c11"
WARN="-Wall -Wextra -Wpedantic -Werror"
LIBS="-pthread -lm"
OUT=build

ASAN_FLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
TSAN_FLAGS="-O1 -g -fsanitize=thread"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

# ---- small helpers ---------------------------------------------------------

# Runs "$@" in the background, at most $JOBS at a time; `jobs_wait` joins.
RUNNING=0
job() {
    "$@" &
    RUNNING=$((RUNNING + 1))
    if [ "$RUNNING" -ge "$JOBS" ]; then jobs_wait; fi
}
jobs_wait() { wait; RUNNING=0; }

# Words after "build:" in a test file's marker line.
markers() { sed -n 's@^/\* build:\(.*\)\*/.*@\1@p' "$1" | head -n 1; }
has_marker() { markers "$1" | tr ' ' '\n' | grep -qx "$2"; }

name_of() { b=${1##*/}; echo "${b%.c}"; }

# ---- build -----------------------------------------------------------------

# compile CONFIG SOURCE: builds $OUT/CONFIG/NAME, output in NAME.build.log.
compile() {
    cfg=$1 src=$2 name=$(name_of "$2")
    dir=$OUT/$cfg
    case $cfg in
        o2)      cmd="$CC $STD $WARN -O2 -g" ;;
        asan)    cmd="$CLANG $STD $WARN $ASAN_FLAGS" ;;
        tsan)    cmd="$CLANG $STD $WARN $TSAN_FLAGS" ;;
        poll)    cmd="$CLANG $STD $WARN $ASAN_FLAGS -DEVLOOP_BACKEND_POLL" ;;
        example) cmd="$CC $STD $WARN -O2 -g" ;;
        *) echo "unknown config $cfg" >&2; return 1 ;;
    esac
    if $cmd -I. "$src" -o "$dir/$name" $LIBS >"$dir/$name.build.log" 2>&1; then
        rm -f "$dir/$name.build.log"
    else
        rm -f "$dir/$name"
    fi
}

build_examples() {
    mkdir -p "$OUT/example"
    for src in examples/*.c; do
        [ -e "$src" ] || continue
        job compile example "$src"
    done
    jobs_wait
    fail=0
    for f in "$OUT"/example/*.build.log; do
        [ -e "$f" ] || continue
        cat "$f" >&2
        fail=1
    done
    return $fail
}

# tests_for CONFIG PATTERN: the test sources that run in CONFIG.
tests_for() {
    for src in tests/test_*.c; do
        [ -e "$src" ] || continue
        case $(name_of "$src") in *"$2"*) ;; *) continue ;; esac
        case $1 in
            tsan) has_marker "$src" tsan || continue ;;
            poll) has_marker "$src" poll || continue ;;
        esac
        echo "$src"
    done
}

# ---- test ------------------------------------------------------------------

PASSED=0
FAILED=0

report_fail() {
    echo "FAIL $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed -e 's/^/     | /' "$2" | tail -n 60; fi
}

# run_binary CONFIG NAME: runs one test program and adds up its counts.
run_binary() {
    cfg=$1 name=$2 bin=$OUT/$1/$2 log=$OUT/$1/$2.log
    if [ -f "$bin.build.log" ]; then
        FAILED=$((FAILED + 1))
        report_fail "$cfg/$name (does not build)" "$bin.build.log"
        return
    fi
    set +e
    (cd "$OUT/$cfg" && timeout 300 "./$name") >"$log" 2>&1
    rc=$?
    set -e
    counts=$(sed -n 's/^.*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\1 \2/p' "$log" | tail -n 1)
    p=${counts%% *} f=${counts##* }
    [ -n "$counts" ] || { p=0 f=0; }
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or timed out
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    skipped=$(grep -c '^  skip ' "$log" || true)
    if [ "$f" -eq 0 ]; then
        printf 'ok   %-28s %4d passed' "$cfg/$name" "$p"
        [ "$skipped" -eq 0 ] && echo "" || echo ", $skipped skipped"
    else
        report_fail "$cfg/$name (exit $rc)" "$log"
    fi
}

run_config() {
    cfg=$1 pattern=$2
    srcs=$(tests_for "$cfg" "$pattern")
    [ -n "$srcs" ] || return 0
    mkdir -p "$OUT/$cfg"
    for src in $srcs; do job compile "$cfg" "$src"; done
    jobs_wait
    # one at a time: their timings (a shutdown while requests are in
    # flight, timeouts) are for a machine the other programs leave alone
    for src in $srcs; do run_binary "$cfg" "$(name_of "$src")"; done
}

# Every header with its implementation, as C11 (gcc, clang) and C++17
# (g++, clang++), warnings as errors: tests/compile/NAME.c. tests/compile/
# shim/ declares interfaces Linux lacks (kqueue), for compiling only.
run_compile_checks() {
    mkdir -p "$OUT/compile"
    srcs=""
    for src in tests/compile/*.c; do
        [ -e "$src" ] || continue
        case $(name_of "$src") in *"$1"*) srcs="$srcs $src" ;; esac
    done
    for src in $srcs; do
        for lang in gcc clang g++ clang++; do job compile_check "$src" "$lang"; done
    done
    jobs_wait
    for src in $srcs; do
        bad=0
        for lang in gcc clang g++ clang++; do
            log=$OUT/compile/$(name_of "$src").$lang.log
            if [ -f "$log.ok" ]; then
                PASSED=$((PASSED + 1))
            else
                FAILED=$((FAILED + 1)); bad=1
                report_fail "compile/$(name_of "$src") as $lang" "$log"
            fi
        done
        [ "$bad" -eq 1 ] || echo "ok   compile/$(name_of "$src") as C11 and C++17 (gcc, clang)"
    done
}

# compile_check SOURCE COMPILER: one compile of a tests/compile file; a
# .ok file beside its log says it passed.
compile_check() {
    case $2 in
        gcc|clang) flags="-x c $STD" ;;
        *) flags="-x c++ -std=c++17" ;;
    esac
    log=$OUT/compile/$(name_of "$1").$2.log
    rm -f "$log.ok"
    if $2 $flags $WARN -O2 -I. -Itests/compile/shim -c "$1" -o /dev/null >"$log" 2>&1; then
        : >"$log.ok"
    fi
}

fuzz_available() {
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
        >"$OUT/fuzzcheck.c"
    $CLANG -fsanitize=fuzzer "$OUT/fuzzcheck.c" -o "$OUT/fuzzcheck" >/dev/null 2>&1
}

# fuzz_build NAME: builds $OUT/fuzz/fuzz_NAME from tests/fuzz/fuzz_NAME.c.
fuzz_build() {
    mkdir -p "$OUT/fuzz"
    $CLANG $STD $WARN -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -I. "tests/fuzz/fuzz_$1.c" -o "$OUT/fuzz/fuzz_$1" $LIBS
}

# fuzz_run NAME SECONDS: runs the target on its seed corpus plus a work corpus,
# with tests/fuzz/fuzz_NAME.dict as its dictionary when there is one.
fuzz_run() {
    corpus=$OUT/fuzz/corpus_$1
    mkdir -p "$corpus"
    seeds=""
    [ -d "tests/fuzz/corpus_$1" ] && seeds="tests/fuzz/corpus_$1"
    dict=""
    [ -f "tests/fuzz/fuzz_$1.dict" ] && dict="-dict=tests/fuzz/fuzz_$1.dict"
    "$OUT/fuzz/fuzz_$1" -max_total_time="$2" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 $dict "$corpus" $seeds
}

# fuzz_build_and_run NAME: the suite's run of one target; a .ok file beside
# its log says it passed.
fuzz_build_and_run() {
    log=$OUT/fuzz/fuzz_$1.log
    rm -f "$log.ok"
    if fuzz_build "$1" >"$log" 2>&1 && fuzz_run "$1" "${FUZZ_SECONDS:-10}" >>"$log" 2>&1; then
        : >"$log.ok"
    fi
}

run_fuzz() {
    mkdir -p "$OUT"
    have=0
    for src in tests/fuzz/fuzz_*.c; do [ -e "$src" ] && have=1; done
    [ "$have" -eq 1 ] || return 0
    if ! fuzz_available; then
        echo "skip fuzz: clang's libFuzzer runtime is not installed"
        return 0
    fi
    mkdir -p "$OUT/fuzz"
    names=""
    for src in tests/fuzz/fuzz_*.c; do
        n=$(name_of "$src"); n=${n#fuzz_}
        case $n in *"$1"*) names="$names $n" ;; esac
    done
    # each target is one process on one core: $JOBS build and run at once
    for n in $names; do job fuzz_build_and_run "$n"; done
    jobs_wait
    for n in $names; do
        log=$OUT/fuzz/fuzz_$n.log
        if [ -f "$log.ok" ]; then
            PASSED=$((PASSED + 1))
            echo "ok   fuzz/$n (${FUZZ_SECONDS:-10} s, $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") inputs)"
        else
            FAILED=$((FAILED + 1))
            report_fail "fuzz/$n" "$log"
        fi
    done
}

cmd_test() {
    pattern=${1:-}
    configs=${CONFIGS:-"o2 asan tsan poll compile fuzz"}
    command -v "$CLANG" >/dev/null || { echo "build.sh: $CLANG not found (apt-get install clang)" >&2; exit 2; }
    start=$(date +%s)
    for cfg in $configs; do
        case $cfg in
            compile) run_compile_checks "$pattern" ;;
            fuzz) run_fuzz "$pattern" ;;
            *) run_config "$cfg" "$pattern" ;;
        esac
    done
    if [ -z "$pattern" ]; then
        if build_examples; then
            PASSED=$((PASSED + 1)); echo "ok   examples build"
        else
            FAILED=$((FAILED + 1)); echo "FAIL examples build"
        fi
    fi
    echo "($(($(date +%s) - start)) s)"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# ---- other commands ----------------------------------------------------------

cmd_all() {
    build_examples
    mkdir -p "$OUT/o2"
    for src in $(tests_for o2 ""); do job compile o2 "$src"; done
    jobs_wait
    for f in "$OUT"/o2/*.build.log; do
        [ -e "$f" ] || continue
        cat "$f" >&2
        exit 1
    done
    echo "built: $OUT/example/ (examples), $OUT/o2/ (tests)"
}

cmd_demo() {
    build_examples
    echo "demo: an HTTP server on port 8080 (try: curl http://127.0.0.1:8080/plaintext); Ctrl-C stops it"
    exec "$OUT/example/hello" "$@"
}

cmd_bench() {
    [ $# -ge 1 ] || { echo "usage: ./build.sh bench NAME (one of: $(cd bench && ls | grep -v '\.' | tr '\n' ' '))" >&2; exit 2; }
    name=$1; shift
    [ -f "bench/$name" ] || { echo "build.sh: no benchmark bench/$name" >&2; exit 2; }
    build_examples
    exec sh "bench/$name" "$@"
}

cmd_fuzz() {
    [ $# -ge 1 ] || { echo "usage: ./build.sh fuzz NAME [SECONDS]" >&2; exit 2; }
    [ -f "tests/fuzz/fuzz_$1.c" ] || { echo "build.sh: no target tests/fuzz/fuzz_$1.c" >&2; exit 2; }
    fuzz_available || { echo "build.sh: clang's libFuzzer runtime is missing (apt-get install libclang-rt-dev)" >&2; exit 2; }
    fuzz_build "$1"
    fuzz_run "$1" "${2:-60}"
}

case ${1:-all} in
    all) cmd_all ;;
    test) shift; cmd_test "$@" ;;
    demo) shift; cmd_demo "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    fuzz) shift; cmd_fuzz "$@" ;;
    clean) rm -rf "$OUT" ;;
    *) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac
