/* The three inputs of bench/http_parser, shared by every parser's file. */
#ifndef HTTP_PARSER_INPUTS_H
#define HTTP_PARSER_INPUTS_H

/* A browser's request for a script: 16 fields, 718 bytes. */
static const char bench_browser[] =
    "GET /assets/app/main.3f9a2c71.js?v=20240611 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Accept: */*\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Dest: script\r\n"
    "Referer: https://www.example.com/products/widgets?page=2&sort=price\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    "Cookie: session=9f8e7d6c5b4a39281706f5e4d3c2b1a0; theme=dark; "
    "_ga=GA1.2.1234567890.1700000000\r\n"
    "If-None-Match: \"5f3e-1a2b3c4d\"\r\n"
    "\r\n";

/* What wrk sends. */
static const char bench_minimal[] = "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";

/* A chunked response: 4 chunks (1 KiB of data) and an empty trailer. */
#define BENCH_C64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
static const char bench_chunked[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Date: Tue, 11 Jun 2024 10:00:00 GMT\r\n"
    "\r\n"
    "100\r\n" BENCH_C64 BENCH_C64 BENCH_C64 BENCH_C64 "\r\n"
    "100\r\n" BENCH_C64 BENCH_C64 BENCH_C64 BENCH_C64 "\r\n"
    "100\r\n" BENCH_C64 BENCH_C64 BENCH_C64 BENCH_C64 "\r\n"
    "100\r\n" BENCH_C64 BENCH_C64 BENCH_C64 BENCH_C64 "\r\n"
    "0\r\n\r\n";

#endif
