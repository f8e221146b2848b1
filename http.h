/* http.h - HTTP/1.1 for C: an incremental zero-copy parser and a serializer.
 *
 * A single-header library: copy this file, define HTTP_IMPLEMENTATION in
 * exactly one .c file before including it, include it plainly elsewhere.
 * No dependencies beyond libc and POSIX.
 *
 * TABLE OF CONTENTS
 *
 *   1. Quick start
 *   2. Compile-time options
 *   3. The parser
 *      3.1 Heads: http_parse_head
 *      3.2 Bodies: http_parse_body
 *      3.3 Lifetimes of views
 *      3.4 Keep-alive, Upgrade, CONNECT, 100-continue
 *      3.5 Options and limits
 *      3.6 Strictness: what is refused and why
 *      3.7 Errors
 *      3.8 SIMD fast paths
 *   4. Helpers: targets, queries, percent-decoding, header lookup, names
 *   5. The serializer: heads, chunked framing, Date, Content-Length
 *   6. Threads and memory
 *   7. The server (with evloop.h)
 *      7.1 Quick start
 *      7.2 Options
 *      7.3 Requests and responses
 *      7.4 Bodies: buffered or streamed
 *      7.5 Timeouts and limits
 *      7.6 Listening, shutdown, several cores, upgrades
 *      7.7 Errors and threading
 *   (The client and WebSocket will follow as sections 8 and on.)
 *
 * 1. QUICK START =============================================================
 *
 *     #define HTTP_IMPLEMENTATION
 *     #include "http.h"
 *
 *     http_msg_parser p;
 *     http_message m;
 *     http_header hdrs[64];
 *     http_parse_init(&p, HTTP_KIND_REQUEST, NULL);      // NULL: defaults
 *     int n = http_parse_head(&p, buf, len, &m, hdrs, 64);
 *     if (n > 0)        ... m.method, m.target, m.headers[i]; body at buf + n
 *     else if (n == 0)  ... need more bytes: append, call again with all of them
 *     else              ... error: http_errname(n), answer http_error_status(n)
 *
 *   Build: cc -O2 app.c -o app        (nothing else to link)
 *
 *   A complete program that parses a byte stream is examples/http_dump.c.
 *
 * 2. COMPILE-TIME OPTIONS ====================================================
 *
 *   HTTP_IMPLEMENTATION  define in one .c file, before the #include, to
 *                        compile the implementation there.
 *   HTTP_STATIC          define before every #include to make all functions
 *                        static (private to each file that includes it).
 *   HTTP_API             define to decorate every declaration (e.g. a
 *                        visibility attribute); default: extern.
 *   HTTP_ASSERT(x)       assertion used for programmer errors only (never on
 *                        network input); default: assert(x).
 *   HTTP_MALLOC(n), HTTP_REALLOC(p, n), HTTP_FREE(p)
 *                        the allocator of the parts that allocate (the server
 *                        and client sections); the parser and serializer never
 *                        allocate. Define all three or none, before the
 *                        #include that has HTTP_IMPLEMENTATION.
 *   HTTP_NO_SIMD         define where the implementation is compiled to leave
 *                        out the SSE4.2/AVX2 code (it is also left out
 *                        automatically on non-x86 targets).
 *
 * 3. THE PARSER ==============================================================
 *
 *   One http_msg_parser per connection (or per byte stream). It is small (40
 *   bytes), holds no pointer and allocates nothing; it may be copied or
 *   freed at any time. It reads either requests (HTTP_KIND_REQUEST) or
 *   responses (HTTP_KIND_RESPONSE), one message after another (keep-alive,
 *   pipelining): head, body, head, body...
 *
 *   The caller owns every buffer. The parser never copies bytes: the method,
 *   target, reason, header names and values and body pieces are http_str
 *   views (pointer + length, not NUL-terminated) into the caller's buffer.
 *
 *   3.1 Heads: http_parse_head ------------------------------------------------
 *
 *   int http_parse_head(http_msg_parser *p, const char *buf, size_t len,
 *                       http_message *m, http_header *headers, size_t max);
 *
 *   `buf` holds ALL the bytes of the stream not consumed yet (the head so far;
 *   the bytes of the previous call plus new ones, at the same or another
 *   address). Returns
 *     > 0  the head is complete: that many bytes of buf are the head (request
 *          or status line, header fields, blank line). *m is filled in and
 *          m->headers = headers, m->num_headers of them. Body bytes (if any)
 *          start at buf + that count.
 *       0  the head is not complete: keep the bytes, read more, call again
 *          with the old bytes followed by the new ones, and the same p, m and
 *          headers. The parser remembers where it stopped, so each call
 *          examines only the new bytes: a head fed one byte per call costs
 *          about the same in total as the whole head at once (no rescans).
 *          *m is not usable yet.
 *     < 0  an error (section 3.7); the parser stays in that error (every later
 *          call returns it) until http_parse_reset().
 *   `headers` is the caller's array of `max` entries; a head with more fields
 *   than max (or than the max_headers option) fails with
 *   HTTP_ERR_TOO_MANY_HEADERS. Leading empty lines before a request line are
 *   skipped (and counted in the return value).
 *
 *   What http_message holds once the head is complete:
 *     method, method_name   requests: the method (HTTP_METHOD_OTHER for an
 *                           extension method) and the token as sent
 *     target, target_form   requests: the request-target and its form
 *                           (origin "/a?b", absolute "http://h/a",
 *                           authority "h:443" for CONNECT, asterisk "*" for
 *                           OPTIONS)
 *     status, reason        responses: the 3-digit code and reason phrase
 *     version_major/_minor  1 and 0 or 1 (or a higher minor, treated as 1.1)
 *     headers, num_headers  the fields in order, names and values as sent
 *                           (values without surrounding whitespace)
 *     body                  HTTP_BODY_NONE, _LENGTH, _CHUNKED or _UNTIL_CLOSE
 *     content_length        the Content-Length value (has_content_length)
 *     chunked               the body uses chunked transfer coding
 *     keep_alive            the connection may carry another message after
 *                           this one (3.4)
 *     upgrade               the connection changes protocol after this
 *                           message (3.4)
 *     expect_continue       an HTTP/1.1 request with Expect: 100-continue
 *     expect_unknown        an Expect value other than 100-continue (a
 *                           server answers 417)
 *     connection_close, connection_keep_alive, connection_upgrade
 *                           the tokens found in Connection
 *     other_codings         a response whose Transfer-Encoding lists codings
 *                           other than chunked (e.g. gzip): the decoded body
 *                           is still in those codings
 *
 *   If m->body is HTTP_BODY_NONE the message is complete and the parser
 *   already waits for the next head. Otherwise read the body with
 *   http_parse_body until it returns 1.
 *
 *   A parser of responses must know what request a response answers:
 *   http_parse_response_to(p, HTTP_METHOD_HEAD) before the response to a
 *   HEAD request (no body, whatever Content-Length says), and
 *   http_parse_response_to(p, HTTP_METHOD_CONNECT) before the response to a
 *   CONNECT (a 2xx makes the connection a tunnel). The setting lasts until a
 *   final (non-1xx) response has been read. Responses 1xx, 204 and 304 never
 *   have a body. A response without Content-Length or chunked coding has a
 *   body that ends when the connection closes (HTTP_BODY_UNTIL_CLOSE).
 *
 *   3.2 Bodies: http_parse_body -----------------------------------------------
 *
 *   int http_parse_body(http_msg_parser *p, const char *buf, size_t len,
 *                       http_body *b);
 *
 *   Decodes body bytes from buf (the unconsumed bytes after the head, or
 *   after what earlier calls consumed). Each call sets b->consumed (bytes of
 *   buf used up: drop them) and b->data (the decoded body bytes it found, a
 *   view into buf, possibly empty; one piece per call). Returns 1 when the
 *   message is complete (b->data may still hold its last piece), 0 when it
 *   is not (call again with the rest of buf, or with more bytes when all
 *   were consumed), or an error (b->data then holds the bytes decoded before
 *   the error, which a caller may use or drop; b->consumed is not
 *   meaningful). Memory stays constant whatever the body size: a 100 MiB
 *   body goes through a 64 KiB buffer.
 *
 *     http_body b;
 *     memset(&b, 0, sizeof b);      // or b.trailers = array, b.trailers_cap = n
 *     for (;;) {
 *         int r = http_parse_body(&p, buf, len, &b);
 *         if (r < 0) fail(r);
 *         use(b.data.ptr, b.data.len);
 *         buf += b.consumed; len -= b.consumed;
 *         if (r == 1) break;                  // next message starts at buf
 *         if (len == 0 || b.consumed == 0)    // all used, or a partial trailer
 *             more(&buf, &len);               // section: keep what is left,
 *     }                                       // append what the peer sends
 *
 *   Chunked bodies are decoded (sizes, extensions and CRLFs checked and
 *   dropped). Their trailer section is kept in the caller's buffer until it is
 *   complete (like a head: it is not consumed before that), then its fields
 *   go to b->trailers (an array of b->trailers_cap entries the caller sets
 *   before the calls; NULL to check and drop them), b->num_trailers of them,
 *   views into the buf of the call that returned 1. Trailer fields are
 *   informational: never use them to change framing or routing.
 *
 *   HTTP_BODY_UNTIL_CLOSE bodies (responses only) end when the peer closes:
 *   every call returns all of buf as data and 0; at end of stream call
 *   http_parse_finish(p), which returns 1 (the message is complete).
 *   http_parse_finish also tells whether a close came at a clean point (0:
 *   between messages) or cut one (HTTP_ERR_INCOMPLETE).
 *
 *   3.3 Lifetimes of views ----------------------------------------------------
 *
 *   Every http_str in http_message (method_name, target, reason, header names
 *   and values) points into the `buf` passed to the http_parse_head call that
 *   returned > 0, and stays valid as long as those bytes stay where they are;
 *   moving or overwriting them (compacting a read buffer) invalidates the
 *   views. Copy what must outlive that. Between calls that return 0 the
 *   bytes may move (the parser keeps offsets, not pointers); pass the same m
 *   and headers array each time. A body piece b->data points into the buf
 *   of that http_parse_body call; trailers into the buf of the call that
 *   returned 1. The parser holds no pointer into any buffer after a call
 *   returns.
 *
 *   3.4 Keep-alive, Upgrade, CONNECT, 100-continue ----------------------------
 *
 *   keep_alive is true for HTTP/1.1 unless Connection lists "close", and for
 *   HTTP/1.0 only when Connection lists "keep-alive" (and not "close"); it is
 *   false for a response whose body runs until close. A server closes the
 *   connection after answering a message whose keep_alive is false.
 *
 *   upgrade is true for an HTTP/1.1 request with an Upgrade field and
 *   "upgrade" in Connection (a server must ignore Upgrade in an HTTP/1.0
 *   request, RFC 9110 section 7.8: there it is false), for every CONNECT
 *   request (of either version), for a 101 response, and for a 2xx response
 *   to CONNECT. The bytes after the message (after its head, or after its
 *   body when it has one) belong to the new protocol: stop calling the parser
 *   for that connection. A server that declines an upgrade request answers
 *   it normally and goes on parsing.
 *
 *   A CONNECT request never has a body: content in it has no meaning (RFC
 *   9110 section 9.3.6), and a front end that framed it by a Content-Length
 *   would read the tunnel differently, so a CONNECT request with
 *   Content-Length other than 0, or with Transfer-Encoding, is refused
 *   (HTTP_ERR_CONNECT_BODY) rather than read with the field ignored.
 *
 *   expect_continue: the client waits for "HTTP/1.1 100 Continue" before it
 *   sends the body; a server sends that (or a final status) before reading it.
 *
 *   3.5 Options and limits ----------------------------------------------------
 *
 *   http_options, passed to http_parse_init (NULL, or all fields zero, means
 *   every default). The parser copies what it needs; the struct may be freed.
 *
 *     field               default  meaning (error when exceeded)
 *     max_request_line    8192     bytes of a request line without its CRLF
 *                                  (HTTP_ERR_URI_TOO_LONG, 414)
 *     max_head            32768    bytes of a head: start line, fields and
 *                                  blank line; also of a trailer section
 *                                  (HTTP_ERR_HEAD_TOO_LARGE, 431); at most 1 GiB
 *     max_headers         100      fields in a head or trailer section
 *                                  (HTTP_ERR_TOO_MANY_HEADERS, 431); the
 *                                  caller's array bounds it too; at most 65535
 *     max_chunk_digits    16       hex digits of a chunk size, leading zeros
 *                                  included (HTTP_ERR_CHUNK_TOO_LARGE, 413); at
 *                                  most 16
 *     max_chunk_ext       1024     bytes of the extensions of one chunk, from
 *                                  the first byte after the size (a space
 *                                  before the ';' counts) to the line end
 *                                  (HTTP_ERR_CHUNK_EXT_TOO_LONG, 400); at most
 *                                  65535
 *     lenient_bare_lf     false    true: accept a lone LF as a line ending in
 *                                  heads, chunk framing and trailers (some old
 *                                  clients and scripts send it). Off by
 *                                  default: a lone LF is HTTP_ERR_BARE_LF.
 *     lenient_missing_host false   true: accept an HTTP/1.1 request without a
 *                                  Host field (for tools and tests that talk
 *                                  to one known server; a server facing the
 *                                  network keeps the default). Off by
 *                                  default: HTTP_ERR_MISSING_HOST, as RFC
 *                                  9112 section 3.2 requires. A Host that is
 *                                  present is checked either way.
 *
 *   Body sizes are not limited by the parser (a body streams); a server that
 *   buffers bodies applies its own limit using content_length.
 *
 *   3.6 Strictness: what is refused and why ------------------------------------
 *
 *   Request smuggling lives where two parsers disagree on where a message
 *   ends, so the parser accepts one reading of each message and refuses what
 *   RFC 9112 allows a recipient to refuse. Each refusal has its own code:
 *
 *     Content-Length together with Transfer-Encoding     HTTP_ERR_CL_AND_TE
 *     several Content-Length fields that differ           HTTP_ERR_CL_MULTIPLE
 *       (identical repeats are accepted)
 *     Content-Length not a plain decimal ("+1", "1,1",    HTTP_ERR_CL_INVALID
 *       "0x1", empty) or past 2^64-1
 *     request Transfer-Encoding whose last coding is not  HTTP_ERR_TE_NOT_CHUNKED
 *       chunked, or with chunked twice
 *     request Transfer-Encoding with codings besides      HTTP_ERR_TE_UNSUPPORTED
 *       chunked (501: the parser cannot decode gzip)
 *     Transfer-Encoding in an HTTP/1.0 message            HTTP_ERR_TE_HTTP10
 *     Content-Length other than 0, or Transfer-Encoding,  HTTP_ERR_CONNECT_BODY
 *       in a CONNECT request (3.4)
 *     a chunk size that is empty or not hex, or followed  HTTP_ERR_CHUNK_SIZE
 *       by whitespace and no ';'
 *     a chunk size with too many digits                   HTTP_ERR_CHUNK_TOO_LARGE
 *     a chunk size line or chunk data not followed by     HTTP_ERR_CHUNK_CRLF
 *       CR LF; also a CR there without its LF (reported
 *       at the byte after the CR, which an earlier call
 *       may have consumed: chunk framing is consumed as
 *       it is read, unlike a head)
 *     a chunk extension outside RFC 9112's grammar        HTTP_ERR_CHUNK_EXT
 *       (section 7.1.1): each is BWS ";" BWS name, then
 *       optionally BWS "=" BWS and a token or a quoted
 *       string (with \ escapes); names are tokens.
 *       BWS (spaces and tabs) is accepted where the
 *       grammar puts it and nowhere else: "5 ;a=1" and
 *       "5; a = \"b c\"" are valid, "5 ", "5;a ", "5;",
 *       "5;=x", "5;a b" and a byte >= 0x80 outside
 *       quotes are not. (Whitespace before ';' is safe
 *       to accept: it cannot change the size any reader
 *       sees, as the size has ended at it.)
 *     a field line starting with whitespace (obs-fold)    HTTP_ERR_OBS_FOLD
 *     whitespace in a field name or before its colon      HTTP_ERR_HEADER_NAME_SPACE
 *     a field line without a colon                        HTTP_ERR_HEADER_NO_COLON
 *     a non-token character in a field name               HTTP_ERR_HEADER_NAME
 *     NUL in a field value or reason phrase               HTTP_ERR_HEADER_VALUE_NUL
 *     another control character (not HTAB) in a value     HTTP_ERR_HEADER_VALUE_CTL
 *     CR not followed by LF where a line of a head or a   HTTP_ERR_BARE_CR
 *       trailer section may end: after a start line, a
 *       field or the blank line (in chunk framing it is
 *       CHUNK_CRLF, above; a CR where no line may end
 *       gets the error of what it cuts short: BAD_METHOD
 *       in a method, BAD_VERSION after a target,
 *       HEADER_NO_COLON in a field name, CHUNK_EXT in an
 *       unfinished chunk extension)
 *     LF not preceded by CR (unless lenient_bare_lf)      HTTP_ERR_BARE_LF
 *     a non-token character in a method, or an empty one  HTTP_ERR_BAD_METHOD
 *     a target with a byte that is not visible ASCII      HTTP_ERR_BAD_TARGET
 *       (space, control, DEL, non-ASCII: clients
 *       percent-encode those) or with a '#' fragment, or
 *       in the wrong form for its method. RFC 3986 also
 *       leaves out "<>[\]^`{|}, but browsers send several
 *       of them unencoded (`?a[]=1`) and none can move
 *       where a target ends, so they are accepted, as
 *       nginx and Node accept them. Escapes are checked
 *       where they are decoded (http_percent_decode).
 *       The forms: origin-form is '/' then such bytes;
 *       absolute-form is scheme ":" then, after "//", a
 *       host as for Host below (no userinfo:
 *       "http://u@h/" is refused, RFC 9110 section
 *       4.2.4), then such bytes; authority-form
 *       (CONNECT only) is a host and a port, both
 *       present; asterisk-form (OPTIONS only) is "*".
 *     an HTTP/1.1 request without Host (RFC 9112 3.2;     HTTP_ERR_MISSING_HOST
 *       unless lenient_missing_host)
 *     a Host value that is not uri-host [":" port]:       HTTP_ERR_BAD_HOST
 *       a reg-name (letters, digits, -._~!$&'()*+,;=
 *       and %XX; IPv4 addresses are reg-names too) or
 *       an IPv6 or IPvFuture literal in brackets, then
 *       optionally ':' and digits. The grammar allows an
 *       empty value (a target without authority) and an
 *       empty port, and so does the parser.
 *     two Host fields in a request                        HTTP_ERR_MULTIPLE_HOST
 *
 *   Requests and responses follow the same rules, except that a response
 *   Transfer-Encoding that does not end in chunked means "read until close"
 *   (RFC 9112 section 6.3) and other codings before chunked are allowed
 *   (other_codings). A request line is exactly method SP target SP version:
 *   one space each, no trailing whitespace. After any error a server answers
 *   with http_error_status() and closes the connection: the stream cannot be
 *   resynchronized safely.
 *
 *   3.7 Errors ----------------------------------------------------------------
 *
 *   Functions return negative values on failure: the HTTP_ERR_* codes below
 *   (all <= -3000) for malformed input, or a negated errno (-EINVAL for a
 *   call that breaks this manual's rules, -ENOBUFS for a caller's array that
 *   is too small). http_errname(e) gives the code's name without its prefix
 *   ("BARE_LF", or "EINVAL"), http_strerror(e) a sentence, and
 *   http_error_status(e) the status a server answers with before closing the
 *   connection: 400, 413 (chunk too large), 414 (request line too long), 431
 *   (head too large, too many fields), 501 (transfer coding not supported),
 *   505 (HTTP major version not 1), 500 for errno values.
 *   http_parse_error_offset(p) gives the offset in the failing call's buf of
 *   the byte where the error was found (for a missing Host, the blank line
 *   that ends the head; for the framing rules, the field's name or value).
 *   It is kept in full (a body call may find an error more than 4 GiB into
 *   its buf, after a big chunk). The first bad byte in stream order decides
 *   the error (a limit counts as the first byte past it), so the code and
 *   the offset in the stream do not depend on how the bytes were split
 *   across calls. After an error *m is not usable.
 *
 *     code                        status  meaning
 *     HTTP_ERR_BAD_METHOD          400    method is empty or not a token
 *     HTTP_ERR_BAD_TARGET          400    bad byte or form in request-target
 *     HTTP_ERR_URI_TOO_LONG        414    request line over max_request_line
 *     HTTP_ERR_BAD_VERSION         400    not "HTTP/" DIGIT "." DIGIT, or
 *                                         missing
 *     HTTP_ERR_VERSION_NOT_SUPPORTED 505  HTTP major version other than 1
 *     HTTP_ERR_BAD_STATUS          400    malformed status line (responses)
 *     HTTP_ERR_BARE_CR             400    CR not followed by LF
 *     HTTP_ERR_BARE_LF             400    LF without CR (strict mode)
 *     HTTP_ERR_OBS_FOLD            400    field line starts with whitespace
 *     HTTP_ERR_HEADER_NAME         400    empty field name or bad character
 *     HTTP_ERR_HEADER_NAME_SPACE   400    whitespace in or after a field name
 *     HTTP_ERR_HEADER_NO_COLON     400    field line without ':'
 *     HTTP_ERR_HEADER_VALUE_NUL    400    NUL byte in a field value
 *     HTTP_ERR_HEADER_VALUE_CTL    400    control character in a field value
 *     HTTP_ERR_HEAD_TOO_LARGE      431    head or trailers over max_head
 *     HTTP_ERR_TOO_MANY_HEADERS    431    more fields than allowed
 *     HTTP_ERR_CL_AND_TE           400    Content-Length and Transfer-Encoding
 *     HTTP_ERR_CL_MULTIPLE         400    differing Content-Length values
 *     HTTP_ERR_CL_INVALID          400    Content-Length not a plain decimal
 *     HTTP_ERR_TE_NOT_CHUNKED      400    request coding list not ending in
 *                                         one chunked
 *     HTTP_ERR_TE_UNSUPPORTED      501    request coding other than chunked
 *     HTTP_ERR_TE_HTTP10           400    Transfer-Encoding in HTTP/1.0
 *     HTTP_ERR_MULTIPLE_HOST       400    more than one Host field
 *     HTTP_ERR_CHUNK_SIZE          400    chunk size empty or not hex
 *     HTTP_ERR_CHUNK_TOO_LARGE     413    chunk size over max_chunk_digits
 *     HTTP_ERR_CHUNK_EXT           400    chunk extension outside the grammar
 *     HTTP_ERR_CHUNK_EXT_TOO_LONG  400    chunk extensions over max_chunk_ext
 *     HTTP_ERR_CHUNK_CRLF          400    missing CRLF in chunk framing
 *     HTTP_ERR_INCOMPLETE          400    stream ended inside a message
 *     HTTP_ERR_MISSING_HOST        400    HTTP/1.1 request without Host
 *     HTTP_ERR_BAD_HOST            400    Host not a valid host[:port]
 *     HTTP_ERR_CONNECT_BODY        400    CONNECT with Content-Length or
 *                                         Transfer-Encoding
 *
 *   3.8 SIMD fast paths -------------------------------------------------------
 *
 *   On x86 (gcc or clang) the parser classifies the bytes of a head 64 at a
 *   time with AVX2 or SSE4.2 into two bit masks (bytes that end a field name,
 *   bytes that end a field value) and finds each name's and value's end with
 *   a bit scan; the request-target is scanned 32 or 16 bytes at a time, and
 *   a Host value of up to 32 bytes is checked with one vector load. The
 *   instruction set is picked once, at run time, from what the CPU has: no
 *   -march flag is needed, and a binary built on one x86 machine runs on
 *   any. Elsewhere, with HTTP_NO_SIMD, or for heads shorter than 64 bytes, a
 *   portable byte-by-byte path runs. No path reads a byte past len. All
 *   paths give identical results (the tests and the fuzzer compare them).
 *   http_simd_level() tells which one runs; http_simd_limit(HTTP_SIMD_NONE)
 *   forces the portable path (tests, or to compare); the setting is
 *   process-wide.
 *
 *   Speed (bench/http_parser, one 2-core x86 machine, gcc -O2): a 718-byte
 *   browser request with 16 fields in about 210-215 ns (AVX2), 6x joyent's
 *   http-parser and about 3x llhttp; a 40-byte request in about 40 ns.
 *
 * 4. HELPERS =================================================================
 *
 *   http_parse_target     splits a target into scheme, authority, path,
 *                         query and fragment (views)
 *   http_query_init/next  iterates the key=value pairs of a query string
 *   http_percent_decode   decodes %XX (and optionally '+'), in place or to a
 *                         buffer; a bad escape is an error
 *   http_header_find      case-insensitive lookup in a field array
 *   http_header_get       the value of the first field of that name in a
 *                         message
 *   http_list_has         whether a comma-separated field value lists a
 *                         token (case-insensitive)
 *   http_str_ieq          case-insensitive comparison of a view and a string
 *   http_method_name      "GET" for HTTP_METHOD_GET
 *   http_method_from      HTTP_METHOD_GET for "GET"
 *   http_status_reason    "Not Found" for 404 ("" for an unknown code)
 *
 *   All of them work on views and never allocate; their results point into
 *   their inputs (the declarations below say so one by one). For example,
 *   the decoded values of a request's query string:
 *
 *     http_url u;
 *     http_query_iter it;
 *     http_str k, v;
 *     char val[256];
 *     if (http_parse_target(m.target.ptr, m.target.len, &u) == 0) {
 *         http_query_init(&it, u.query.ptr, u.query.len);
 *         while (http_query_next(&it, &k, &v)) {
 *             ptrdiff_t n = http_percent_decode(val, sizeof val, v.ptr, v.len,
 *                                               HTTP_DECODE_PLUS);
 *             if (n >= 0) ... k (still encoded) = val[0..n)
 *         }
 *     }
 *
 * 5. THE SERIALIZER ==========================================================
 *
 *   http_format_response  "HTTP/1.1 200 OK\r\n" + fields + "\r\n" into a
 *                         caller buffer; returns the length it needs (as
 *                         snprintf: compare with the capacity) or -EINVAL for
 *                         a status, name or value that would corrupt the
 *                         stream (CR, LF, NUL, bad token).
 *   http_format_request   the same for "GET /x HTTP/1.1\r\n" + fields.
 *   http_response_iov     the same head as an iovec array for writev: the
 *                         status line in a small caller buffer, names and
 *                         values referenced in place (no copy).
 *   http_chunk_header     "1a2b\r\n", the line before a chunk's data; the
 *                         data is followed by "\r\n" (HTTP_CRLF).
 *   http_chunk_iov        a whole chunk (size line, data, CRLF) as 3 iovecs.
 *   http_chunk_last       "0\r\n" + trailer fields + "\r\n", the end of a
 *                         chunked body.
 *   http_format_date      an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")
 *                         for a Unix time.
 *   http_date_now         the current one, formatted at most once per second
 *                         by the whole process (thread-safe).
 *   http_format_uint      a decimal number, for Content-Length.
 *
 *   The serializer writes HTTP/1.1 always (also to HTTP/1.0 peers, as RFC
 *   9110 asks). Framing fields (Content-Length, Transfer-Encoding, Date) are
 *   the caller's to include; nothing is added behind its back. It writes
 *   only into the caller's buffers and keeps no pointer to them.
 *
 *     char head[512], date[HTTP_DATE_LEN + 1], clen[HTTP_UINT_MAX_LEN];
 *     http_header h[3] = {
 *         {{"Content-Type", 12}, {"text/plain", 10}},
 *         {{"Content-Length", 14}, {clen, http_format_uint(clen, body_len)}},
 *         {{"Date", 4}, {date, http_date_now(date)}}};
 *     ptrdiff_t n = http_format_response(head, sizeof head, 200, NULL, h, 3);
 *     if (n < 0) ...                        // -EINVAL: a field is not valid
 *     else if ((size_t)n > sizeof head) ... // too small: n bytes are needed
 *     else write the head (n bytes), then the body
 *
 * 6. THREADS AND MEMORY ======================================================
 *
 *   A parser belongs to one thread at a time. Every function is reentrant;
 *   http_date_now and http_simd_level are safe from any thread at once.
 *   http_simd_limit is meant for start-up (it is atomic, but a parse that
 *   runs while it changes may use either path; results are identical).
 *   Nothing here allocates, frees, or keeps global state other than the
 *   Date cache and the SIMD level.
 *
 * 7. THE SERVER =============================================================
 *
 *   Node's http.createServer, in C. It needs evloop.h, included before
 *   http.h (or http.h included again after evloop.h); with it, http.h
 *   declares the server and, where HTTP_IMPLEMENTATION is defined, compiles
 *   it. Nothing of the server exists without evloop.h.
 *
 *   7.1 Quick start -----------------------------------------------------------
 *
 *     #define EVLOOP_IMPLEMENTATION
 *     #define HTTP_IMPLEMENTATION
 *     #include "evloop.h"
 *     #include "http.h"
 *
 *     static void on_request(http_req *req) {
 *         http_res_send(req, 200, "text/plain", "Hello, World!", 13);
 *     }
 *     int main(void) {
 *         evloop *loop;
 *         http_server *srv;
 *         http_server_options o = {0};
 *         o.handle_signals = 1;             // Ctrl-C: graceful shutdown
 *         evloop_new(&loop, NULL);
 *         http_server_new(&srv, loop, &o, on_request);
 *         http_server_listen(srv, "0.0.0.0", 8080);
 *         evloop_run(loop, EVLOOP_RUN_DEFAULT);   // returns after shutdown
 *         http_server_free(srv);
 *         return evloop_free(loop);
 *     }
 *
 *   Build: cc -O2 app.c -o app -pthread. examples/hello.c is this with the
 *   TechEmpower routes and --threads.
 *
 *   7.2 Options (http_server_options; zero means the default) ---------------
 *
 *     parser             request limits, section 3.5 (line 8192, head
 *                        32768, 100 fields, chunk-size digits 16, ...)
 *     max_body           a buffered body larger than this: 413 (1 MiB)
 *     stream_bodies      1: the handler runs once the head is in and reads
 *                        the body itself with http_req_read (0)
 *     header_timeout_ms  a request head must be complete this long after
 *                        its first byte (a new connection: after accept),
 *                        however slowly it trickles in (10000)
 *     body_timeout_ms    longest silence while the server waits for body
 *                        bytes; every byte that arrives restarts it (30000)
 *     keepalive_timeout_ms  idle connection between requests (5000)
 *     write_timeout_ms   queued output that makes no progress (30000)
 *     linger_ms          reading and dropping input after a closing
 *                        response, so it is not lost to a reset (2000)
 *     max_connections    more at once are answered 503 and closed like a
 *                        closing response (linger_ms) (10000)
 *     max_pipelined      requests in flight per connection; past it the
 *                        server stops reading until one ends (16)
 *     max_requests_per_connection   then Connection: close (0: no limit)
 *     write_high_water   response bytes queued before http_res_writable
 *                        says to wait for on_drain; also the output of a
 *                        connection past which it takes no new request
 *                        until that output has gone (65536)
 *     server_name        value of a Server field on every response (none)
 *     backlog            listen backlog (511)
 *     reuseport          SO_REUSEPORT: several loops, one port (0)
 *     handle_signals     SIGINT and SIGTERM start a graceful shutdown (0)
 *     shutdown_timeout_ms  its deadline (10000)
 *
 *   7.3 Requests and responses ----------------------------------------------------
 *
 *   The handler gets an http_req: the request's method, target, path and
 *   query (still percent-encoded: see section 4), headers, version,
 *   keep_alive, upgrade, content_length and, for buffered bodies, body. Its
 *   views point into memory the request owns: valid until the request is
 *   released. req->data is yours.
 *
 *   The response: http_res_status, http_res_header (before the head goes),
 *   then http_res_write (streams; chunked unless a Content-Length was set)
 *   and http_res_end (the last bytes; with no write before, the body gets a
 *   Content-Length). http_res_send does status + Content-Type + body + end;
 *   http_res_sendfile ends with a file body sent by sendfile(2). These two
 *   end the response whatever they return (a 500 when what was asked
 *   cannot be sent), except -EALREADY, which changes nothing. The server
 *   adds Date, Server (if configured), the framing, and Connection when it
 *   matters. HEAD, 1xx, 204 and 304 responses never carry a body: bytes
 *   written for them are dropped. A 204 (and a 101) never has a
 *   Content-Length: one the caller set is left out; a 304 keeps the
 *   caller's (the length a 200 would have). http_res_status takes 200 to
 *   999: the interim responses are the server's (100 Continue, answering
 *   Expect) and http_res_upgrade's (101); 103 Early Hints is not offered.
 *
 *   A handler may answer later: from a timer, a pool completion, another
 *   connection's callback (always on the loop's thread). Responses leave in
 *   the order of the requests even when a later handler finishes first:
 *   the later response waits in memory. A client that sends requests and
 *   does not read the answers cannot make the server hold more: once
 *   write_high_water bytes of a connection's output wait (queued on the
 *   socket or held for their turn), the server parses no new request of
 *   that connection and stops reading it until the output has gone; the
 *   write timeout closes a client that never reads.
 *
 *   Release: a request is released (its memory freed) when its response has
 *   ended: after http_res_end, http_res_send, http_res_sendfile (once the
 *   file has gone) or the upgrade callback. Every request must be ended,
 *   also one whose connection is gone: http_req_on_close(req, cb) tells you
 *   the client left before the end; http_res_* then return -ECONNRESET and
 *   http_res_end still releases. Do not touch req after releasing it. An
 *   on_close callback may end its request and any other of the same
 *   connection (all of them are told before any is released); a request
 *   ended that way before its own turn gets no on_close.
 *
 *   Backpressure: when http_res_writable(req) is 0, wait for the callback set
 *   with http_res_on_drain before writing more. Memory per response then
 *   stays near write_high_water whatever the body's size.
 *
 *   7.4 Bodies: buffered or streamed ------------------------------------------------
 *
 *   Buffered (the default): the handler runs when the whole body is in
 *   req->body (up to max_body, else the client gets 413 and the connection
 *   closes). "Expect: 100-continue" is answered before the body is read;
 *   an unknown expectation gets 417, and the connection closes (a body the
 *   client sends anyway is dropped).
 *
 *   Streamed (stream_bodies = 1): the handler runs after the head. Call
 *   http_req_read(req, on_data, on_end): on_data gets the body in pieces
 *   (views valid during the call), on_end(req, 0) its end (or an error, and
 *   the connection closes after the response). http_req_pause/resume stop
 *   and restart the delivery; the server stops reading the socket, so a
 *   fast client is slowed down by TCP rather than buffered. The response
 *   may start before the body has arrived (even one that closes the
 *   connection: Connection: close, HTTP/1.0, the last request a connection
 *   takes, a shutdown): the body is still read to its end. Once the
 *   response has ended, on_data and on_end are not called any more; up to
 *   64 KiB of the body not read yet are read and dropped to keep the
 *   connection; more closes it.
 *
 *   7.5 Timeouts and limits -------------------------------------------------------
 *
 *   Each connection is under one timeout at a time: the header timeout
 *   while a head arrives (a client that sends one byte per second is cut
 *   when it runs out), the body timeout while the server waits for body
 *   bytes (every byte restarts it: a slow but steady upload goes on, a
 *   stalled one is cut; not while a streamed body waits for http_req_read
 *   or is paused: the application holds it then), the idle timeout between
 *   requests, the write timeout while output is queued (progress re-arms
 *   it; a client that never reads is closed and the request told through
 *   on_close). No timeout runs while a handler works.
 *   The timers cost O(1) per request: one list per timeout, in deadline
 *   order, and one loop timer for the earliest.
 *
 *   Parser errors (section 3.7) are answered with their status (400, 413,
 *   414, 431, 501, 505) and "Connection: close", after the responses of the
 *   requests before them; nothing half-parsed reaches a handler.
 *
 *   7.6 Listening, shutdown, several cores, upgrades --------------------------------
 *
 *   Listening: http_server_listen(srv, host, port) on a numeric IPv4 or
 *   IPv6 address (names are not resolved), http_server_listen_unix(srv,
 *   path) on a Unix socket (a stale socket file is replaced, the file is
 *   removed at shutdown); both as often as needed, also after a failure.
 *
 *   http_server_shutdown(srv, timeout_ms, done): stops listening, closes
 *   idle connections, lets requests in flight finish (the requests already
 *   received, including bodies still arriving; their responses say
 *   Connection: close), closes what is left after timeout_ms, and calls
 *   done when every connection is closed and every request released. Then
 *   http_server_free(srv). With handle_signals the server does this itself
 *   on SIGINT/SIGTERM, and evloop_run returns when it is over.
 *
 *   Several cores: one loop and one server per thread, each with reuseport
 *   = 1 and the same port; the kernel spreads connections (examples/hello.c
 *   --threads N).
 *
 *   Upgrades: for a request with req->upgrade (Upgrade + Connection:
 *   upgrade, or CONNECT), http_res_upgrade(req, target, cb) sends the head
 *   (101 Switching Protocols, or the status set; fields added before, such
 *   as Upgrade), then moves the socket into `target`, a stream you made
 *   with evloop_tcp_init (or evloop_unix_init), and calls cb with the bytes
 *   the client already sent after the request. From then on the stream is
 *   yours. cb runs once for every accepted upgrade: with a NULL stream when
 *   the connection went before the switch (the client left, a shutdown's
 *   deadline, an earlier response that closed it), and then target was
 *   never opened: close it yourself (keep a pointer to it, in req->data for
 *   instance). Answering an upgrade request normally declines it. A request
 *   with a body (curl --http2 -d sends one): the new protocol starts after
 *   the body, so a buffered body is read before the handler runs as usual,
 *   and with streamed bodies http_res_upgrade returns -EBUSY until on_end.
 *
 *   7.7 Errors and threading ------------------------------------------------------------
 *
 *   Calls return 0 or a negative errno: -EINVAL (a bad field name or value,
 *   a Content-Length broken by the body, a status out of range), -EALREADY
 *   (the head or the response already went), -ECONNRESET (the client is
 *   gone), -EBUSY (an upgrade before its body was read), -ENOMEM; listening
 *   returns the bind's error (-EADDRINUSE, -EADDRNOTAVAIL, -EACCES).
 *   http_server_get_stats counts connections, requests, parse errors, timeouts,
 *   aborted requests and rejected connections.
 *
 *   A server and its requests belong to its loop's thread. Memory: a
 *   connection costs its evloop stream and about 200 bytes; an idle one
 *   holds no buffer. A request is one allocation (4 KiB blocks, up to 256
 *   kept for reuse; none under AddressSanitizer, so that it reports a use
 *   of a released request) with a copy of its head.
 */
#ifndef HTTP_H
#define HTTP_H

/* Every header of the collection asks for the POSIX and GNU interfaces
 * when it comes before any system header, so they work in any order. */
#if !defined(_GNU_SOURCE) && defined(__linux__)
#define _GNU_SOURCE 1
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifndef HTTP_API
#  ifdef HTTP_STATIC
#    if defined(__GNUC__) || defined(__clang__)
#      define HTTP_API static __attribute__((unused))
#    else
#      define HTTP_API static
#    endif
#  else
#    define HTTP_API extern
#  endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- common types -------------------------------------------------------- */

/* A view of bytes owned by someone else: not NUL-terminated. */
typedef struct http_str {
    const char *ptr;
    size_t len;
} http_str;

/* A header (or trailer) field: name and value as they appear on the wire. */
typedef struct http_header {
    http_str name;
    http_str value;
} http_header;

typedef enum http_method_id {
    HTTP_METHOD_OTHER = 0, /* an extension method: see method_name */
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_CONNECT,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_TRACE,
    HTTP_METHOD_PATCH,
    HTTP_METHOD_COUNT
} http_method_id;

typedef enum http_kind {
    HTTP_KIND_REQUEST = 0,
    HTTP_KIND_RESPONSE = 1
} http_kind;

typedef enum http_body_kind {
    HTTP_BODY_NONE = 0,     /* no body: the message ends with its head */
    HTTP_BODY_LENGTH,       /* content_length bytes */
    HTTP_BODY_CHUNKED,      /* chunked transfer coding */
    HTTP_BODY_UNTIL_CLOSE   /* responses: everything until the peer closes */
} http_body_kind;

typedef enum http_target_form {
    HTTP_TARGET_NONE = 0,   /* responses */
    HTTP_TARGET_ORIGIN,     /* "/path?query" */
    HTTP_TARGET_ABSOLUTE,   /* "http://host/path?query" (proxies) */
    HTTP_TARGET_AUTHORITY,  /* "host:port" (CONNECT only) */
    HTTP_TARGET_ASTERISK    /* "*" (OPTIONS only) */
} http_target_form;

/* ---- errors (section 3.7) ------------------------------------------------- */

enum http_error {
    HTTP_ERR_BAD_METHOD = -3000,
    HTTP_ERR_BAD_TARGET = -3001,
    HTTP_ERR_URI_TOO_LONG = -3002,
    HTTP_ERR_BAD_VERSION = -3003,
    HTTP_ERR_VERSION_NOT_SUPPORTED = -3004,
    HTTP_ERR_BAD_STATUS = -3005,
    HTTP_ERR_BARE_CR = -3006,
    HTTP_ERR_BARE_LF = -3007,
    HTTP_ERR_OBS_FOLD = -3008,
    HTTP_ERR_HEADER_NAME = -3009,
    HTTP_ERR_HEADER_NAME_SPACE = -3010,
    HTTP_ERR_HEADER_NO_COLON = -3011,
    HTTP_ERR_HEADER_VALUE_NUL = -3012,
    HTTP_ERR_HEADER_VALUE_CTL = -3013,
    HTTP_ERR_HEAD_TOO_LARGE = -3014,
    HTTP_ERR_TOO_MANY_HEADERS = -3015,
    HTTP_ERR_CL_AND_TE = -3016,
    HTTP_ERR_CL_MULTIPLE = -3017,
    HTTP_ERR_CL_INVALID = -3018,
    HTTP_ERR_TE_NOT_CHUNKED = -3019,
    HTTP_ERR_TE_UNSUPPORTED = -3020,
    HTTP_ERR_TE_HTTP10 = -3021,
    HTTP_ERR_MULTIPLE_HOST = -3022,
    HTTP_ERR_CHUNK_SIZE = -3023,
    HTTP_ERR_CHUNK_TOO_LARGE = -3024,
    HTTP_ERR_CHUNK_EXT = -3025,
    HTTP_ERR_CHUNK_EXT_TOO_LONG = -3026,
    HTTP_ERR_CHUNK_CRLF = -3027,
    HTTP_ERR_INCOMPLETE = -3028,
    HTTP_ERR_MISSING_HOST = -3029,
    HTTP_ERR_BAD_HOST = -3030,
    HTTP_ERR_CONNECT_BODY = -3031,
    HTTP_ERR__LAST = -3031 /* the most negative code; not an error itself */
};

/* Name of an error without its prefix: "BARE_LF", "EINVAL". Never NULL. */
HTTP_API const char *http_errname(int err);
/* One sentence describing an error. Never NULL; static storage. */
HTTP_API const char *http_strerror(int err);
/* The status a server should answer an error with: 400, 413, 414, 431, 501,
 * 505; 500 for errno values; 0 for err >= 0. */
HTTP_API int http_error_status(int err);

/* ---- the parser (section 3) ---------------------------------------------- */

/* Limits and modes; all-zero means every default (section 3.5). */
typedef struct http_options {
    size_t max_request_line; /* 8192 */
    size_t max_head;         /* 32768 (max 1 GiB) */
    size_t max_headers;      /* 100 (max 65535) */
    size_t max_chunk_digits; /* 16 (max 16) */
    size_t max_chunk_ext;    /* 1024 (max 65535) */
    bool lenient_bare_lf;    /* false */
    bool lenient_missing_host; /* false */
} http_options;

/* The parser state: 40 bytes, no pointers; treat the fields as private. */
typedef struct http_msg_parser {
    uint64_t remaining;     /* body bytes left (length body, current chunk);
                               error offset */
    uint32_t pos;           /* resume offset (head, trailers) */
    uint32_t mark;          /* start offset of the token being scanned */
    uint32_t max_head;
    uint32_t max_line;
    uint16_t max_headers;
    uint16_t max_ext;
    uint16_t nfields;       /* fields found so far */
    uint16_t aux;           /* chunk-size digits, extension bytes */
    uint8_t kind;
    uint8_t state;
    uint8_t flags;
    uint8_t max_digits;
    uint8_t err;            /* index of the sticky error */
    uint8_t ext;            /* where in a chunk extension's grammar */
    uint8_t reserved[2];
} http_msg_parser;

/* A parsed head; filled by http_parse_head (section 3.1). */
typedef struct http_message {
    http_method_id method;       /* requests */
    http_str method_name;        /* requests: the method token as sent */
    http_str target;             /* requests */
    http_target_form target_form;
    int status;                  /* responses */
    http_str reason;             /* responses (may be empty) */
    int version_major;           /* 1 */
    int version_minor;           /* 0 or 1 (or higher: treat as 1) */
    http_header *headers;        /* the caller's array */
    size_t num_headers;
    http_body_kind body;
    uint64_t content_length;     /* valid when has_content_length */
    bool has_content_length;
    bool chunked;
    bool keep_alive;
    bool upgrade;
    bool expect_continue;
    bool expect_unknown;
    bool connection_close;
    bool connection_keep_alive;
    bool connection_upgrade;
    bool other_codings;
} http_message;

/* In/out argument of http_parse_body (section 3.2). */
typedef struct http_body {
    /* in: where trailer fields go (NULL: checked and dropped) */
    http_header *trailers;
    size_t trailers_cap;
    /* out */
    http_str data;               /* decoded body bytes of this call */
    size_t consumed;             /* bytes of buf used by this call */
    size_t num_trailers;         /* after a return of 1 */
} http_body;

/* Prepares p to read messages of `kind`; opts may be NULL (defaults) and is
 * copied (it need not outlive p). Never fails. */
HTTP_API void http_parse_init(http_msg_parser *p, http_kind kind, const http_options *opts);
/* Forgets any message in progress and any error; keeps kind and options. */
HTTP_API void http_parse_reset(http_msg_parser *p);
/* Response parsers: the next response answers a request with this method
 * (HEAD: no body; CONNECT: a 2xx opens a tunnel). Lasts until a final
 * response has been read. */
HTTP_API void http_parse_response_to(http_msg_parser *p, http_method_id method);
/* Parses a head from all unconsumed bytes: > 0 head length, 0 need more,
 * < 0 error (section 3.1). headers: caller's array of max entries. */
HTTP_API int http_parse_head(http_msg_parser *p, const char *buf, size_t len,
                             http_message *m, http_header *headers, size_t max);
/* Decodes body bytes: 1 message complete, 0 not yet, < 0 error; b->consumed,
 * b->data set on every call (section 3.2). Returns 1 at once with nothing
 * consumed when no body is in progress. */
HTTP_API int http_parse_body(http_msg_parser *p, const char *buf, size_t len, http_body *b);
/* The stream ended: 1 completes an until-close body, 0 no message was in
 * progress, HTTP_ERR_INCOMPLETE a message was cut (or the sticky error). */
HTTP_API int http_parse_finish(http_msg_parser *p);
/* Offset in the failing call's buf of the byte where the error was found
 * (0 when the parser is not in an error). */
HTTP_API size_t http_parse_error_offset(const http_msg_parser *p);

/* ---- SIMD (section 3.8) --------------------------------------------------- */

enum { HTTP_SIMD_NONE = 0, HTTP_SIMD_SSE42 = 1, HTTP_SIMD_AVX2 = 2 };
/* The scan path in use: HTTP_SIMD_NONE, _SSE42 or _AVX2. */
HTTP_API int http_simd_level(void);
/* Uses at most that level (process-wide); returns the level now in use. */
HTTP_API int http_simd_limit(int max_level);

/* ---- helpers (section 4) -------------------------------------------------- */

/* The parts of a request-target; absent parts are {NULL, 0}. */
typedef struct http_url {
    http_str scheme;    /* "http" (absolute form) */
    http_str authority; /* "host:port" (absolute and authority forms) */
    http_str path;      /* "/a/b" (origin and absolute forms), "*" */
    http_str query;     /* after '?', without it */
    http_str fragment;  /* after '#', without it */
} http_url;

/* Splits a target (any of the four forms) into views of it. Returns 0, or
 * HTTP_ERR_BAD_TARGET when it is none of the forms. It splits and does not
 * check the bytes (a target the parser accepted is already checked; one
 * from elsewhere may have a fragment or userinfo, which it splits off). */
HTTP_API int http_parse_target(const char *target, size_t len, http_url *out);

typedef struct http_query_iter {
    const char *pos;
    const char *end;
} http_query_iter;
/* Starts iterating a query string (a leading '?' is skipped). */
HTTP_API void http_query_init(http_query_iter *it, const char *query, size_t len);
/* Next non-empty pair of the '&'-separated list: returns 1 and views of the
 * raw (still encoded) key and value, or 0 at the end. A pair without '='
 * gives value {NULL, 0}; "k=" gives an empty value with a non-NULL ptr. */
HTTP_API int http_query_next(http_query_iter *it, http_str *key, http_str *value);

enum { HTTP_DECODE_PLUS = 1 /* '+' means space (forms, queries) */ };
/* Decodes %XX escapes of in[0..len) into out (cap bytes; out == in decodes
 * in place; the result is never longer than the input). Returns the decoded
 * length, HTTP_ERR_BAD_TARGET for a '%' not followed by two hex digits, or
 * -ENOBUFS when cap is too small. The result may contain any byte, NUL and
 * '/' included: check it before using it as a file name. */
HTTP_API ptrdiff_t http_percent_decode(char *out, size_t cap, const char *in, size_t len,
                                       unsigned flags);

/* First field named `name` (case-insensitive) after `after` (NULL: from the
 * start), or NULL. Loop: for (h = NULL; (h = http_header_find(a, n, nm, h));) */
HTTP_API const http_header *http_header_find(const http_header *headers, size_t n,
                                             const char *name, const http_header *after);
/* Value of the first field named `name` in m, or NULL. */
HTTP_API const http_str *http_header_get(const http_message *m, const char *name);
/* Whether the comma-separated list `value` has the element `token`
 * (case-insensitive, surrounding whitespace ignored). */
HTTP_API bool http_list_has(http_str value, const char *token);
/* Whether s equals the NUL-terminated lit, ignoring ASCII case. */
HTTP_API bool http_str_ieq(http_str s, const char *lit);
/* "GET" for HTTP_METHOD_GET; "" for HTTP_METHOD_OTHER or out of range. */
HTTP_API const char *http_method_name(http_method_id m);
/* The method of a token (case-sensitive, as methods are), or
 * HTTP_METHOD_OTHER. */
HTTP_API http_method_id http_method_from(const char *s, size_t len);
/* The reason phrase of a status code ("Not Found"), "" when unknown. */
HTTP_API const char *http_status_reason(int status);

/* ---- serializer (section 5) ----------------------------------------------- */

#define HTTP_CRLF "\r\n"
#define HTTP_DATE_LEN 29           /* strlen("Sun, 06 Nov 1994 08:49:37 GMT") */
#define HTTP_CHUNK_HEADER_MAX 20   /* 16 hex digits, CRLF, NUL, slack */
#define HTTP_UINT_MAX_LEN 21       /* 20 digits and NUL */

/* Writes "HTTP/1.1 <status> <reason>\r\n", the fields and "\r\n" into
 * buf[0..cap). reason NULL means http_status_reason(status). Returns the
 * length of the whole head: when it is > cap nothing usable was written
 * (retry with that much room). -EINVAL: status not 100..999, or a reason,
 * name or value that is not valid on the wire. Never writes a NUL. */
HTTP_API ptrdiff_t http_format_response(char *buf, size_t cap, int status, const char *reason,
                                        const http_header *headers, size_t n);
/* The same for "<method> <target> HTTP/1.1\r\n" + fields + "\r\n". */
HTTP_API ptrdiff_t http_format_request(char *buf, size_t cap, const char *method,
                                       const char *target, const http_header *headers, size_t n);
/* The response head as iovecs: the status line is written into line[0..line_cap)
 * (64 + strlen(reason) bytes suffice), each field is 4 iovecs pointing at its
 * name and value in place, plus one for the final CRLF (iovcnt >= 4 * n + 2).
 * Returns the number of iovecs used, -ENOBUFS when iov or line is too small,
 * -EINVAL as http_format_response. The iovecs are valid while line, headers'
 * bytes and the static separators are. */
HTTP_API int http_response_iov(struct iovec *iov, int iovcnt, char *line, size_t line_cap,
                               int status, const char *reason, const http_header *headers,
                               size_t n);
/* Writes "<size in hex>\r\n" and a NUL; returns its length (without NUL). */
HTTP_API size_t http_chunk_header(char out[HTTP_CHUNK_HEADER_MAX], uint64_t size);
/* Fills iov[0..3) with one chunk: size line (written into hdr), data, CRLF.
 * Returns 3, or 0 when len is 0 (a zero-size chunk would end the body; use
 * http_chunk_last for that). */
HTTP_API int http_chunk_iov(struct iovec iov[3], char hdr[HTTP_CHUNK_HEADER_MAX],
                            const void *data, size_t len);
/* Writes the end of a chunked body, "0\r\n" + trailer fields + "\r\n";
 * returns the length needed (as http_format_response) or -EINVAL. */
HTTP_API ptrdiff_t http_chunk_last(char *buf, size_t cap, const http_header *trailers, size_t n);
/* Writes the IMF-fixdate of unix_time (seconds since 1970, UTC) and a NUL
 * into out; returns HTTP_DATE_LEN, or 0 for a time before 1970 or after 9999. */
HTTP_API size_t http_format_date(char out[HTTP_DATE_LEN + 1], int64_t unix_time);
/* The current time as an IMF-fixdate (+ NUL) in out; the text is formatted
 * at most once per second per process and copied. Thread-safe. Returns
 * HTTP_DATE_LEN. */
HTTP_API size_t http_date_now(char out[HTTP_DATE_LEN + 1]);
/* Writes v in decimal and a NUL; returns the number of digits. */
HTTP_API size_t http_format_uint(char out[HTTP_UINT_MAX_LEN], uint64_t v);

#ifdef __cplusplus
}
#endif

#endif /* HTTP_H */

/* ========================================================================== */
/*               7. THE SERVER (needs evloop.h, included first)               */
/* ========================================================================== */

/* Its own guard: including http.h again after evloop.h adds the server. */
#if defined(EVLOOP_H) && !defined(HTTP_SERVER_H)
#define HTTP_SERVER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct http_server http_server;
typedef struct http_req http_req;

/* The request callback: a request's head has arrived (and its body, unless
 * bodies are streamed). Answer now or later with the http_res_ calls. */
typedef void (*http_handler)(http_req *req);
typedef void (*http_req_cb)(http_req *req);
/* Body bytes of a streamed request body; valid until the callback returns. */
typedef void (*http_data_cb)(http_req *req, const char *data, size_t len);
/* The end of a streamed body: 0, or the error that cut it (the connection
 * closes after the response). */
typedef void (*http_end_cb)(http_req *req, int status);
/* An upgraded connection, now in `stream`; data[0..len) are bytes the
 * client sent after the request, valid until the callback returns. */
typedef void (*http_upgrade_cb)(http_req *req, evloop_stream *stream, const char *data, size_t len);
typedef void (*http_server_cb)(http_server *server);

typedef struct http_server_options {
    http_options parser;           /* request limits (3.5); zero: defaults */
    size_t max_body;               /* buffered bodies: 1 MiB; larger: 413 */
    int stream_bodies;             /* 1: the handler runs after the head and
                                      reads the body with http_req_read */
    unsigned header_timeout_ms;    /* a head must be complete within: 10000 */
    unsigned body_timeout_ms;      /* silence while body bytes are awaited: 30000 */
    unsigned keepalive_timeout_ms; /* idle between requests: 5000 */
    unsigned write_timeout_ms;     /* output that makes no progress: 30000 */
    unsigned linger_ms;            /* reading after a closing response: 2000 */
    unsigned max_connections;      /* 10000; above: 503 and close */
    unsigned max_pipelined;        /* requests in flight per connection: 16 */
    unsigned max_requests_per_connection; /* 0: no limit */
    size_t write_high_water;       /* queued response bytes before
                                      http_res_writable() says wait, and
                                      before a connection takes no new
                                      request: 65536 */
    const char *server_name;       /* value of a Server field; NULL: none */
    int backlog;                   /* listen backlog: 511 */
    int reuseport;                 /* 1: SO_REUSEPORT, one port for N loops */
    int handle_signals;            /* 1: SIGINT and SIGTERM shut down gracefully */
    unsigned shutdown_timeout_ms;  /* handle_signals' deadline: 10000 */
} http_server_options;

typedef struct http_server_stats {
    uint64_t connections_total;   /* accepted since start */
    uint64_t requests_total;      /* heads parsed */
    uint64_t parse_errors;        /* answered 4xx/5xx by the server */
    uint64_t timeouts;            /* connections closed by a timeout */
    uint64_t aborted;             /* requests whose connection went first */
    uint64_t rejected;            /* connections over max_connections */
    unsigned connections;         /* open now */
    unsigned requests;            /* not yet ended or released */
} http_server_stats;

/* A request and its response. The fields above `conn` are for reading; the
 * views point into memory the request owns, valid until it is released
 * (section 7.3). Everything else is private. */
struct http_req {
    void *data;                 /* yours */
    http_server *server;
    http_method_id method;
    http_str method_name;       /* the method token */
    http_str target;            /* as sent */
    http_str path;              /* the target's path, still percent-encoded */
    http_str query;             /* after '?' (without it); empty when none */
    http_header *headers;
    size_t num_headers;
    int version_minor;          /* HTTP/1.0 or 1.1 */
    bool keep_alive;            /* the client allows another request */
    bool upgrade;               /* an Upgrade request, or CONNECT */
    bool expect_continue;
    bool has_content_length;
    uint64_t content_length;
    http_str body;              /* buffered bodies: the whole body */
    /* private */
    struct http__conn *conn;
    http_req *next;
    uint32_t flags;
    int status;
    uint32_t block;             /* size of this allocation */
    char *hbuf;                 /* response fields, "Name: value\r\n"... */
    uint32_t hlen, hcap;
    char *pend;                 /* output held while earlier responses go */
    size_t pend_len, pend_cap;
    size_t body_cap;
    uint64_t res_length;        /* Content-Length of the response, or ~0 */
    uint64_t res_sent;          /* body bytes of the response so far */
    http_req_cb on_drain, on_close;
    http_data_cb on_data;
    http_end_cb on_end;
    int body_status;
    int file_fd;
    int64_t file_offset;
    uint64_t file_len;
    evloop_stream *up_target;
    http_upgrade_cb up_cb;
    evloop_write_req wreq;
};

/* Makes a server on loop; opts may be NULL. -ENOMEM. */
HTTP_API int http_server_new(http_server **out, evloop *loop, const http_server_options *opts,
                             http_handler handler);
/* Listens on a numeric address ("0.0.0.0", "127.0.0.1", "::", "::1") and
 * port (0: any; http_server_port tells which). Names are not resolved:
 * "localhost" is -EINVAL. May be called several times, also after a
 * failure (the bind's error: -EADDRINUSE, -EADDRNOTAVAIL, -EACCES). */
HTTP_API int http_server_listen(http_server *srv, const char *host, int port);
/* Listens on a Unix socket at path. A socket file there that nobody
 * listens on any more (left by a server that is gone) is replaced; one in
 * use is -EADDRINUSE, and so is anything that is not a socket (never
 * removed). The socket file is removed when the server stops listening
 * (shutdown), if it is still the one the server made. */
HTTP_API int http_server_listen_unix(http_server *srv, const char *path);
/* The port of the first TCP listener, -1 without one. */
HTTP_API int http_server_port(const http_server *srv);
/* Graceful shutdown: stops listening, closes idle connections, lets the
 * requests in flight finish (their responses say Connection: close), and
 * after timeout_ms closes what is left (0: at once). done(srv) runs when
 * every connection is closed and every request released. */
HTTP_API void http_server_shutdown(http_server *srv, unsigned timeout_ms, http_server_cb done);
/* Frees a server whose shutdown has completed; -EBUSY before. */
HTTP_API int http_server_free(http_server *srv);
HTTP_API void http_server_get_stats(const http_server *srv, http_server_stats *out);
HTTP_API evloop *http_server_loop(const http_server *srv);
HTTP_API void http_server_set_data(http_server *srv, void *data);
HTTP_API void *http_server_get_data(const http_server *srv);

/* ---- requests ---- */

/* The value of the first field named name (case-insensitive), or NULL. */
HTTP_API const http_str *http_req_header(const http_req *req, const char *name);
/* The client's address (TCP), -ENOTCONN once the connection is gone. */
HTTP_API int http_req_peer(const http_req *req, struct sockaddr_storage *out);
/* Streamed bodies: delivers the body to on_data piece by piece, then
 * on_end(req, 0) (or an error); either may be NULL (a NULL on_data reads
 * and drops the body). Sends "100 Continue" first when the client asked
 * for it. No callback runs once the response has ended. -EINVAL when
 * bodies are buffered or it was called before. */
HTTP_API int http_req_read(http_req *req, http_data_cb on_data, http_end_cb on_end);
/* Stops and resumes the delivery of a streamed body (the server stops
 * reading the socket: the client is slowed down by TCP). */
HTTP_API void http_req_pause(http_req *req);
HTTP_API void http_req_resume(http_req *req);
/* cb runs if the connection is lost before the response has ended; the
 * request must still be ended (http_res_end returns -ECONNRESET then), in
 * cb or later. cb may also end other requests of the connection. */
HTTP_API void http_req_on_close(http_req *req, http_req_cb cb);
HTTP_API bool http_req_aborted(const http_req *req);

/* ---- responses ---- */

/* Status of the response (default 200), 200 to 999 (-EINVAL otherwise:
 * 1xx are the server's); before the head goes out (-EALREADY). */
HTTP_API int http_res_status(http_req *req, int status);
/* Adds a response field (copied). -EINVAL for a name or value that would
 * break the head (CR, LF, NUL, a bad token) or for the fields the server
 * writes itself (Transfer-Encoding); -EALREADY after the head went out. A
 * Content-Length set here frames the body (it must then be exact);
 * "Connection: close" closes the connection after the response. */
HTTP_API int http_res_header(http_req *req, const char *name, const char *value);
HTTP_API int http_res_headern(http_req *req, const char *name, size_t name_len,
                              const char *value, size_t value_len);
/* Sends body bytes (copied or written at once). The first call sends the
 * head: chunked framing unless a Content-Length was set (HTTP/1.0: the
 * body then ends with the connection). */
HTTP_API int http_res_write(http_req *req, const void *data, size_t len);
/* 0 while enough is queued that the caller should wait for on_drain. */
HTTP_API int http_res_writable(const http_req *req);
HTTP_API void http_res_on_drain(http_req *req, http_req_cb cb);
/* Sends the last bytes (data may be NULL) and ends the response; with no
 * write before it, the body gets a Content-Length. Releases the request
 * (see 7.3). */
HTTP_API int http_res_end(http_req *req, const void *data, size_t len);
/* Status, Content-Type (NULL: none), body, end: the common case. The
 * response ends whatever this returns, except -EALREADY (the head or the
 * response had gone: nothing changed). A bad status or type: -EINVAL and
 * the client gets a 500. */
HTTP_API int http_res_send(http_req *req, int status, const char *content_type,
                           const void *body, size_t len);
/* Ends the response with len bytes of the file fd from offset, sent with
 * sendfile(2) (Content-Length: len; a Content-Length set before must equal
 * len). Like http_res_send, the response ends whatever this returns, except
 * -EALREADY (the head went already: nothing changed, end it yourself):
 * -EINVAL (bad fd or offset, another Content-Length) answers 500,
 * -ECONNRESET releases the request. With HTTP_FILE_CLOSE fd is the
 * server's from the call on, in every case: it is closed once the file has
 * gone, or at once when the call fails. Without it fd stays yours: after a
 * failure close it when you like; after success it must stay open until the
 * request is released (the file has gone, or the connection), for which
 * there is no callback: give the server a dup(2) with HTTP_FILE_CLOSE to
 * keep your own. */
#define HTTP_FILE_CLOSE 1
HTTP_API int http_res_sendfile(http_req *req, int fd, int64_t offset, uint64_t len, unsigned flags);
/* Accepts an Upgrade (or CONNECT) request: sends the head (status 101, or
 * the status set; fields added before, plus "Connection: Upgrade" for a
 * 101), then moves the connection into target (made with evloop_tcp_init
 * or evloop_unix_init, not yet opened) and calls cb; cb gets a NULL stream
 * if the connection went first (target unopened: close it). The request
 * is released after cb. -EINVAL for a request that is not an upgrade; -EBUSY
 * while its (streamed) body has not been read to its end. */
HTTP_API int http_res_upgrade(http_req *req, evloop_stream *target, http_upgrade_cb cb);

#ifdef __cplusplus
}
#endif

#endif /* HTTP_SERVER_H */

/* ========================================================================== */
/*                              IMPLEMENTATION                                */
/* ========================================================================== */

#ifdef HTTP_IMPLEMENTATION
#ifndef HTTP__IMPLEMENTATION_DONE
#define HTTP__IMPLEMENTATION_DONE

#include <errno.h>
#include <string.h>
#include <time.h>

#ifndef HTTP_ASSERT
#include <assert.h>
#define HTTP_ASSERT(x) assert(x)
#endif
#if !defined(HTTP_MALLOC) && !defined(HTTP_REALLOC) && !defined(HTTP_FREE)
#include <stdlib.h>
#define HTTP_MALLOC(n) malloc(n)
#define HTTP_REALLOC(p, n) realloc(p, n)
#define HTTP_FREE(p) free(p)
#elif !defined(HTTP_MALLOC) || !defined(HTTP_REALLOC) || !defined(HTTP_FREE)
#error "http.h: define all of HTTP_MALLOC, HTTP_REALLOC and HTTP_FREE, or none"
#endif

#if !defined(HTTP_NO_SIMD) && (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
#define HTTP__X86 1
#include <immintrin.h>
#else
#define HTTP__X86 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define HTTP__LIKELY(x) __builtin_expect(!!(x), 1)
#define HTTP__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HTTP__LIKELY(x) (x)
#define HTTP__UNLIKELY(x) (x)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- character classes ---------------------------------------------------- */

#define HTTP__C_TCHAR 1   /* token character (RFC 9110 tchar) */
#define HTTP__C_VALUE 2   /* field-value byte: HTAB, SP, VCHAR, obs-text */
#define HTTP__C_TARGET 4  /* request-target byte: visible ASCII but '#' */
#define HTTP__C_REGNAME 8 /* reg-name byte but '%': unreserved, sub-delims */

#define HTTP__IS_ALNUM(c)                                                                    \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define HTTP__IS_TCHAR(c)                                                                    \
    (HTTP__IS_ALNUM(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || \
     (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' ||      \
     (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
/* unreserved and sub-delims of RFC 3986 */
#define HTTP__IS_REGNAME(c)                                                                  \
    (HTTP__IS_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '!' || \
     (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || (c) == '*' ||      \
     (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
/* The bytes of a request-target: visible ASCII but '#' (a fragment is
 * never sent). Section 3.6 says why the visible bytes RFC 3986 leaves out
 * are accepted. */
#define HTTP__IS_TARGET(c) ((c) > 0x20 && (c) < 0x7f && (c) != '#')
#define HTTP__CLS(c)                                                                         \
    ((HTTP__IS_TCHAR(c) ? HTTP__C_TCHAR : 0) |                                               \
     (((c) == 9 || ((c) >= 32 && (c) != 127)) ? HTTP__C_VALUE : 0) |                         \
     (HTTP__IS_TARGET(c) ? HTTP__C_TARGET : 0) | (HTTP__IS_REGNAME(c) ? HTTP__C_REGNAME : 0))
#define HTTP__R4(c) HTTP__CLS(c), HTTP__CLS((c) + 1), HTTP__CLS((c) + 2), HTTP__CLS((c) + 3)
#define HTTP__R16(c) HTTP__R4(c), HTTP__R4((c) + 4), HTTP__R4((c) + 8), HTTP__R4((c) + 12)
#define HTTP__R64(c) HTTP__R16(c), HTTP__R16((c) + 16), HTTP__R16((c) + 32), HTTP__R16((c) + 48)

static const unsigned char http__cls[256] = {HTTP__R64(0), HTTP__R64(64), HTTP__R64(128),
                                             HTTP__R64(192)};

static int http__hexval(unsigned c)
{
    if (c - '0' < 10) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6) return (int)(c - 'a' + 10);
    return -1;
}

static unsigned char http__lower(unsigned char c)
{
    return (unsigned char)((unsigned)c - 'A' < 26u ? c | 0x20 : c);
}

/* a[0..n) equals the lower-case literal lit, ignoring ASCII case, for a[]
 * without control bytes (a field name or value as
 * the parser accepts them) and a literal of lower-case letters, digits and
 * '-': OR-ing 0x20 into each byte lower-cases letters and keeps digits and
 * '-', and only a control byte could turn into one of those. 8 bytes at a
 * time. */
static bool http__ieq_tok(const char *a, const char *lit, size_t n)
{
    uint64_t x, y;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, lit + i, 8);
        if ((x | UINT64_C(0x2020202020202020)) != y) return false;
    }
    for (; i < n; i++)
        if (((unsigned char)a[i] | 0x20) != (unsigned char)lit[i]) return false;
    return true;
}

/* ---- scanners: scalar, SSE4.2, AVX2 ----------------------------------------
 * Each returns the first index in [pos, end) whose byte is not in the class,
 * or end. They never read outside [pos, end). */

static inline size_t http__scan_cls_c(const unsigned char *b, size_t pos, size_t end,
                                      unsigned cls)
{
    while (end - pos >= 4) {
        if (!(http__cls[b[pos]] & cls)) return pos;
        if (!(http__cls[b[pos + 1]] & cls)) return pos + 1;
        if (!(http__cls[b[pos + 2]] & cls)) return pos + 2;
        if (!(http__cls[b[pos + 3]] & cls)) return pos + 3;
        pos += 4;
    }
    while (pos < end && (http__cls[b[pos]] & cls)) pos++;
    return pos;
}

#if HTTP__X86
/* Byte classes by nibble, for a byte shuffle: bit (h - 2) of entry l of a
 * low-nibble table is set when the byte 0xhl (h = 2..7) is in the class;
 * HTTP__NIB_HI maps each high nibble to that bit (none for 0-1 and 8-f,
 * which hold no byte of these classes). A byte is in the class when
 * lo[l] & hi[h] is not zero. */
#define HTTP__TOK_LO /* tchar */                                                             \
    0x3a, 0x3f, 0x3e, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3e, 0x3e, 0x3d, 0x15, 0x34, 0x15, 0x3d, \
        0x1c
#define HTTP__HOST_LO /* reg-name byte but '%' (HTTP__C_REGNAME), or ':' */                \
    0x2a, 0x3f, 0x3e, 0x3e, 0x3f, 0x3e, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x17, 0x15, 0x17, 0x35, \
        0x1c
#define HTTP__NIB_HI 0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0, 0, 0, 0, 0, 0, 0, 0

__attribute__((target("sse4.2"))) static inline size_t
http__scan_value_sse42(const unsigned char *b, size_t pos, size_t end)
{
    /* ranges of bytes that end a value: 0x00-0x08, 0x0a-0x1f, 0x7f */
    const __m128i ranges = _mm_setr_epi8(0x00, 0x08, 0x0a, 0x1f, 0x7f, 0x7f, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0);
    while (end - pos >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + pos));
        int i = _mm_cmpestri(ranges, 6, v, 16,
                             _SIDD_UBYTE_OPS | _SIDD_CMP_RANGES | _SIDD_LEAST_SIGNIFICANT);
        if (i != 16) return pos + (size_t)i;
        pos += 16;
    }
    return http__scan_cls_c(b, pos, end, HTTP__C_VALUE);
}

__attribute__((target("sse4.2"))) static size_t
http__scan_target_sse42(const unsigned char *b, size_t pos, size_t end)
{
    /* the 3 ranges of bytes that end a target: controls and SP, '#', DEL
     * and non-ASCII */
    const __m128i ranges = _mm_setr_epi8(0x00, 0x20, 0x23, 0x23, 0x7f, (char)0xff, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0);
    while (end - pos >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + pos));
        int i = _mm_cmpestri(ranges, 6, v, 16,
                             _SIDD_UBYTE_OPS | _SIDD_CMP_RANGES | _SIDD_LEAST_SIGNIFICANT);
        if (i != 16) return pos + (size_t)i;
        pos += 16;
    }
    return http__scan_cls_c(b, pos, end, HTTP__C_TARGET);
}

__attribute__((target("avx2"))) static inline size_t
http__scan_value_avx2(const unsigned char *b, size_t pos, size_t end)
{
    const __m256i c1f = _mm256_set1_epi8(0x1f), tab = _mm256_set1_epi8(9),
                  del = _mm256_set1_epi8(0x7f);
    while (end - pos >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(b + pos));
        __m256i ctl = _mm256_cmpeq_epi8(_mm256_min_epu8(v, c1f), v); /* v <= 0x1f */
        __m256i bad = _mm256_or_si256(_mm256_andnot_si256(_mm256_cmpeq_epi8(v, tab), ctl),
                                      _mm256_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm256_movemask_epi8(bad);
        if (m) return pos + (size_t)__builtin_ctz(m);
        pos += 32;
    }
    if (end - pos >= 16) {
        const __m128i c1f_ = _mm_set1_epi8(0x1f), tab_ = _mm_set1_epi8(9),
                      del_ = _mm_set1_epi8(0x7f);
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + pos));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, c1f_), v);
        __m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab_), ctl),
                                   _mm_cmpeq_epi8(v, del_));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m) return pos + (size_t)__builtin_ctz(m);
        pos += 16;
    }
    return http__scan_cls_c(b, pos, end, HTTP__C_VALUE);
}

__attribute__((target("avx2"))) static size_t
http__scan_target_avx2(const unsigned char *b, size_t pos, size_t end)
{
    /* good: 0x21..0x7e but '#'; as signed bytes, > 0x20 and not 0x7f
     * (non-ASCII bytes are negative) */
    const __m256i sp = _mm256_set1_epi8(0x20), del = _mm256_set1_epi8(0x7f),
                  hash = _mm256_set1_epi8('#');
    while (end - pos >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(b + pos));
        __m256i no = _mm256_or_si256(_mm256_cmpeq_epi8(v, del), _mm256_cmpeq_epi8(v, hash));
        __m256i good = _mm256_andnot_si256(no, _mm256_cmpgt_epi8(v, sp));
        unsigned m = ~(unsigned)_mm256_movemask_epi8(good);
        if (m) return pos + (size_t)__builtin_ctz(m);
        pos += 32;
    }
    if (end - pos >= 16) {
        const __m128i sp_ = _mm_set1_epi8(0x20), del_ = _mm_set1_epi8(0x7f),
                      hash_ = _mm_set1_epi8('#');
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + pos));
        __m128i no = _mm_or_si128(_mm_cmpeq_epi8(v, del_), _mm_cmpeq_epi8(v, hash_));
        __m128i good = _mm_andnot_si128(no, _mm_cmpgt_epi8(v, sp_));
        unsigned m = ~(unsigned)_mm_movemask_epi8(good) & 0xffffu;
        if (m) return pos + (size_t)__builtin_ctz(m);
        pos += 16;
    }
    return http__scan_cls_c(b, pos, end, HTTP__C_TARGET);
}
#endif /* HTTP__X86 */

/* -1: not detected yet; otherwise the level in use. */
static int http__level = -1;
static int http__level_cap = HTTP_SIMD_AVX2;

static int http__detect(void)
{
    int lv = HTTP_SIMD_NONE, cap;
#if HTTP__X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) lv = HTTP_SIMD_AVX2;
    else if (__builtin_cpu_supports("sse4.2")) lv = HTTP_SIMD_SSE42;
#endif
    cap = __atomic_load_n(&http__level_cap, __ATOMIC_RELAXED);
    if (lv > cap) lv = cap;
    __atomic_store_n(&http__level, lv, __ATOMIC_RELAXED);
    return lv;
}

static inline int http__lv(void)
{
    int lv = __atomic_load_n(&http__level, __ATOMIC_RELAXED);
    return HTTP__LIKELY(lv >= 0) ? lv : http__detect();
}

HTTP_API int http_simd_level(void)
{
    return http__lv();
}

HTTP_API int http_simd_limit(int max_level)
{
    if (max_level < HTTP_SIMD_NONE) max_level = HTTP_SIMD_NONE;
    __atomic_store_n(&http__level_cap, max_level, __ATOMIC_RELAXED);
    return http__detect();
}

static inline size_t http__scan_value(const unsigned char *b, size_t pos, size_t end)
{
#if HTTP__X86
    int lv = http__lv();
    if (lv == HTTP_SIMD_AVX2) return http__scan_value_avx2(b, pos, end);
    if (lv == HTTP_SIMD_SSE42) return http__scan_value_sse42(b, pos, end);
#endif
    return http__scan_cls_c(b, pos, end, HTTP__C_VALUE);
}

static inline size_t http__scan_target(const unsigned char *b, size_t pos, size_t end)
{
#if HTTP__X86
    int lv = http__lv();
    if (lv == HTTP_SIMD_AVX2) return http__scan_target_avx2(b, pos, end);
    if (lv == HTTP_SIMD_SSE42) return http__scan_target_sse42(b, pos, end);
#endif
    return http__scan_cls_c(b, pos, end, HTTP__C_TARGET);
}

static inline size_t http__scan_token(const unsigned char *b, size_t pos, size_t end)
{
    return http__scan_cls_c(b, pos, end, HTTP__C_TCHAR);
}

/* ---- errors ---------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *text;
    int status;
} http__errs[] = {
    {"BAD_METHOD", "invalid method", 400},
    {"BAD_TARGET", "invalid request-target", 400},
    {"URI_TOO_LONG", "request line too long", 414},
    {"BAD_VERSION", "invalid or missing HTTP version", 400},
    {"VERSION_NOT_SUPPORTED", "HTTP major version not supported", 505},
    {"BAD_STATUS", "invalid status line", 400},
    {"BARE_CR", "CR not followed by LF", 400},
    {"BARE_LF", "LF not preceded by CR", 400},
    {"OBS_FOLD", "obsolete line folding (field line starts with whitespace)", 400},
    {"HEADER_NAME", "invalid field name", 400},
    {"HEADER_NAME_SPACE", "whitespace in or after a field name", 400},
    {"HEADER_NO_COLON", "field line without a colon", 400},
    {"HEADER_VALUE_NUL", "NUL byte in a field value", 400},
    {"HEADER_VALUE_CTL", "control character in a field value", 400},
    {"HEAD_TOO_LARGE", "header section too large", 431},
    {"TOO_MANY_HEADERS", "too many header fields", 431},
    {"CL_AND_TE", "both Content-Length and Transfer-Encoding", 400},
    {"CL_MULTIPLE", "differing Content-Length values", 400},
    {"CL_INVALID", "Content-Length is not a plain decimal number", 400},
    {"TE_NOT_CHUNKED", "Transfer-Encoding does not end in a single chunked", 400},
    {"TE_UNSUPPORTED", "transfer coding not supported", 501},
    {"TE_HTTP10", "Transfer-Encoding in an HTTP/1.0 message", 400},
    {"MULTIPLE_HOST", "more than one Host field", 400},
    {"CHUNK_SIZE", "invalid chunk size", 400},
    {"CHUNK_TOO_LARGE", "chunk size has too many digits", 413},
    {"CHUNK_EXT", "invalid chunk extension", 400},
    {"CHUNK_EXT_TOO_LONG", "chunk extension too long", 400},
    {"CHUNK_CRLF", "missing CRLF in chunked framing", 400},
    {"INCOMPLETE", "stream ended inside a message", 400},
    {"MISSING_HOST", "HTTP/1.1 request without a Host field", 400},
    {"BAD_HOST", "Host is not a valid host and port", 400},
    {"CONNECT_BODY", "CONNECT request with Content-Length or Transfer-Encoding", 400},
};

static int http__is_http_err(int err)
{
    return err <= HTTP_ERR_BAD_METHOD && err >= HTTP_ERR__LAST;
}

HTTP_API const char *http_errname(int err)
{
    if (http__is_http_err(err)) return http__errs[HTTP_ERR_BAD_METHOD - err].name;
    switch (-err) {
    case 0: return "OK";
    case EINVAL: return "EINVAL";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return "UNKNOWN";
    }
}

HTTP_API const char *http_strerror(int err)
{
    if (http__is_http_err(err)) return http__errs[HTTP_ERR_BAD_METHOD - err].text;
    if (err == 0) return "success";
    if (err == -EINVAL) return "invalid argument";
    if (err == -ENOBUFS) return "buffer too small";
    if (err < 0) return strerror(-err);
    return "unknown error";
}

HTTP_API int http_error_status(int err)
{
    if (err >= 0) return 0;
    if (http__is_http_err(err)) return http__errs[HTTP_ERR_BAD_METHOD - err].status;
    return 500;
}

/* ---- parser states ---------------------------------------------------------- */

enum {
    HTTP__S_START = 0, /* before a start line (skipping empty lines) */
    HTTP__S_METHOD,
    HTTP__S_TARGET,
    HTTP__S_REQ_VERSION,
    HTTP__S_STATUS_LINE,
    HTTP__S_REASON,
    HTTP__S_FIELD_START, /* at the start of a field line or the blank line */
    HTTP__S_NAME,
    HTTP__S_VALUE, /* mark: just after the colon */
    HTTP__S_BODY_LENGTH,
    HTTP__S_BODY_EOF,
    HTTP__S_CHUNK_SIZE,
    HTTP__S_CHUNK_EXT,
    HTTP__S_CHUNK_SIZE_LF,
    HTTP__S_CHUNK_DATA,
    HTTP__S_CHUNK_DATA_CR,
    HTTP__S_CHUNK_DATA_LF,
    HTTP__S_ERROR
};

#define HTTP__F_LENIENT 1      /* lenient_bare_lf */
#define HTTP__F_RESP_HEAD 2    /* the response answers HEAD */
#define HTTP__F_RESP_CONNECT 4 /* the response answers CONNECT */
#define HTTP__F_OFFSETS 8      /* saved views hold offsets, not pointers */
#define HTTP__F_TRAILER 16     /* the field states read a trailer section */
#define HTTP__F_FINAL 32       /* the message in progress is a final response */
#define HTTP__F_NO_HOST_OK 64  /* lenient_missing_host */
#define HTTP__F_OPTIONS (HTTP__F_LENIENT | HTTP__F_NO_HOST_OK) /* kept by reset */

static size_t http__clamp(size_t v, size_t def, size_t max)
{
    if (v == 0) v = def;
    return v > max ? max : v;
}

HTTP_API void http_parse_init(http_msg_parser *p, http_kind kind, const http_options *opts)
{
    http_options o;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof o);
    memset(p, 0, sizeof *p);
    p->kind = (uint8_t)kind;
    p->max_line = (uint32_t)http__clamp(o.max_request_line, 8192, (size_t)1 << 30);
    p->max_head = (uint32_t)http__clamp(o.max_head, 32768, (size_t)1 << 30);
    p->max_headers = (uint16_t)http__clamp(o.max_headers, 100, 65535);
    p->max_digits = (uint8_t)http__clamp(o.max_chunk_digits, 16, 16);
    p->max_ext = (uint16_t)http__clamp(o.max_chunk_ext, 1024, 65535);
    if (o.lenient_bare_lf) p->flags |= HTTP__F_LENIENT;
    if (o.lenient_missing_host) p->flags |= HTTP__F_NO_HOST_OK;
}

HTTP_API void http_parse_reset(http_msg_parser *p)
{
    p->state = HTTP__S_START;
    p->pos = p->mark = 0;
    p->nfields = p->aux = 0;
    p->remaining = 0;
    p->err = 0;
    p->flags &= HTTP__F_OPTIONS;
}

HTTP_API void http_parse_response_to(http_msg_parser *p, http_method_id method)
{
    p->flags &= (uint8_t) ~(HTTP__F_RESP_HEAD | HTTP__F_RESP_CONNECT);
    if (method == HTTP_METHOD_HEAD) p->flags |= HTTP__F_RESP_HEAD;
    if (method == HTTP_METHOD_CONNECT) p->flags |= HTTP__F_RESP_CONNECT;
}

HTTP_API size_t http_parse_error_offset(const http_msg_parser *p)
{
    return p->state == HTTP__S_ERROR ? (size_t)p->remaining : 0;
}

/* Enters the sticky error. The offset goes into the 64-bit `remaining`,
 * which an error no longer needs: a body call can find an error more than
 * 4 GiB into its buf (after a big chunk's data), so 32-bit pos would not do. */
static int http__fail(http_msg_parser *p, int err, size_t at)
{
    p->state = HTTP__S_ERROR;
    p->err = (uint8_t)(HTTP_ERR_BAD_METHOD - err);
    p->remaining = at;
    return err;
}

/* The message is complete: get ready for the next one. */
static void http__done(http_msg_parser *p)
{
    uint8_t keep = HTTP__F_OPTIONS;
    if (!(p->flags & HTTP__F_FINAL)) keep |= HTTP__F_RESP_HEAD | HTTP__F_RESP_CONNECT;
    p->flags &= keep;
    p->state = HTTP__S_START;
    p->pos = p->mark = 0;
    p->nfields = p->aux = 0;
    p->remaining = 0;
}

/* ---- views saved across calls as offsets -------------------------------------- */

static void http__to_off(http_str *s, const char *base)
{
    s->ptr = (const char *)(uintptr_t)(s->ptr - base);
}

static void http__from_off(http_str *s, const char *base)
{
    s->ptr = base + (uintptr_t)s->ptr;
}

/* Converts the views set so far (fields [0, n), the name of field n when its
 * value is being read, and the start-line views of m) between pointers into
 * base and offsets from base. */
static void http__rebase(const http_msg_parser *p, http_message *m, http_header *h, size_t n,
                         const char *base, bool to_off)
{
    void (*f)(http_str *, const char *) = to_off ? http__to_off : http__from_off;
    size_t i;
    if (h) {
        for (i = 0; i < n; i++) {
            f(&h[i].name, base);
            f(&h[i].value, base);
        }
        if (p->state == HTTP__S_VALUE) f(&h[n].name, base);
    }
    if (m && !(p->flags & HTTP__F_TRAILER)) {
        if (p->kind == HTTP_KIND_REQUEST) {
            if (p->state > HTTP__S_METHOD) f(&m->method_name, base);
            if (p->state > HTTP__S_TARGET) f(&m->target, base);
        } else if (p->state > HTTP__S_REASON) {
            f(&m->reason, base);
        }
    }
}

/* ---- header fields (heads and trailer sections) --------------------------------
 * Reads field lines from pos up to and including the blank line. Returns the
 * offset after the blank line, 0 when more bytes are needed (state and pos
 * saved in p), or an error. h may be NULL (fields are checked, not stored);
 * limit is the most fields allowed.
 *
 * The loop is written once and compiled once per SIMD level (lv is a
 * constant in each copy), so that the scanner of that level is inlined into
 * it; http__fields picks the copy. */
#if defined(__GNUC__) || defined(__clang__)
#define HTTP__ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define HTTP__ALWAYS_INLINE static inline
#endif

/* The SIMD copies classify the bytes 64 at a time into two bit masks, "ends
 * a field value" (controls but HTAB) and "ends a field name" (not a tchar),
 * and find the end of each name and value with a shift and a bit scan. The
 * scalar copy scans byte by byte. */
typedef struct http__blk {
    size_t base;  /* the masks describe bytes [base, base + 64) */
    uint64_t v;   /* bit i: byte base + i ends a value */
    uint64_t n;   /* bit i: byte base + i ends a name */
} http__blk;

#if HTTP__X86
__attribute__((target("avx2"))) static inline void http__masks_avx2(const unsigned char *s,
                                                                    http__blk *k)
{
    const __m256i c1f = _mm256_set1_epi8(0x1f), tab = _mm256_set1_epi8(9),
                  del = _mm256_set1_epi8(0x7f), nib = _mm256_set1_epi8(0x0f),
                  lo_t = _mm256_setr_epi8(HTTP__TOK_LO, HTTP__TOK_LO),
                  hi_t = _mm256_setr_epi8(HTTP__NIB_HI, HTTP__NIB_HI),
                  zero = _mm256_setzero_si256();
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(s + 32));
#define HTTP__MASKS32(x, v, n)                                                                 \
    do {                                                                                       \
        __m256i ctl = _mm256_cmpeq_epi8(_mm256_min_epu8(x, c1f), x);                           \
        __m256i bv = _mm256_or_si256(_mm256_andnot_si256(_mm256_cmpeq_epi8(x, tab), ctl),      \
                                     _mm256_cmpeq_epi8(x, del));                               \
        __m256i lo = _mm256_shuffle_epi8(lo_t, _mm256_and_si256(x, nib));                      \
        __m256i hi = _mm256_shuffle_epi8(hi_t, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib)); \
        __m256i bn = _mm256_cmpeq_epi8(_mm256_and_si256(lo, hi), zero);                        \
        v = (uint32_t)_mm256_movemask_epi8(bv);                                                \
        n = (uint32_t)_mm256_movemask_epi8(bn);                                                \
    } while (0)
    uint64_t v0, v1, n0, n1;
    HTTP__MASKS32(x0, v0, n0);
    HTTP__MASKS32(x1, v1, n1);
#undef HTTP__MASKS32
    k->v = v0 | v1 << 32;
    k->n = n0 | n1 << 32;
}

__attribute__((target("sse4.2"))) static inline void http__masks_sse42(const unsigned char *s,
                                                                      http__blk *k)
{
    const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8(9), del = _mm_set1_epi8(0x7f),
                  nib = _mm_set1_epi8(0x0f), lo_t = _mm_setr_epi8(HTTP__TOK_LO),
                  hi_t = _mm_setr_epi8(HTTP__NIB_HI), zero = _mm_setzero_si128();
    uint64_t v = 0, n = 0;
    int i;
    for (i = 0; i < 4; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * i));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, c1f), x);
        __m128i bv = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl),
                                  _mm_cmpeq_epi8(x, del));
        __m128i lo = _mm_shuffle_epi8(lo_t, _mm_and_si128(x, nib));
        __m128i hi = _mm_shuffle_epi8(hi_t, _mm_and_si128(_mm_srli_epi16(x, 4), nib));
        __m128i bn = _mm_cmpeq_epi8(_mm_and_si128(lo, hi), zero);
        v |= (uint64_t)(uint32_t)_mm_movemask_epi8(bv) << (16 * i);
        n |= (uint64_t)(uint32_t)_mm_movemask_epi8(bn) << (16 * i);
    }
    k->v = v;
    k->n = n;
}
#endif

/* Classifies the 64 bytes from base. Fewer than 64 before end: classifies
 * the 64 bytes that end at end (the caller makes sure end >= 64) and shifts,
 * the bytes past end counting as stops; nothing at or past end is read. */
HTTP__ALWAYS_INLINE void http__blk_load(http__blk *k, const unsigned char *b, size_t base,
                                        size_t end, int lv)
{
#if HTTP__X86
    size_t at = end - base < 64 ? end - 64 : base;
    if (lv == HTTP_SIMD_AVX2) http__masks_avx2(b + at, k);
    else http__masks_sse42(b + at, k);
    if (at != base) {
        unsigned sh = (unsigned)(base - at); /* 1..63 */
        uint64_t past = ~(uint64_t)0 << (64 - sh);
        k->v = (k->v >> sh) | past;
        k->n = (k->n >> sh) | past;
    }
#else
    (void)b, (void)end, (void)lv;
    k->v = k->n = ~(uint64_t)0;
#endif
    k->base = base;
}

/* The first offset >= pos (< end) whose bit is set in the value mask (which
 * = 0) or the name mask (which = 1), or end. */
HTTP__ALWAYS_INLINE size_t http__blk_next(http__blk *k, const unsigned char *b, size_t pos,
                                          size_t end, int which, int lv)
{
    for (;;) {
        size_t off = pos - k->base;
        if (off < 64) {
            uint64_t m = (which ? k->n : k->v) >> off;
            if (m) return pos + (size_t)__builtin_ctzll(m); /* <= end: bits past end are set */
            pos = k->base + 64;
        }
        if (pos >= end) return end;
        http__blk_load(k, b, pos, end, lv);
    }
}

HTTP__ALWAYS_INLINE ptrdiff_t http__fields_t(http_msg_parser *p, const unsigned char *b,
                                             size_t pos, size_t end, size_t len, http_header *h,
                                             size_t limit, int lv)
{
    size_t n = p->nfields, mark = p->mark, vend, ve = 0;
    unsigned char c;
    bool lenient = (p->flags & HTTP__F_LENIENT) != 0;
    http__blk k;

    k.base = pos;
    k.v = k.n = 0;
    if (lv != HTTP_SIMD_NONE && pos < end) http__blk_load(&k, b, pos, end, lv);
    switch (p->state) {
    case HTTP__S_NAME:
        if (lv != HTTP_SIMD_NONE) ve = http__blk_next(&k, b, mark, end, 0, lv);
        goto name;
    case HTTP__S_VALUE: goto value;
    default: break;
    }

    for (;;) {
        /* at the start of a line */
        if (HTTP__UNLIKELY(pos >= end)) {
            p->state = HTTP__S_FIELD_START;
            goto more;
        }
        c = b[pos];
        if (HTTP__UNLIKELY(!(http__cls[c] & HTTP__C_TCHAR))) {
            /* not a field name: the blank line, or an error */
            if (c == '\r') {
                if (pos + 1 >= end) {
                    p->state = HTTP__S_FIELD_START;
                    goto more;
                }
                if (b[pos + 1] != '\n') return http__fail(p, HTTP_ERR_BARE_CR, pos);
                p->nfields = (uint16_t)n;
                return (ptrdiff_t)(pos + 2);
            }
            if (c == '\n') {
                if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, pos);
                p->nfields = (uint16_t)n;
                return (ptrdiff_t)(pos + 1);
            }
            if (c == ' ' || c == '\t') return http__fail(p, HTTP_ERR_OBS_FOLD, pos);
            return http__fail(p, HTTP_ERR_HEADER_NAME, pos); /* ':' (empty name) or a bad byte */
        }
        if (HTTP__UNLIKELY(n >= limit)) return http__fail(p, HTTP_ERR_TOO_MANY_HEADERS, pos);
        mark = pos;
        if (lv != HTTP_SIMD_NONE) {
            /* The value ends at the first value stop after the line start
             * (name bytes and ':' never are one): find it now, beside the
             * name's end, rather than after it. */
            size_t ne = http__blk_next(&k, b, pos, end, 1, lv);
            ve = http__blk_next(&k, b, pos, end, 0, lv);
            pos = ne;
        } else {
            pos = http__scan_cls_c(b, pos, end, HTTP__C_TCHAR);
        }
        if (0) {
        name: /* resumed inside a name; ve is set */
            if (lv != HTTP_SIMD_NONE) pos = http__blk_next(&k, b, pos, end, 1, lv);
            else pos = http__scan_cls_c(b, pos, end, HTTP__C_TCHAR);
        }
        if (HTTP__UNLIKELY(pos >= end)) {
            p->state = HTTP__S_NAME;
            goto more;
        }
        c = b[pos];
        if (HTTP__UNLIKELY(c != ':')) {
            int e = (c == ' ' || c == '\t')   ? HTTP_ERR_HEADER_NAME_SPACE
                    : (c == '\r' || c == '\n') ? HTTP_ERR_HEADER_NO_COLON
                                               : HTTP_ERR_HEADER_NAME;
            return http__fail(p, e, pos);
        }
        if (h) { /* (the name is not empty: its first byte is a tchar) */
            h[n].name.ptr = (const char *)b + mark;
            h[n].name.len = pos - mark;
        }
        mark = ++pos; /* the value with its surrounding whitespace starts here */
        if (lv != HTTP_SIMD_NONE) pos = ve;
        else pos = http__scan_cls_c(b, pos, end, HTTP__C_VALUE);
        if (0) {
        value: /* resumed inside a value */
            if (lv != HTTP_SIMD_NONE) pos = http__blk_next(&k, b, pos, end, 0, lv);
            else pos = http__scan_cls_c(b, pos, end, HTTP__C_VALUE);
        }
        if (HTTP__UNLIKELY(pos >= end)) {
            p->state = HTTP__S_VALUE;
            goto more;
        }
        c = b[pos];
        if (HTTP__LIKELY(c == '\r')) {
            if (pos + 1 >= end) {
                p->state = HTTP__S_VALUE;
                goto more;
            }
            if (HTTP__UNLIKELY(b[pos + 1] != '\n')) return http__fail(p, HTTP_ERR_BARE_CR, pos);
            vend = pos;
            pos += 2;
        } else if (c == '\n') {
            if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, pos);
            vend = pos;
            pos += 1;
        } else {
            return http__fail(p, c == 0 ? HTTP_ERR_HEADER_VALUE_NUL : HTTP_ERR_HEADER_VALUE_CTL,
                              pos);
        }
        /* trim: b[vend] is CR or LF, so the first loop stops by itself */
        while (b[mark] == ' ' || b[mark] == '\t') mark++;
        while ((b[vend - 1] == ' ' || b[vend - 1] == '\t') && vend > mark) vend--;
        if (h) {
            h[n].value.ptr = (const char *)b + mark;
            h[n].value.len = vend - mark;
        }
        n++;
    }

more:
    if (end < len) return http__fail(p, HTTP_ERR_HEAD_TOO_LARGE, end);
    p->pos = (uint32_t)pos;
    p->mark = (uint32_t)mark;
    p->nfields = (uint16_t)n;
    return 0;
}

#if HTTP__X86
__attribute__((target("avx2"))) static ptrdiff_t
http__fields_avx2(http_msg_parser *p, const unsigned char *b, size_t pos, size_t end, size_t len,
                  http_header *h, size_t limit)
{
    return http__fields_t(p, b, pos, end, len, h, limit, HTTP_SIMD_AVX2);
}

__attribute__((target("sse4.2"))) static ptrdiff_t
http__fields_sse42(http_msg_parser *p, const unsigned char *b, size_t pos, size_t end, size_t len,
                   http_header *h, size_t limit)
{
    return http__fields_t(p, b, pos, end, len, h, limit, HTTP_SIMD_SSE42);
}
#endif

static ptrdiff_t http__fields_c(http_msg_parser *p, const unsigned char *b, size_t pos,
                                size_t end, size_t len, http_header *h, size_t limit)
{
    return http__fields_t(p, b, pos, end, len, h, limit, HTTP_SIMD_NONE);
}

static ptrdiff_t http__fields(http_msg_parser *p, const unsigned char *b, size_t pos, size_t end,
                              size_t len, http_header *h, size_t limit)
{
#if HTTP__X86
    /* the block scan needs 64 readable bytes; shorter heads go byte by byte */
    int lv = end >= 64 ? http__lv() : HTTP_SIMD_NONE;
    if (lv == HTTP_SIMD_AVX2) return http__fields_avx2(p, b, pos, end, len, h, limit);
    if (lv == HTTP_SIMD_SSE42) return http__fields_sse42(p, b, pos, end, len, h, limit);
#endif
    return http__fields_c(p, b, pos, end, len, h, limit);
}

/* ---- hosts: uri-host [":" port] (RFC 3986 section 3.2.2) ------------------------ */

/* dec-octet "." dec-octet "." dec-octet "." dec-octet (no leading zeros) */
static bool http__ipv4_ok(const unsigned char *s, size_t n)
{
    size_t i = 0, st;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0;
        if (part && (i >= n || s[i++] != '.')) return false;
        for (st = i; i < n && i - st < 3 && (unsigned)s[i] - '0' < 10u; i++)
            v = v * 10 + ((unsigned)s[i] - '0');
        if (i == st || v > 255 || (s[st] == '0' && i - st > 1)) return false;
    }
    return i == n;
}

/* IPv6address: eight 16-bit groups of 1 to 4 hex digits, fewer with one
 * "::" standing for the missing ones, the last two possibly written as an
 * IPv4 address. */
static bool http__ipv6_ok(const unsigned char *s, size_t n)
{
    size_t i = 0, st, groups = 0;
    bool gap = false;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = true;
        i = 2;
    }
    while (i < n) {
        for (st = i; i < n && i - st < 5 && http__hexval(s[i]) >= 0; i++) {}
        if (i < n && s[i] == '.') { /* the last 32 bits as IPv4 */
            if (!http__ipv4_ok(s + st, n - st)) return false;
            groups += 2;
            break;
        }
        if (i == st || i - st > 4) return false;
        groups++;
        if (i == n) break;
        if (s[i++] != ':') return false;
        if (i < n && s[i] == ':') {
            if (gap) return false; /* a second "::" */
            gap = true;
            i++;
        } else if (i == n) {
            return false; /* a trailing single ':' */
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

/* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
static bool http__ipfuture_ok(const unsigned char *s, size_t n)
{
    size_t i = 1;
    if (n < 4 || (s[0] | 0x20) != 'v') return false;
    while (i < n && http__hexval(s[i]) >= 0) i++;
    if (i == 1 || i + 1 >= n || s[i] != '.') return false;
    for (i++; i < n; i++)
        if (!(http__cls[s[i]] & HTTP__C_REGNAME) && s[i] != ':') return false;
    return true;
}

#define HTTP__HOST_NAME 1 /* the host may not be empty */
#define HTTP__HOST_PORT 2 /* the port may not be missing or empty */

/* Whether s[0..n) is uri-host [":" port]: an IP-literal in brackets or a
 * reg-name (unreserved, sub-delims, %XX; IPv4 addresses are reg-names
 * too), then optionally ':' and digits. The grammar allows an empty host
 * and an empty port; `need` (HTTP__HOST_*) can require them. */
static bool http__host_ok(const unsigned char *s, size_t n, unsigned need)
{
    size_t i = 0;
    if (n && s[0] == '[') {
        const unsigned char *close = (const unsigned char *)memchr(s, ']', n);
        if (!close) return false;
        i = (size_t)(close - s);
        if (!http__ipv6_ok(s + 1, i - 1) && !http__ipfuture_ok(s + 1, i - 1)) return false;
        i++;
    } else {
        for (;;) {
            i = http__scan_cls_c(s, i, n, HTTP__C_REGNAME);
            if (n - i >= 3 && s[i] == '%' && http__hexval(s[i + 1]) >= 0 &&
                http__hexval(s[i + 2]) >= 0)
                i += 3;
            else break;
        }
        if (i == 0 && (need & HTTP__HOST_NAME)) return false;
    }
    if (i == n) return !(need & HTTP__HOST_PORT);
    if (s[i++] != ':') return false;
    if (i == n && (need & HTTP__HOST_PORT)) return false;
    for (; i < n; i++)
        if ((unsigned)s[i] - '0' > 9u) return false;
    return true;
}

/* Every request's Host is checked, so the common values, a reg-name and an
 * optional ":port" of at most 16 (SSE4.2) or 32 (AVX2) bytes, are checked
 * with one vector load: bytes that are neither reg-name bytes nor ':', the
 * colons, the digits, as bit masks. s[0..n) is the value and s[0..avail)
 * may be read (the rest of the head follows it). A quick check says 1 only
 * for a valid value; 0 means "not that simple case" (percent escapes,
 * brackets, or an invalid value) and http__host_ok decides. */
#if HTTP__X86
static inline int http__host_masks(uint32_t bad, uint32_t colon, uint32_t digit, uint32_t all)
{
    uint32_t after;
    if (bad & all) return 0;
    colon &= all;
    if (!colon) return 1;                           /* a reg-name */
    after = all & ~((colon & (0u - colon)) * 2 - 1); /* the bytes after the first ':' */
    return (after & ~digit) == 0;                   /* all digits (so no second ':') */
}

__attribute__((target("sse4.2"))) static int http__host_quick_sse42(const unsigned char *s,
                                                                    size_t n)
{
    const __m128i nib = _mm_set1_epi8(0x0f), lo_t = _mm_setr_epi8(HTTP__HOST_LO),
                  hi_t = _mm_setr_epi8(HTTP__NIB_HI), nine = _mm_set1_epi8(9);
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i lo = _mm_shuffle_epi8(lo_t, _mm_and_si128(x, nib));
    __m128i hi = _mm_shuffle_epi8(hi_t, _mm_and_si128(_mm_srli_epi16(x, 4), nib));
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    uint32_t bad =
        (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128()));
    uint32_t colon = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')));
    uint32_t digit = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, nine), d));
    return http__host_masks(bad, colon, digit, (uint32_t)((1u << n) - 1)); /* n <= 16 */
}

__attribute__((target("avx2"))) static int http__host_quick_avx2(const unsigned char *s, size_t n)
{
    const __m256i nib = _mm256_set1_epi8(0x0f),
                  lo_t = _mm256_setr_epi8(HTTP__HOST_LO, HTTP__HOST_LO),
                  hi_t = _mm256_setr_epi8(HTTP__NIB_HI, HTTP__NIB_HI), nine = _mm256_set1_epi8(9);
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i lo = _mm256_shuffle_epi8(lo_t, _mm256_and_si256(x, nib));
    __m256i hi = _mm256_shuffle_epi8(hi_t, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
    __m256i d = _mm256_sub_epi8(x, _mm256_set1_epi8('0'));
    uint32_t bad = (uint32_t)_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_and_si256(lo, hi), _mm256_setzero_si256()));
    uint32_t colon = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(':')));
    uint32_t digit = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(d, nine), d));
    return http__host_masks(bad, colon, digit, n >= 32 ? ~0u : (uint32_t)((1u << n) - 1));
}
#endif

/* Whether a Host field's value s[0..n) is valid; s[0..avail) is readable. */
static bool http__host_value_ok(const unsigned char *s, size_t n, size_t avail)
{
    size_t i;
#if HTTP__X86
    int lv = http__lv();
    if (lv >= HTTP_SIMD_SSE42 && n <= 16 && avail >= 16) {
        if (http__host_quick_sse42(s, n)) return true;
        return http__host_ok(s, n, 0);
    }
    if (lv == HTTP_SIMD_AVX2 && n <= 32 && avail >= 32) {
        if (http__host_quick_avx2(s, n)) return true;
        return http__host_ok(s, n, 0);
    }
#else
    (void)avail;
#endif
    /* the same quick case byte by byte, without a call */
    i = http__scan_cls_c(s, 0, n, HTTP__C_REGNAME);
    if (i < n && s[i] == ':')
        for (i++; i < n && (unsigned)s[i] - '0' < 10u; i++) {}
    return i == n || http__host_ok(s, n, 0);
}

/* ---- start lines ------------------------------------------------------------------ */

static http_method_id http__method(const unsigned char *s, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(s, "GET", 3) == 0) return HTTP_METHOD_GET;
        if (memcmp(s, "PUT", 3) == 0) return HTTP_METHOD_PUT;
        break;
    case 4:
        if (memcmp(s, "POST", 4) == 0) return HTTP_METHOD_POST;
        if (memcmp(s, "HEAD", 4) == 0) return HTTP_METHOD_HEAD;
        break;
    case 5:
        if (memcmp(s, "PATCH", 5) == 0) return HTTP_METHOD_PATCH;
        if (memcmp(s, "TRACE", 5) == 0) return HTTP_METHOD_TRACE;
        break;
    case 6:
        if (memcmp(s, "DELETE", 6) == 0) return HTTP_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(s, "OPTIONS", 7) == 0) return HTTP_METHOD_OPTIONS;
        if (memcmp(s, "CONNECT", 7) == 0) return HTTP_METHOD_CONNECT;
        break;
    default: break;
    }
    return HTTP_METHOD_OTHER;
}

/* Checks "HTTP/d.d" at pos, byte by byte as far as bytes are present.
 * Returns 8 (and the minor version) when complete, 0 when more bytes are
 * needed, or an error with *at set to the offending byte. */
static int http__version(const unsigned char *b, size_t pos, size_t end, int *minor, size_t *at)
{
    size_t i;
    if (HTTP__LIKELY(end - pos >= 8)) {
        if (memcmp(b + pos, "HTTP/1.1", 8) == 0) {
            *minor = 1;
            return 8;
        }
        if (memcmp(b + pos, "HTTP/1.0", 8) == 0) {
            *minor = 0;
            return 8;
        }
    }
    for (i = 0; i < 8; i++) {
        unsigned c;
        if (pos + i >= end) return 0;
        c = b[pos + i];
        *at = pos + i;
        if (i < 5) {
            if (c != (unsigned char)"HTTP/"[i]) return HTTP_ERR_BAD_VERSION;
        } else if (i == 6) {
            if (c != '.') return HTTP_ERR_BAD_VERSION;
        } else {
            if (c - '0' > 9) return HTTP_ERR_BAD_VERSION;
            if (i == 5 && c != '1') return HTTP_ERR_VERSION_NOT_SUPPORTED;
        }
    }
    *minor = b[pos + 7] - '0';
    return 8;
}

/* Checks the form of a request-target against its method. Its bytes are
 * already known to be HTTP__C_TARGET bytes. */
static bool http__target_ok(http_method_id method, const unsigned char *t, size_t n,
                            http_target_form *form)
{
    size_t i, a;
    if (method == HTTP_METHOD_CONNECT) {
        /* authority-form: uri-host ":" port, both present (RFC 9112 3.2.3) */
        *form = HTTP_TARGET_AUTHORITY;
        return http__host_ok(t, n, HTTP__HOST_NAME | HTTP__HOST_PORT);
    }
    if (t[0] == '/') {
        *form = HTTP_TARGET_ORIGIN;
        return true;
    }
    if (n == 1 && t[0] == '*') {
        *form = HTTP_TARGET_ASTERISK;
        return method == HTTP_METHOD_OPTIONS;
    }
    /* absolute-form: scheme ":" ["//" authority] path [ "?" query ] */
    if (!((unsigned)(t[0] | 0x20) - 'a' < 26u)) return false;
    for (i = 1; i < n; i++) {
        unsigned c = t[i];
        if (c == ':') break;
        if (!((c | 0x20) - 'a' < 26u || c - '0' < 10u || c == '+' || c == '-' || c == '.'))
            return false;
    }
    if (i >= n - 1) return false;
    i++;
    if (n - i >= 2 && t[i] == '/' && t[i + 1] == '/') {
        /* the authority, without userinfo (RFC 9110 4.2.4): '@' is no
         * host byte, so http__host_ok refuses "user@host" */
        for (a = i += 2; i < n && t[i] != '/' && t[i] != '?'; i++) {}
        if (!http__host_ok(t + a, i - a, HTTP__HOST_NAME)) return false;
    }
    *form = HTTP_TARGET_ABSOLUTE;
    return true;
}

/* ---- facts from the fields ------------------------------------------------------- */

static bool http__cl_value(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    if (n == 0) return false;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) return false;
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Calls fn for each element of a comma-separated list, trimmed. */
typedef struct http__list {
    const char *p, *end;
} http__list;

static bool http__list_next(http__list *l, http_str *el)
{
    while (l->p < l->end) {
        const char *s = l->p, *e = s;
        while (e < l->end && *e != ',') e++; /* (lists are short: no memchr call) */
        l->p = e < l->end ? e + 1 : e;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e > s) {
            el->ptr = s;
            el->len = (size_t)(e - s);
            return true;
        }
    }
    return false;
}

/* Bit (first letter & 31) of http__fact_tab[length] is set for the names
 * http__facts reads: host, expect, upgrade, connection, content-length,
 * transfer-encoding. A cheap filter that skips every other field. */
static const uint32_t http__fact_tab[18] = {
    0, 0, 0, 0, 1u << ('h' & 31), 0, 1u << ('e' & 31), 1u << ('u' & 31), 0, 0,
    1u << ('c' & 31), 0, 0, 0, 1u << ('c' & 31), 0, 0, 1u << ('t' & 31)};

/* Works out body, keep-alive, upgrade and expectations; checks framing and
 * Host. blank: offset in buf of the head's blank line. */
static int http__facts(http_msg_parser *p, http_message *m, const char *buf, size_t blank)
{
    int hosts = 0, te = 0, chunked_count = 0;
    bool last_chunked = false, other = false, upgrade_field = false;
    bool request = p->kind == HTTP_KIND_REQUEST;
    size_t te_at = 0, cl_at = 0;
    const http_header *f = m->headers, *fend = f ? f + m->num_headers : f;

    for (; f < fend; f++) {
        const char *nm = f->name.ptr;
        http__list l;
        http_str el;
        if (HTTP__LIKELY(f->name.len >= 18 ||
                         !((http__fact_tab[f->name.len] >> (nm[0] & 31)) & 1)))
            continue;
        switch (f->name.len) {
        case 4:
            if (!request || !http__ieq_tok(nm, "host", 4)) break;
            if (++hosts > 1) return http__fail(p, HTTP_ERR_MULTIPLE_HOST, (size_t)(nm - buf));
            /* (the head, through its blank line, follows the value) */
            if (!http__host_value_ok((const unsigned char *)f->value.ptr, f->value.len,
                                     (size_t)(buf + blank + 1 - f->value.ptr)))
                return http__fail(p, HTTP_ERR_BAD_HOST, (size_t)(f->value.ptr - buf));
            break;
        case 6:
            if (http__ieq_tok(nm, "expect", 6)) {
                if (f->value.len == 12 && http__ieq_tok(f->value.ptr, "100-continue", 12))
                    m->expect_continue = true;
                else
                    m->expect_unknown = true;
            }
            break;
        case 7:
            if (http__ieq_tok(nm, "upgrade", 7)) upgrade_field = true;
            break;
        case 10:
            if (!http__ieq_tok(nm, "connection", 10)) break;
            l.p = f->value.ptr;
            l.end = f->value.ptr + f->value.len;
            while (http__list_next(&l, &el)) {
                if (el.len == 5 && http__ieq_tok(el.ptr, "close", 5)) m->connection_close = true;
                else if (el.len == 10 && http__ieq_tok(el.ptr, "keep-alive", 10))
                    m->connection_keep_alive = true;
                else if (el.len == 7 && http__ieq_tok(el.ptr, "upgrade", 7))
                    m->connection_upgrade = true;
            }
            break;
        case 14: {
            uint64_t v;
            if (!http__ieq_tok(nm, "content-length", 14)) break;
            if (!http__cl_value(f->value.ptr, f->value.len, &v))
                return http__fail(p, HTTP_ERR_CL_INVALID, (size_t)(f->value.ptr - buf));
            if (m->has_content_length && v != m->content_length)
                return http__fail(p, HTTP_ERR_CL_MULTIPLE, (size_t)(f->value.ptr - buf));
            m->has_content_length = true;
            m->content_length = v;
            cl_at = (size_t)(nm - buf);
            break;
        }
        case 17:
            if (!http__ieq_tok(nm, "transfer-encoding", 17)) break;
            if (!te) te_at = (size_t)(nm - buf);
            te = 1;
            l.p = f->value.ptr;
            l.end = f->value.ptr + f->value.len;
            while (http__list_next(&l, &el)) {
                if (last_chunked) other = true; /* something after chunked */
                last_chunked = el.len == 7 && http__ieq_tok(el.ptr, "chunked", 7);
                if (last_chunked) chunked_count++;
                else other = true;
            }
            break;
        default: break;
        }
    }
    if (m->version_minor == 0 && m->connection_keep_alive && !m->connection_close)
        m->keep_alive = true;
    else if (m->version_minor >= 1 && !m->connection_close)
        m->keep_alive = true;
    if (m->version_minor == 0) m->expect_continue = false;

    if (te) {
        if (m->has_content_length)
            return http__fail(p, HTTP_ERR_CL_AND_TE, te_at > cl_at ? te_at : cl_at);
        if (m->version_minor == 0) return http__fail(p, HTTP_ERR_TE_HTTP10, te_at);
    }

    if (request) {
        if (m->method == HTTP_METHOD_CONNECT) {
            /* Content in a CONNECT request has no meaning (RFC 9110 section
             * 9.3.6): a front end that framed it by its Content-Length would
             * take the tunnel's first bytes for a body, and this parser
             * would not. Refuse rather than disagree. */
            if (te) return http__fail(p, HTTP_ERR_CONNECT_BODY, te_at);
            if (m->content_length > 0) return http__fail(p, HTTP_ERR_CONNECT_BODY, cl_at);
            m->upgrade = true;
        } else {
            /* a server ignores Upgrade in an HTTP/1.0 request (RFC 9110 7.8) */
            m->upgrade = m->version_minor >= 1 && m->connection_upgrade && upgrade_field;
            if (te) {
                if (!last_chunked || chunked_count > 1)
                    return http__fail(p, HTTP_ERR_TE_NOT_CHUNKED, te_at);
                if (other) return http__fail(p, HTTP_ERR_TE_UNSUPPORTED, te_at);
                m->body = HTTP_BODY_CHUNKED;
                m->chunked = true;
            } else if (m->has_content_length && m->content_length > 0) {
                m->body = HTTP_BODY_LENGTH;
            }
        }
        /* RFC 9112 section 3.2: an HTTP/1.1 request without Host gets a 400;
         * the missing field is noticed at the blank line */
        if (!hosts && m->version_minor >= 1 && !(p->flags & HTTP__F_NO_HOST_OK))
            return http__fail(p, HTTP_ERR_MISSING_HOST, blank);
        return 0;
    }

    /* responses */
    if (m->status == 101) m->upgrade = true;
    if ((p->flags & HTTP__F_RESP_CONNECT) && m->status / 100 == 2) {
        m->upgrade = true;
        m->body = HTTP_BODY_NONE;
        return 0;
    }
    if (m->status < 200 || m->status == 204 || m->status == 304 ||
        (p->flags & HTTP__F_RESP_HEAD)) {
        m->body = HTTP_BODY_NONE;
        return 0;
    }
    if (te) {
        if (last_chunked && chunked_count == 1) {
            m->body = HTTP_BODY_CHUNKED;
            m->chunked = true;
            m->other_codings = other;
        } else if (chunked_count > (last_chunked ? 1 : 0)) {
            return http__fail(p, HTTP_ERR_TE_NOT_CHUNKED, te_at);
        } else {
            m->body = HTTP_BODY_UNTIL_CLOSE;
            m->other_codings = true;
        }
    } else if (m->has_content_length) {
        m->body = m->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    } else {
        m->body = HTTP_BODY_UNTIL_CLOSE;
    }
    if (m->body == HTTP_BODY_UNTIL_CLOSE) m->keep_alive = false;
    return 0;
}

/* ---- http_parse_head ------------------------------------------------------------ */


HTTP_API int http_parse_head(http_msg_parser *p, const char *buf, size_t len, http_message *m,
                             http_header *headers, size_t max)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t pos = p->pos, mark = p->mark, end, limit, ls, lim;
    bool lenient = (p->flags & HTTP__F_LENIENT) != 0;
    ptrdiff_t r;
    int e, minor = 1;
    unsigned char c;

    if (HTTP__UNLIKELY(p->state >= HTTP__S_BODY_LENGTH)) {
        if (p->state == HTTP__S_ERROR) return HTTP_ERR_BAD_METHOD - (int)p->err;
        return -EINVAL; /* a body is in progress */
    }
    if (p->state != HTTP__S_START && (p->flags & HTTP__F_OFFSETS)) {
        http__rebase(p, m, headers, p->nfields, buf, false);
        p->flags &= (uint8_t)~HTTP__F_OFFSETS;
    }
    m->headers = headers;
    limit = max < p->max_headers ? max : p->max_headers;
    if (!headers) limit = 0;
    end = len < p->max_head ? len : p->max_head;

    switch (p->state) {
    case HTTP__S_START: break;
    case HTTP__S_METHOD: goto method;
    case HTTP__S_TARGET: goto target;
    case HTTP__S_REQ_VERSION: goto req_version;
    case HTTP__S_STATUS_LINE: goto status_line;
    case HTTP__S_REASON: goto reason;
    default: goto fields;
    }

    /* empty lines before the start line */
    for (;;) {
        if (pos >= end) goto more;
        c = b[pos];
        if (c == '\r') {
            if (pos + 1 >= end) goto more;
            if (b[pos + 1] != '\n') return http__fail(p, HTTP_ERR_BARE_CR, pos);
            pos += 2;
        } else if (c == '\n') {
            if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, pos);
            pos++;
        } else {
            break;
        }
    }
    mark = pos;
    if (p->kind == HTTP_KIND_RESPONSE) {
        p->state = HTTP__S_STATUS_LINE;
        goto status_line;
    }

    /* request line: method SP target SP version CRLF */
    p->state = HTTP__S_METHOD;
    if (HTTP__LIKELY(end - pos >= 4) && memcmp(b + pos, "GET ", 4) == 0) {
        m->method = HTTP_METHOD_GET;
        pos += 3;
    } else {
    method:
        lim = mark + p->max_line + 1; /* scan no further than the first byte too many */
        pos = http__scan_token(b, pos, end < lim ? end : lim);
        if (pos - mark > p->max_line) return http__fail(p, HTTP_ERR_URI_TOO_LONG, pos - 1);
        if (pos >= end) goto more;
        if (b[pos] != ' ' || pos == mark) return http__fail(p, HTTP_ERR_BAD_METHOD, pos);
        m->method = http__method(b + mark, pos - mark);
    }
    m->method_name.ptr = buf + mark;
    m->method_name.len = pos - mark;
    p->state = HTTP__S_TARGET;
    mark = ++pos;
target:
    ls = (size_t)(m->method_name.ptr - buf);
    lim = ls + p->max_line + 1;
    if (lim > end) lim = end;
    pos = http__scan_target(b, pos, lim);
    if (pos - ls > p->max_line) return http__fail(p, HTTP_ERR_URI_TOO_LONG, pos - 1);
    if (pos >= end) goto more;
    c = b[pos];
    if (c != ' ' || pos == mark) {
        e = (c == '\r' || c == '\n') && pos > mark ? HTTP_ERR_BAD_VERSION : HTTP_ERR_BAD_TARGET;
        return http__fail(p, e, pos);
    }
    m->target.ptr = buf + mark;
    m->target.len = pos - mark;
    if (HTTP__UNLIKELY(!http__target_ok(m->method, b + mark, pos - mark, &m->target_form)))
        return http__fail(p, HTTP_ERR_BAD_TARGET, mark);
    p->state = HTTP__S_REQ_VERSION;
    pos++;
req_version:
    ls = (size_t)(m->method_name.ptr - buf);
    {
        size_t at = pos;
        e = http__version(b, pos, end, &minor, &at);
        if (e < 0) return http__fail(p, e, at);
        if (e == 0) goto more;
    }
    if (pos + 8 - ls > p->max_line) return http__fail(p, HTTP_ERR_URI_TOO_LONG, pos + 8);
    m->version_major = 1;
    m->version_minor = minor;
    if (pos + 8 >= end) goto more;
    c = b[pos + 8];
    if (HTTP__LIKELY(c == '\r')) {
        if (pos + 9 >= end) goto more;
        if (b[pos + 9] != '\n') return http__fail(p, HTTP_ERR_BARE_CR, pos + 8);
        pos += 10;
    } else if (c == '\n') {
        if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, pos + 8);
        pos += 9;
    } else {
        return http__fail(p, HTTP_ERR_BAD_VERSION, pos + 8);
    }
    goto fields_start;

status_line : {
    /* "HTTP/d.d SP ddd" then SP reason or the line end */
    size_t at = pos;
    unsigned st;
    int i;
    e = http__version(b, pos, end, &minor, &at);
    if (e < 0) return http__fail(p, e, at);
    if (e == 0) goto more;
    for (i = 8; i < 12; i++) {
        if (pos + (size_t)i >= end) goto more;
        c = b[pos + (size_t)i];
        if (i == 8 ? c != ' ' : (unsigned)(c - '0') > 9u)
            return http__fail(p, HTTP_ERR_BAD_STATUS, pos + (size_t)i);
    }
    st = (unsigned)(b[pos + 9] - '0') * 100 + (unsigned)(b[pos + 10] - '0') * 10 +
         (unsigned)(b[pos + 11] - '0');
    if (st < 100) return http__fail(p, HTTP_ERR_BAD_STATUS, pos + 9);
    if (pos + 12 >= end) goto more;
    c = b[pos + 12];
    if (c != ' ' && c != '\r' && c != '\n') return http__fail(p, HTTP_ERR_BAD_STATUS, pos + 12);
    m->version_major = 1;
    m->version_minor = minor;
    m->status = (int)st;
    pos += c == ' ' ? 13 : 12;
    mark = pos;
    p->state = HTTP__S_REASON;
}
reason:
    pos = http__scan_value(b, pos, end);
    if (pos >= end) goto more;
    c = b[pos];
    if (c == '\r') {
        if (pos + 1 >= end) goto more;
        if (b[pos + 1] != '\n') return http__fail(p, HTTP_ERR_BARE_CR, pos);
        m->reason.ptr = buf + mark;
        m->reason.len = pos - mark;
        pos += 2;
    } else if (c == '\n') {
        if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, pos);
        m->reason.ptr = buf + mark;
        m->reason.len = pos - mark;
        pos++;
    } else {
        return http__fail(p, c == 0 ? HTTP_ERR_HEADER_VALUE_NUL : HTTP_ERR_HEADER_VALUE_CTL, pos);
    }

fields_start:
    p->state = HTTP__S_FIELD_START;
    p->nfields = 0;
fields:
    r = http__fields(p, b, pos, end, len, headers, limit);
    if (r < 0) return (int)r;
    if (r == 0) {
        http__rebase(p, m, headers, p->nfields, buf, true);
        p->flags |= HTTP__F_OFFSETS;
        return 0;
    }
    m->num_headers = p->nfields;
    /* every field not set while parsing (the message is not zeroed first) */
    if (p->kind == HTTP_KIND_REQUEST) {
        m->status = 0;
        m->reason.ptr = NULL;
        m->reason.len = 0;
    } else {
        m->method = HTTP_METHOD_OTHER;
        m->method_name.ptr = m->target.ptr = NULL;
        m->method_name.len = m->target.len = 0;
        m->target_form = HTTP_TARGET_NONE;
    }
    m->body = HTTP_BODY_NONE;
    m->content_length = 0;
    m->has_content_length = m->chunked = m->keep_alive = m->upgrade = false;
    m->expect_continue = m->expect_unknown = m->connection_close = false;
    m->connection_keep_alive = m->connection_upgrade = m->other_codings = false;
    if (p->kind == HTTP_KIND_RESPONSE && m->status >= 200) p->flags |= HTTP__F_FINAL;
    else p->flags &= (uint8_t)~HTTP__F_FINAL;
    /* the blank line: CRLF, or a lone LF (lenient) */
    e = http__facts(p, m, buf, (size_t)r - (b[r - 2] == '\r' ? 2 : 1));
    if (e < 0) return e;
    switch (m->body) {
    case HTTP_BODY_NONE: http__done(p); break;
    case HTTP_BODY_LENGTH:
        p->state = HTTP__S_BODY_LENGTH;
        p->remaining = m->content_length;
        break;
    case HTTP_BODY_CHUNKED:
        p->state = HTTP__S_CHUNK_SIZE;
        p->remaining = 0;
        p->aux = 0;
        break;
    case HTTP_BODY_UNTIL_CLOSE: p->state = HTTP__S_BODY_EOF; break;
    }
    p->pos = p->mark = 0;
    p->nfields = 0;
    return (int)r;

more:
    if (end < len) return http__fail(p, HTTP_ERR_HEAD_TOO_LARGE, end);
    p->pos = (uint32_t)pos;
    p->mark = (uint32_t)mark;
    if (p->state > HTTP__S_START) {
        http__rebase(p, m, headers, p->nfields, buf, true);
        p->flags |= HTTP__F_OFFSETS;
    }
    return 0;
}

/* ---- http_parse_body -------------------------------------------------------------- */

/* Where in the grammar of chunk extensions (RFC 9112 section 7.1.1) the
 * parser is, in p->ext:
 *     chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 * BWS is spaces and tabs; name is a token. */
enum {
    HTTP__X_SIZE_WS,   /* BWS after the chunk size: then ';' */
    HTTP__X_NAME_WS,   /* after ';': BWS, then a name */
    HTTP__X_NAME,      /* in a name: more of it, BWS, '=', ';' or the line end */
    HTTP__X_NAME_END,  /* BWS after a name: then '=' or ';' */
    HTTP__X_VALUE_WS,  /* after '=': BWS, then a token or a quoted string */
    HTTP__X_TOKEN,     /* in a token value: more of it, BWS, ';' or the line end */
    HTTP__X_QUOTED,    /* in a quoted string */
    HTTP__X_ESCAPE,    /* after a backslash in a quoted string */
    HTTP__X_QUOTE_END, /* after the closing quote: BWS, ';' or the line end */
    HTTP__X_SEP_WS     /* BWS after a value: then ';' */
};

/* Reads chunk-extension bytes from i, one at a time (any split resumes in
 * p->ext). Returns the offset of the CR or LF that ends the size line, len
 * when more bytes are needed, or an error. p->aux counts the bytes. */
static ptrdiff_t http__chunk_ext(http_msg_parser *p, const unsigned char *b, size_t i, size_t len)
{
    unsigned st = p->ext;
    for (; i < len; i++) {
        unsigned c = b[i], tchar = http__cls[c] & HTTP__C_TCHAR;
        bool ws = c == ' ' || c == '\t';
        if (c == '\r' || c == '\n') {
            if (st == HTTP__X_NAME || st == HTTP__X_TOKEN || st == HTTP__X_QUOTE_END) {
                p->ext = (uint8_t)st;
                return (ptrdiff_t)i;
            }
            break; /* the line cannot end here */
        }
        if (p->aux >= p->max_ext) return http__fail(p, HTTP_ERR_CHUNK_EXT_TOO_LONG, i);
        p->aux++;
        switch (st) {
        case HTTP__X_SIZE_WS:
        case HTTP__X_SEP_WS:
            if (c == ';') st = HTTP__X_NAME_WS;
            else if (!ws) goto bad;
            break;
        case HTTP__X_NAME_WS:
            if (tchar) st = HTTP__X_NAME;
            else if (!ws) goto bad;
            break;
        case HTTP__X_NAME:
        case HTTP__X_NAME_END:
            if (c == '=') st = HTTP__X_VALUE_WS;
            else if (c == ';') st = HTTP__X_NAME_WS;
            else if (ws) st = HTTP__X_NAME_END;
            else if (!tchar || st != HTTP__X_NAME) goto bad;
            break;
        case HTTP__X_VALUE_WS:
            if (tchar) st = HTTP__X_TOKEN;
            else if (c == '"') st = HTTP__X_QUOTED;
            else if (!ws) goto bad;
            break;
        case HTTP__X_TOKEN:
        case HTTP__X_QUOTE_END:
            if (c == ';') st = HTTP__X_NAME_WS;
            else if (ws) st = HTTP__X_SEP_WS;
            else if (!tchar || st != HTTP__X_TOKEN) goto bad;
            break;
        case HTTP__X_QUOTED: /* qdtext: a value byte but '"' and '\\' */
            if (c == '"') st = HTTP__X_QUOTE_END;
            else if (c == '\\') st = HTTP__X_ESCAPE;
            else if (!(http__cls[c] & HTTP__C_VALUE)) goto bad;
            break;
        default: /* HTTP__X_ESCAPE: quoted-pair, "\\" and a value byte */
            if (!(http__cls[c] & HTTP__C_VALUE)) goto bad;
            st = HTTP__X_QUOTED;
            break;
        }
    }
    if (i < len) goto bad;
    p->ext = (uint8_t)st;
    return (ptrdiff_t)i;
bad: /* whitespace after the size that no ';' follows is a bad size line */
    return http__fail(p, st == HTTP__X_SIZE_WS ? HTTP_ERR_CHUNK_SIZE : HTTP_ERR_CHUNK_EXT, i);
}

HTTP_API int http_parse_body(http_msg_parser *p, const char *buf, size_t len, http_body *bd)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0, n, end;
    bool lenient = (p->flags & HTTP__F_LENIENT) != 0;
    bool have_data = false;
    ptrdiff_t r;
    int d;

    bd->data.ptr = buf;
    bd->data.len = 0;
    bd->consumed = 0;
    bd->num_trailers = 0;

    for (;;) {
        switch (p->state) {
        case HTTP__S_ERROR: return HTTP_ERR_BAD_METHOD - (int)p->err;
        case HTTP__S_BODY_LENGTH:
            n = len - i;
            if (n > p->remaining) n = (size_t)p->remaining;
            bd->data.ptr = buf + i;
            bd->data.len = n;
            p->remaining -= n;
            bd->consumed = i + n;
            if (p->remaining == 0) {
                http__done(p);
                return 1;
            }
            return 0;
        case HTTP__S_BODY_EOF:
            bd->data.ptr = buf + i;
            bd->data.len = len - i;
            bd->consumed = len;
            return 0;
        case HTTP__S_CHUNK_SIZE:
            for (;;) {
                unsigned char c;
                if (i >= len) goto out;
                c = b[i];
                d = http__hexval(c);
                if (d >= 0) {
                    if (p->aux >= p->max_digits)
                        return http__fail(p, HTTP_ERR_CHUNK_TOO_LARGE, i);
                    p->remaining = (p->remaining << 4) | (uint64_t)d;
                    p->aux++;
                    i++;
                    continue;
                }
                if (p->aux == 0) return http__fail(p, HTTP_ERR_CHUNK_SIZE, i);
                if (c == ';' || c == ' ' || c == '\t') {
                    p->state = HTTP__S_CHUNK_EXT;
                    p->ext = c == ';' ? HTTP__X_NAME_WS : HTTP__X_SIZE_WS;
                    p->aux = 1; /* extension bytes so far */
                    i++;
                } else if (c == '\r') {
                    p->state = HTTP__S_CHUNK_SIZE_LF;
                    i++;
                } else if (c == '\n') {
                    if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, i);
                    i++;
                    goto size_line_done;
                } else {
                    return http__fail(p, HTTP_ERR_CHUNK_SIZE, i);
                }
                break;
            }
            break;
        case HTTP__S_CHUNK_EXT:
            r = http__chunk_ext(p, b, i, len);
            if (r < 0) return (int)r;
            i = (size_t)r;
            if (i >= len) goto out;
            if (b[i] == '\r') { /* (or a lone LF) */
                p->state = HTTP__S_CHUNK_SIZE_LF;
                i++;
            } else {
                if (!lenient) return http__fail(p, HTTP_ERR_BARE_LF, i);
                i++;
                goto size_line_done;
            }
            break;
        case HTTP__S_CHUNK_SIZE_LF:
            if (i >= len) goto out;
            if (b[i] != '\n') return http__fail(p, HTTP_ERR_CHUNK_CRLF, i);
            i++;
        size_line_done:
            p->aux = 0;
            if (p->remaining == 0) {
                /* last chunk: a trailer section follows */
                p->state = HTTP__S_FIELD_START;
                p->flags |= HTTP__F_TRAILER;
                p->pos = p->mark = 0;
                p->nfields = 0;
            } else {
                p->state = HTTP__S_CHUNK_DATA;
            }
            break;
        case HTTP__S_CHUNK_DATA:
            if (have_data) goto out; /* one piece per call */
            if (i >= len) goto out;
            n = len - i;
            if (n > p->remaining) n = (size_t)p->remaining;
            bd->data.ptr = buf + i;
            bd->data.len = n;
            have_data = true;
            i += n;
            p->remaining -= n;
            if (p->remaining == 0) p->state = HTTP__S_CHUNK_DATA_CR;
            break;
        case HTTP__S_CHUNK_DATA_CR:
            if (i >= len) goto out;
            if (b[i] == '\r') {
                p->state = HTTP__S_CHUNK_DATA_LF;
                i++;
            } else if (b[i] == '\n' && lenient) {
                p->state = HTTP__S_CHUNK_SIZE;
                i++;
            } else {
                return http__fail(p, b[i] == '\n' ? HTTP_ERR_BARE_LF : HTTP_ERR_CHUNK_CRLF, i);
            }
            break;
        case HTTP__S_CHUNK_DATA_LF:
            if (i >= len) goto out;
            if (b[i] != '\n') return http__fail(p, HTTP_ERR_CHUNK_CRLF, i);
            p->state = HTTP__S_CHUNK_SIZE;
            i++;
            break;
        case HTTP__S_FIELD_START:
        case HTTP__S_NAME:
        case HTTP__S_VALUE: {
            size_t limit = p->max_headers, tl = len - i;
            http_header *h = bd->trailers;
            if (!(p->flags & HTTP__F_TRAILER)) return -EINVAL; /* a head is in progress */
            if (h) {
                if (bd->trailers_cap < limit) limit = bd->trailers_cap;
                if (p->flags & HTTP__F_OFFSETS) {
                    http__rebase(p, NULL, h, p->nfields, buf + i, false);
                    p->flags &= (uint8_t)~HTTP__F_OFFSETS;
                }
            }
            end = tl < p->max_head ? tl : p->max_head;
            r = http__fields(p, b + i, p->pos, end, tl, h, limit);
            if (r < 0) {
                p->remaining += i; /* the offset from b + i, made one from b */
                return (int)r;
            }
            if (r == 0) {
                if (h) {
                    http__rebase(p, NULL, h, p->nfields, buf + i, true);
                    p->flags |= HTTP__F_OFFSETS;
                }
                goto out;
            }
            bd->num_trailers = h ? p->nfields : 0;
            bd->consumed = i + (size_t)r;
            http__done(p);
            return 1;
        }
        default: /* HTTP__S_START and start-line states: no body in progress */
            if (p->state == HTTP__S_START && p->pos == 0) return 1;
            return -EINVAL;
        }
    }
out:
    bd->consumed = i;
    return 0;
}

HTTP_API int http_parse_finish(http_msg_parser *p)
{
    switch (p->state) {
    case HTTP__S_ERROR: return HTTP_ERR_BAD_METHOD - (int)p->err;
    case HTTP__S_BODY_EOF: http__done(p); return 1;
    case HTTP__S_START: return 0; /* at most empty lines were seen */
    default: return http__fail(p, HTTP_ERR_INCOMPLETE, p->pos);
    }
}

/* ---- helpers ---------------------------------------------------------------------- */

HTTP_API int http_parse_target(const char *t, size_t n, http_url *u)
{
    const char *p = t, *end = t + n, *q;
    memset(u, 0, sizeof *u);
    if (n == 0) return HTTP_ERR_BAD_TARGET;
    if (n == 1 && t[0] == '*') {
        u->path.ptr = t;
        u->path.len = 1;
        return 0;
    }
    if (t[0] != '/') {
        /* absolute-form (scheme "://" authority ...) or authority-form */
        const char *colon = (const char *)memchr(t, ':', n);
        bool scheme = colon && colon > t && end - colon >= 3 && colon[1] == '/' && colon[2] == '/';
        if (scheme) {
            for (q = t; q < colon; q++) {
                unsigned c = (unsigned char)*q;
                if (!((c | 0x20) - 'a' < 26u || (q > t && (c - '0' < 10u || c == '+' ||
                                                            c == '-' || c == '.'))))
                    return HTTP_ERR_BAD_TARGET;
            }
            u->scheme.ptr = t;
            u->scheme.len = (size_t)(colon - t);
            p = colon + 3;
            for (q = p; q < end && *q != '/' && *q != '?' && *q != '#'; q++) {}
            u->authority.ptr = p;
            u->authority.len = (size_t)(q - p);
            p = q;
        } else {
            for (q = t; q < end; q++)
                if (*q == '/' || *q == '?' || *q == '#' || *q == '@') return HTTP_ERR_BAD_TARGET;
            if (!colon || colon == t) return HTTP_ERR_BAD_TARGET;
            u->authority.ptr = t;
            u->authority.len = n;
            return 0;
        }
    }
    for (q = p; q < end && *q != '?' && *q != '#'; q++) {}
    u->path.ptr = p;
    u->path.len = (size_t)(q - p);
    if (q < end && *q == '?') {
        const char *s = ++q;
        for (; q < end && *q != '#'; q++) {}
        u->query.ptr = s;
        u->query.len = (size_t)(q - s);
    }
    if (q < end && *q == '#') {
        u->fragment.ptr = q + 1;
        u->fragment.len = (size_t)(end - q - 1);
    }
    return 0;
}

HTTP_API void http_query_init(http_query_iter *it, const char *query, size_t len)
{
    it->pos = query;
    it->end = query + len;
    if (len && *query == '?') it->pos++;
}

HTTP_API int http_query_next(http_query_iter *it, http_str *key, http_str *value)
{
    while (it->pos < it->end) {
        const char *s = it->pos;
        const char *amp = (const char *)memchr(s, '&', (size_t)(it->end - s));
        const char *e = amp ? amp : it->end;
        const char *eq;
        it->pos = amp ? amp + 1 : it->end;
        if (e == s) continue;
        eq = (const char *)memchr(s, '=', (size_t)(e - s));
        key->ptr = s;
        key->len = (size_t)((eq ? eq : e) - s);
        if (eq) {
            value->ptr = eq + 1;
            value->len = (size_t)(e - eq - 1);
        } else {
            value->ptr = NULL;
            value->len = 0;
        }
        return 1;
    }
    return 0;
}

HTTP_API ptrdiff_t http_percent_decode(char *out, size_t cap, const char *in, size_t len,
                                       unsigned flags)
{
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3) return HTTP_ERR_BAD_TARGET;
            hi = http__hexval((unsigned char)in[i + 1]);
            lo = http__hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) return HTTP_ERR_BAD_TARGET;
            c = (unsigned char)(hi << 4 | lo);
            i += 3;
        } else {
            if (c == '+' && (flags & HTTP_DECODE_PLUS)) c = ' ';
            i++;
        }
        if (o >= cap) return -ENOBUFS;
        out[o++] = (char)c;
    }
    return (ptrdiff_t)o;
}

HTTP_API bool http_str_ieq(http_str s, const char *lit)
{
    size_t i;
    for (i = 0; i < s.len; i++) {
        if (!lit[i]) return false;
        if (http__lower((unsigned char)s.ptr[i]) != http__lower((unsigned char)lit[i]))
            return false;
    }
    return lit[i] == 0;
}

HTTP_API const http_header *http_header_find(const http_header *h, size_t n, const char *name,
                                             const http_header *after)
{
    size_t i = after ? (size_t)(after - h) + 1 : 0, nl = strlen(name);
    for (; i < n; i++)
        if (h[i].name.len == nl && http_str_ieq(h[i].name, name)) return &h[i];
    return NULL;
}

HTTP_API const http_str *http_header_get(const http_message *m, const char *name)
{
    const http_header *h = http_header_find(m->headers, m->num_headers, name, NULL);
    return h ? &h->value : NULL;
}

HTTP_API bool http_list_has(http_str value, const char *token)
{
    http__list l;
    http_str el;
    l.p = value.ptr;
    l.end = value.ptr + value.len;
    while (http__list_next(&l, &el))
        if (http_str_ieq(el, token)) return true;
    return false;
}

static const char *const http__method_names[HTTP_METHOD_COUNT] = {
    "", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

HTTP_API const char *http_method_name(http_method_id m)
{
    return (unsigned)m < HTTP_METHOD_COUNT ? http__method_names[m] : "";
}

HTTP_API http_method_id http_method_from(const char *s, size_t len)
{
    return http__method((const unsigned char *)s, len);
}

HTTP_API const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}

/* ---- serializer --------------------------------------------------------------------- */

HTTP_API size_t http_format_uint(char out[HTTP_UINT_MAX_LEN], uint64_t v)
{
    char tmp[HTTP_UINT_MAX_LEN];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
    return n;
}

static bool http__token_ok(const char *s, size_t n)
{
    size_t i;
    if (n == 0) return false;
    for (i = 0; i < n; i++)
        if (!(http__cls[(unsigned char)s[i]] & HTTP__C_TCHAR)) return false;
    return true;
}

static bool http__value_ok(const char *s, size_t n)
{
    return http__scan_value((const unsigned char *)s, 0, n) == n;
}

static bool http__fields_ok(const http_header *h, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (!http__token_ok(h[i].name.ptr, h[i].name.len)) return false;
        if (h[i].value.len && !http__value_ok(h[i].value.ptr, h[i].value.len)) return false;
    }
    return true;
}

/* Appends bytes while they fit; always counts. */
typedef struct http__out {
    char *buf;
    size_t cap, len;
} http__out;

static void http__put(http__out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void http__put_fields(http__out *o, const http_header *h, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        http__put(o, h[i].name.ptr, h[i].name.len);
        http__put(o, ": ", 2);
        if (h[i].value.len) http__put(o, h[i].value.ptr, h[i].value.len);
        http__put(o, "\r\n", 2);
    }
    http__put(o, "\r\n", 2);
}

/* "HTTP/1.1 ddd reason\r\n" into line (room for 16 + strlen(reason)). */
static size_t http__status_line(char *line, int status, const char *reason, size_t rlen)
{
    memcpy(line, "HTTP/1.1 ", 9);
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    line[12] = ' ';
    memcpy(line + 13, reason, rlen);
    line[13 + rlen] = '\r';
    line[14 + rlen] = '\n';
    return 15 + rlen;
}

HTTP_API ptrdiff_t http_format_response(char *buf, size_t cap, int status, const char *reason,
                                        const http_header *headers, size_t n)
{
    http__out o;
    size_t rlen;
    if (status < 100 || status > 999) return -EINVAL;
    if (!reason) reason = http_status_reason(status);
    rlen = strlen(reason);
    if (!http__value_ok(reason, rlen) || !http__fields_ok(headers, n)) return -EINVAL;
    o.buf = buf;
    o.cap = cap;
    o.len = 0;
    if (cap >= 15 + rlen) o.len = http__status_line(buf, status, reason, rlen);
    else o.len = 15 + rlen;
    http__put_fields(&o, headers, n);
    return (ptrdiff_t)o.len;
}

HTTP_API ptrdiff_t http_format_request(char *buf, size_t cap, const char *method,
                                       const char *target, const http_header *headers, size_t n)
{
    http__out o;
    size_t ml = strlen(method), tl = strlen(target);
    if (!http__token_ok(method, ml) || tl == 0 ||
        http__scan_cls_c((const unsigned char *)target, 0, tl, HTTP__C_TARGET) != tl ||
        !http__fields_ok(headers, n))
        return -EINVAL;
    o.buf = buf;
    o.cap = cap;
    o.len = 0;
    http__put(&o, method, ml);
    http__put(&o, " ", 1);
    http__put(&o, target, tl);
    http__put(&o, " HTTP/1.1\r\n", 11);
    http__put_fields(&o, headers, n);
    return (ptrdiff_t)o.len;
}

HTTP_API int http_response_iov(struct iovec *iov, int iovcnt, char *line, size_t line_cap,
                               int status, const char *reason, const http_header *headers,
                               size_t n)
{
    static const char sep[] = ": ", crlf[] = "\r\n";
    size_t rlen, i;
    int k = 0;
    if (status < 100 || status > 999) return -EINVAL;
    if (!reason) reason = http_status_reason(status);
    rlen = strlen(reason);
    if (!http__value_ok(reason, rlen) || !http__fields_ok(headers, n)) return -EINVAL;
    if (line_cap < 15 + rlen || iovcnt < 0 || n > ((size_t)iovcnt - 2) / 4 || iovcnt < 2)
        return -ENOBUFS;
    iov[k].iov_base = line;
    iov[k++].iov_len = http__status_line(line, status, reason, rlen);
    for (i = 0; i < n; i++) {
        iov[k].iov_base = (void *)(uintptr_t)headers[i].name.ptr;
        iov[k++].iov_len = headers[i].name.len;
        iov[k].iov_base = (void *)(uintptr_t)sep;
        iov[k++].iov_len = 2;
        iov[k].iov_base = (void *)(uintptr_t)headers[i].value.ptr;
        iov[k++].iov_len = headers[i].value.len;
        iov[k].iov_base = (void *)(uintptr_t)crlf;
        iov[k++].iov_len = 2;
    }
    iov[k].iov_base = (void *)(uintptr_t)crlf;
    iov[k++].iov_len = 2;
    return k;
}

HTTP_API size_t http_chunk_header(char out[HTTP_CHUNK_HEADER_MAX], uint64_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    int shift = 60;
    while (shift > 0 && ((size >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) out[n++] = hex[(size >> shift) & 0xf];
    out[n++] = '\r';
    out[n++] = '\n';
    out[n] = 0;
    return n;
}

HTTP_API int http_chunk_iov(struct iovec iov[3], char hdr[HTTP_CHUNK_HEADER_MAX],
                            const void *data, size_t len)
{
    static const char crlf[] = "\r\n";
    if (len == 0) return 0;
    iov[0].iov_base = hdr;
    iov[0].iov_len = http_chunk_header(hdr, len);
    iov[1].iov_base = (void *)(uintptr_t)data;
    iov[1].iov_len = len;
    iov[2].iov_base = (void *)(uintptr_t)crlf;
    iov[2].iov_len = 2;
    return 3;
}

HTTP_API ptrdiff_t http_chunk_last(char *buf, size_t cap, const http_header *trailers, size_t n)
{
    http__out o;
    if (!http__fields_ok(trailers, n)) return -EINVAL;
    o.buf = buf;
    o.cap = cap;
    o.len = 0;
    http__put(&o, "0\r\n", 3);
    http__put_fields(&o, trailers, n);
    return (ptrdiff_t)o.len;
}

HTTP_API size_t http_format_date(char out[HTTP_DATE_LEN + 1], int64_t t)
{
    static const char days[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t z, era, secs;
    unsigned doe, yoe, doy, mp, d, mo, hh, mm, ss, wd;
    int64_t y;
    if (t < 0 || t > INT64_C(253402300799)) return 0; /* 9999-12-31T23:59:59 */
    z = t / 86400;
    secs = t % 86400;
    wd = (unsigned)(z % 7);
    /* days since 1970 to a civil date (proleptic Gregorian) */
    z += 719468;
    era = z / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    mo = mp < 10 ? mp + 3 : mp - 9;
    y = (int64_t)yoe + era * 400 + (mo <= 2);
    hh = (unsigned)(secs / 3600);
    mm = (unsigned)(secs / 60 % 60);
    ss = (unsigned)(secs % 60);
    memcpy(out, days + wd * 3, 3);
    out[3] = ',';
    out[4] = ' ';
    out[5] = (char)('0' + d / 10);
    out[6] = (char)('0' + d % 10);
    out[7] = ' ';
    memcpy(out + 8, months + (mo - 1) * 3, 3);
    out[11] = ' ';
    out[12] = (char)('0' + y / 1000);
    out[13] = (char)('0' + y / 100 % 10);
    out[14] = (char)('0' + y / 10 % 10);
    out[15] = (char)('0' + y % 10);
    out[16] = ' ';
    out[17] = (char)('0' + hh / 10);
    out[18] = (char)('0' + hh % 10);
    out[19] = ':';
    out[20] = (char)('0' + mm / 10);
    out[21] = (char)('0' + mm % 10);
    out[22] = ':';
    out[23] = (char)('0' + ss / 10);
    out[24] = (char)('0' + ss % 10);
    memcpy(out + 25, " GMT", 4);
    out[29] = 0;
    return HTTP_DATE_LEN;
}

/* The Date cache: a sequence lock over the second and its text (4 words). */
static struct {
    unsigned seq;       /* odd while being written */
    int64_t sec;
    uint64_t text[4];
} http__date_cache = {0, -1, {0, 0, 0, 0}};

HTTP_API size_t http_date_now(char out[HTTP_DATE_LEN + 1])
{
    int64_t now = (int64_t)time(NULL);
    unsigned s1 = __atomic_load_n(&http__date_cache.seq, __ATOMIC_ACQUIRE);
    if (!(s1 & 1) && __atomic_load_n(&http__date_cache.sec, __ATOMIC_RELAXED) == now) {
        uint64_t w[4];
        int i;
        for (i = 0; i < 4; i++) w[i] = __atomic_load_n(&http__date_cache.text[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&http__date_cache.seq, __ATOMIC_RELAXED) == s1) {
            memcpy(out, w, HTTP_DATE_LEN);
            out[HTTP_DATE_LEN] = 0;
            return HTTP_DATE_LEN;
        }
    }
    {
        uint64_t w[4] = {0, 0, 0, 0};
        unsigned s = s1;
        int i;
        http_format_date(out, now);
        memcpy(w, out, HTTP_DATE_LEN);
        /* take the writer's side (odd) if nobody else has it; else just return */
        if (!(s & 1) && __atomic_compare_exchange_n(&http__date_cache.seq, &s, s + 1, false,
                                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            for (i = 0; i < 4; i++)
                __atomic_store_n(&http__date_cache.text[i], w[i], __ATOMIC_RELAXED);
            __atomic_store_n(&http__date_cache.sec, now, __ATOMIC_RELAXED);
            __atomic_store_n(&http__date_cache.seq, s + 2, __ATOMIC_RELEASE);
        }
    }
    return HTTP_DATE_LEN;
}

#ifdef __cplusplus
}
#endif

#endif /* HTTP__IMPLEMENTATION_DONE */
#endif /* HTTP_IMPLEMENTATION */

/* ========================================================================== */
/*                  7. THE SERVER: IMPLEMENTATION (evloop.h)                  */
/* ========================================================================== */

#if defined(HTTP_IMPLEMENTATION) && defined(EVLOOP_H) && !defined(HTTP__SERVER_DONE)
#define HTTP__SERVER_DONE

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define HTTP__CONTAINER(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#ifdef __cplusplus
extern "C" {
#endif

/* ---- defaults and flags ---------------------------------------------------- */

#define HTTP__BLOCK 4096        /* request allocation size class */

/* Request blocks kept for reuse per server. Under AddressSanitizer none
 * are: a block handed out again would hide a use after release. */
#if defined(__SANITIZE_ADDRESS__)
#define HTTP__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HTTP__ASAN 1
#endif
#endif
#ifdef HTTP__ASAN
#define HTTP__MAX_FREE 0
#else
#define HTTP__MAX_FREE 256
#endif
#define HTTP__INLINE_OUT 16384  /* bodies up to this are copied into the output */
#define HTTP__DISCARD_MAX 65536 /* unread body a keep-alive connection may skip */

/* timeout kinds: one FIFO list per kind, since each has a fixed duration */
enum { HTTP__T_NONE, HTTP__T_HEADER, HTTP__T_BODY, HTTP__T_IDLE, HTTP__T_WRITE, HTTP__T_LINGER,
       HTTP__T_KINDS };

/* request flags */
#define HTTP__R_HEAD_SENT  0x0001u /* the response head is out (or queued) */
#define HTTP__R_ENDED      0x0002u /* http_res_end (or a substitute) was called */
#define HTTP__R_CHUNKED    0x0004u /* the response body is chunked */
#define HTTP__R_CLOSE      0x0008u /* the connection closes after this response */
#define HTTP__R_ABORTED    0x0010u /* the connection went before the end */
#define HTTP__R_BODY_DONE  0x0020u /* the request body has arrived whole */
#define HTTP__R_READING    0x0040u /* streamed body: http_req_read was called */
#define HTTP__R_PAUSED     0x0080u
#define HTTP__R_HEAD_REQ   0x0100u /* a HEAD request: no response body */
#define HTTP__R_NO_BODY    0x0200u /* the status has no body (1xx, 204, 304) */
#define HTTP__R_CONTINUED  0x0400u /* "100 Continue" sent */
#define HTTP__R_HBUF_HEAP  0x0800u
#define HTTP__R_BODY_HEAP  0x1000u
#define HTTP__R_HAS_DATE   0x2000u /* the caller set Date */
#define HTTP__R_HAS_SERVER 0x4000u /* the caller set Server */
#define HTTP__R_FILE       0x8000u /* a file body waits for its turn */
#define HTTP__R_FILE_BUSY  0x10000u /* the file body is being sent */
#define HTTP__R_FILE_CLOSE 0x20000u
#define HTTP__R_UPGRADE    0x40000u /* hand the connection over after the head */
#define HTTP__R_DISPATCHED 0x80000u /* the handler has been called */
#define HTTP__R_WANT_DRAIN 0x100000u
#define HTTP__R_SYNTHETIC  0x200000u /* an error response the server made */
#define HTTP__R_END_DUE    0x400000u /* streamed body: on_end owed */
#define HTTP__R_ABORTING   0x800000u /* on_close callbacks run: an end only marks */

/* connection flags */
#define HTTP__C_IN_READ    0x0001u /* inside the read callback: flush after */
#define HTTP__C_FLUSH_DUE  0x0002u /* a flush is queued on next-tick */
#define HTTP__C_CLOSE_AFTER 0x0004u /* no more requests: close after output */
#define HTTP__C_CLOSING    0x0008u
#define HTTP__C_LINGER     0x0010u /* half-closed: reading to drop */
#define HTTP__C_STOPPED    0x0020u /* reading stopped (backpressure) */
#define HTTP__C_UPGRADING  0x0040u /* an upgrade request holds the input */
#define HTTP__C_DISCARD    0x0080u /* dropping the rest of a request body */
#define HTTP__C_EOF        0x0100u /* the client half-closed */
#define HTTP__C_DETACHED   0x0200u /* upgraded: the fd belongs to someone else */
#define HTTP__C_RESUME_DUE 0x0400u /* a resume is queued on next-tick */
#define HTTP__C_PIPE_FULL  0x0800u /* parsing waits for a request to end */
#define HTTP__C_BODY_MOVED 0x1000u /* body bytes arrived: the body timeout restarts */
#define HTTP__C_OUT_FULL   0x2000u /* parsing waits for the output to drain */

/* ---- structures --------------------------------------------------------------- */

typedef struct http__partial { /* a head that has not arrived whole yet */
    http_message m;
    http_header h[1]; /* max_headers of them */
} http__partial;

typedef struct http__conn {
    evloop_stream s;
    http_server *srv;
    struct http__conn *next, *prev;   /* all connections */
    struct http__conn *tnext, *tprev; /* the list of its timeout kind */
    uint64_t deadline;
    size_t tmark;                     /* queued bytes when the write timer was set */
    http_msg_parser p;
    char *in;                         /* bytes read, not yet consumed */
    size_t in_len, in_cap;
    char *out;                        /* responses being assembled */
    size_t out_len, out_cap;
    size_t held;                      /* output in requests' pend buffers */
    http__partial *partial;
    http_req *head, *tail;            /* requests in flight, in order */
    http_req *body_req;               /* its body is arriving */
    unsigned inflight;
    unsigned nrequests;
    unsigned tq_nrequests;            /* nrequests when the timer was last set */
    unsigned flags;
    uint8_t tkind;
} http__conn;

typedef struct http__listener {
    evloop_stream s;
    http_server *srv;
    struct http__listener *next;
    char *path; /* a Unix socket's file, and its identity: removed at close */
    dev_t dev;
    ino_t ino;
} http__listener;

typedef struct http__tq {
    http__conn *head, *tail;
} http__tq;

struct http_server {
    evloop *loop;
    http_handler handler;
    http_server_options o;
    void *data;
    struct http__listener *listeners;
    int port;
    http__conn *conns;
    unsigned open_handles; /* listeners, timers, signals not yet closed */
    http__tq tq[HTTP__T_KINDS];
    unsigned tdur[HTTP__T_KINDS];
    evloop_timer timer;
    uint64_t timer_due;
    evloop_timer shutdown_timer;
    evloop_signal sigint, sigterm;
    int shutting, finished;
    http_server_cb done;
    http_message m;
    http_header *scratch;
    char date_line[HTTP_DATE_LEN + 9];
    uint64_t date_ms;
    char *server_line;
    size_t server_line_len;
    void *freelist[HTTP__MAX_FREE + 1]; /* (+1: never a zero-sized array) */
    unsigned nfree;
    http_server_stats st;
};

static void http__conn_close(http__conn *c, int reason);
static void http__conn_flush(http__conn *c);
static void http__conn_timers(http__conn *c);
static void http__conn_feed_input(http__conn *c);
static void http__req_release(http_req *r);
static void http__conn_advance(http__conn *c);
static void http__server_maybe_done(http_server *srv);

/* ---- small helpers -------------------------------------------------------------- */

/* Grows *buf to hold need bytes (doubling). -ENOMEM. */
static int http__reserve(char **buf, size_t *cap, size_t need)
{
    size_t ncap;
    char *nb;
    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    nb = (char *)HTTP_REALLOC(*buf, ncap);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int http__append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    int rc = http__reserve(buf, cap, *len + n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

static bool http__is_token(const char *s, size_t n)
{
    size_t i;
    if (!n)
        return false;
    for (i = 0; i < n; i++)
        if (!(http__cls[(unsigned char)s[i]] & HTTP__C_TCHAR))
            return false;
    return true;
}

static bool http__is_value(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!(http__cls[(unsigned char)s[i]] & HTTP__C_VALUE))
            return false;
    return true;
}

static bool http__ieq(const char *a, size_t n, const char *lit)
{
    http_str s;
    s.ptr = a;
    s.len = n;
    return http_str_ieq(s, lit);
}

/* "Date: <IMF-fixdate>\r\n", refreshed when the loop time moves on. */
static const char *http__date_line(http_server *srv)
{
    uint64_t now = evloop_now(srv->loop);
    if (now != srv->date_ms || !srv->date_line[0]) {
        memcpy(srv->date_line, "Date: ", 6);
        http_date_now(srv->date_line + 6);
        memcpy(srv->date_line + 6 + HTTP_DATE_LEN, "\r\n", 3);
        srv->date_ms = now;
    }
    return srv->date_line;
}

/* ---- timeouts: a FIFO list per kind, one loop timer for the earliest --------------- */

static void http__timer_fire(evloop_timer *t);

static void http__timer_arm(http_server *srv)
{
    uint64_t due = UINT64_MAX, now = evloop_now(srv->loop);
    int k;
    for (k = 1; k < HTTP__T_KINDS; k++)
        if (srv->tq[k].head && srv->tq[k].head->deadline < due)
            due = srv->tq[k].head->deadline;
    if (due == UINT64_MAX) {
        evloop_timer_stop(&srv->timer);
        srv->timer_due = 0;
        return;
    }
    if (evloop_is_active(&srv->timer.handle) && srv->timer_due == due)
        return;
    srv->timer_due = due;
    evloop_timer_start(&srv->timer, http__timer_fire, due > now ? due - now : 0, 0);
}

static void http__tq_unlink(http__conn *c)
{
    http__tq *q;
    if (!c->tkind)
        return;
    q = &c->srv->tq[c->tkind];
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        q->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        q->tail = c->tprev;
    c->tnext = c->tprev = NULL;
    c->tkind = HTTP__T_NONE;
}

/* Puts c on the list of kind (re-arming when asked or when the kind
 * changes). Appending keeps each list in deadline order. */
static void http__tq_set(http__conn *c, int kind, bool rearm)
{
    http_server *srv = c->srv;
    http__tq *q;
    bool was_head;
    if (c->tkind == kind && !rearm)
        return;
    was_head = c->tkind && srv->tq[c->tkind].head == c;
    http__tq_unlink(c);
    if (kind == HTTP__T_NONE || !srv->tdur[kind]) {
        if (was_head)
            http__timer_arm(srv);
        return;
    }
    q = &srv->tq[kind];
    c->tkind = (uint8_t)kind;
    c->deadline = evloop_now(srv->loop) + srv->tdur[kind];
    c->tq_nrequests = c->nrequests;
    c->tprev = q->tail;
    c->tnext = NULL;
    if (q->tail)
        q->tail->tnext = c;
    else
        q->head = c;
    q->tail = c;
    if (kind == HTTP__T_WRITE)
        c->tmark = evloop_stream_queued(&c->s);
    if (was_head || q->head == c)
        http__timer_arm(srv);
}

static void http__timer_fire(evloop_timer *t)
{
    http_server *srv = HTTP__CONTAINER(t, http_server, timer);
    uint64_t now = evloop_now(srv->loop);
    int k;
    srv->timer_due = 0;
    for (k = 1; k < HTTP__T_KINDS; k++) {
        http__conn *c;
        while ((c = srv->tq[k].head) != NULL && c->deadline <= now) {
            if (k == HTTP__T_WRITE && evloop_stream_queued(&c->s) < c->tmark) {
                http__tq_set(c, HTTP__T_WRITE, true); /* slow, but moving */
                continue;
            }
            http__tq_unlink(c);
            if (k != HTTP__T_LINGER && k != HTTP__T_IDLE)
                srv->st.timeouts++;
            http__conn_close(c, -ETIMEDOUT);
        }
    }
    http__timer_arm(srv);
}

/* Whether the request whose body arrives does not take bytes now: a
 * streamed body not asked for yet or paused, or a response that ended
 * first (http__conn_advance decides whether the rest is skipped). */
static bool http__body_held(const http__conn *c)
{
    const http_req *r = c->body_req;
    if (!r)
        return false;
    if (r->flags & HTTP__R_ENDED)
        return true;
    return c->srv->o.stream_bodies &&
           (!(r->flags & HTTP__R_READING) || (r->flags & HTTP__R_PAUSED));
}

/* Which timeout applies now (7.5). The body timeout limits silence: body
 * bytes since the last call restart it. A request that came and went
 * since the timer was set restarts the idle and header timeouts: a
 * request answered in the callback that read it leaves the connection in
 * the state it was in, idle, but it was not idle all that time. */
static void http__conn_timers(http__conn *c)
{
    bool moved = (c->flags & HTTP__C_BODY_MOVED) != 0;
    bool fresh = c->nrequests != c->tq_nrequests;
    if (c->flags & HTTP__C_CLOSING)
        return;
    c->flags &= ~HTTP__C_BODY_MOVED;
    if (evloop_stream_queued(&c->s) > 0) {
        http__tq_set(c, HTTP__T_WRITE, false);
    } else if (c->flags & HTTP__C_LINGER) {
        http__tq_set(c, HTTP__T_LINGER, false);
    } else if (c->body_req || (c->flags & HTTP__C_DISCARD)) {
        if (http__body_held(c))
            http__tq_set(c, HTTP__T_NONE, false); /* the application holds it */
        else
            http__tq_set(c, HTTP__T_BODY, moved);
    } else if (c->in_len && !c->inflight && !(c->flags & HTTP__C_UPGRADING)) {
        http__tq_set(c, HTTP__T_HEADER, fresh); /* not re-armed by more bytes */
    } else if (c->inflight) {
        http__tq_set(c, HTTP__T_NONE, false); /* handlers take their time */
    } else {
        http__tq_set(c, c->nrequests ? HTTP__T_IDLE : HTTP__T_HEADER, fresh);
    }
}

/* ---- request blocks --------------------------------------------------------------- */

static void *http__block_get(http_server *srv, size_t size, uint32_t *got)
{
    void *p;
    if (size <= HTTP__BLOCK) {
        *got = HTTP__BLOCK;
#if HTTP__MAX_FREE
        if (srv->nfree)
            return srv->freelist[--srv->nfree];
#else
        (void)srv;
#endif
        return HTTP_MALLOC(HTTP__BLOCK);
    }
    p = HTTP_MALLOC(size);
    *got = (uint32_t)size;
    return p;
}

static void http__block_put(http_server *srv, void *p, uint32_t size)
{
#if HTTP__MAX_FREE
    if (size == HTTP__BLOCK && srv->nfree < HTTP__MAX_FREE) {
        srv->freelist[srv->nfree++] = p;
        return;
    }
#else
    (void)srv;
    (void)size;
#endif
    HTTP_FREE(p);
}

/* Rebases a view of the connection's bytes onto the request's copy. */
static http_str http__view_move(http_str v, const char *from, char *to)
{
    http_str r;
    r.ptr = v.ptr ? to + (v.ptr - from) : NULL;
    r.len = v.len;
    return r;
}

/* A request with its own copy of the head (the views point into it). */
static http_req *http__req_new(http__conn *c, const http_message *m, const char *head, size_t hlen)
{
    http_server *srv = c->srv;
    size_t hdrs = m->num_headers * sizeof(http_header);
    size_t need = sizeof(http_req) + hdrs + hlen + 256;
    uint32_t got;
    char *blk = (char *)http__block_get(srv, need, &got), *copy;
    http_req *r;
    http_url u;
    size_t i;
    if (!blk)
        return NULL;
    r = (http_req *)(void *)blk;
    memset(r, 0, sizeof *r);
    r->block = got;
    r->headers = (http_header *)(void *)(blk + sizeof(http_req));
    copy = blk + sizeof(http_req) + hdrs;
    memcpy(copy, head, hlen);
    r->hbuf = copy + hlen;
    r->hcap = (uint32_t)(got - sizeof(http_req) - hdrs - hlen);
    r->server = srv;
    r->conn = c;
    r->method = m->method;
    r->method_name = http__view_move(m->method_name, head, copy);
    r->target = http__view_move(m->target, head, copy);
    for (i = 0; i < m->num_headers; i++) {
        r->headers[i].name = http__view_move(m->headers[i].name, head, copy);
        r->headers[i].value = http__view_move(m->headers[i].value, head, copy);
    }
    r->num_headers = m->num_headers;
    r->version_minor = m->version_minor;
    r->keep_alive = m->keep_alive;
    r->upgrade = m->upgrade;
    r->expect_continue = m->expect_continue;
    r->has_content_length = m->has_content_length;
    r->content_length = m->content_length;
    r->status = 200;
    r->res_length = UINT64_MAX;
    r->file_fd = -1;
    if (r->target.len && http_parse_target(r->target.ptr, r->target.len, &u) == 0) {
        r->path = u.path;
        r->query = u.query;
    }
    if (!r->query.ptr) /* empty, but a valid pointer */
        r->query.ptr = r->target.len ? r->target.ptr + r->target.len : "";
    if (!r->path.ptr)
        r->path.ptr = "";
    if (m->method == HTTP_METHOD_HEAD)
        r->flags |= HTTP__R_HEAD_REQ;
    if (m->body == HTTP_BODY_NONE)
        r->flags |= HTTP__R_BODY_DONE;
    srv->st.requests++;
    srv->st.requests_total++;
    return r;
}

/* A request the server answers itself (an error): no head was parsed. */
static http_req *http__req_synthetic(http__conn *c)
{
    http_message m;
    http_req *r;
    memset(&m, 0, sizeof m);
    m.version_minor = 1;
    m.method = HTTP_METHOD_GET;
    r = http__req_new(c, &m, "", 0);
    if (r)
        r->flags |= HTTP__R_SYNTHETIC | HTTP__R_BODY_DONE | HTTP__R_DISPATCHED;
    return r;
}

static void http__conn_push(http__conn *c, http_req *r)
{
    r->next = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->inflight++;
    c->nrequests++;
    /* the last one this connection takes: the limit, or a request that
     * does not keep the connection (Connection: close, HTTP/1.0 without
     * keep-alive), after which requests are not processed (RFC 9112 9.6) */
    if (!r->keep_alive ||
        (c->srv->o.max_requests_per_connection && c->nrequests >= c->srv->o.max_requests_per_connection))
        c->flags |= HTTP__C_CLOSE_AFTER;
}

/* Frees a request that has ended (or was aborted and then ended). */
static void http__req_release(http_req *r)
{
    http_server *srv = r->server;
    if (r->flags & HTTP__R_HBUF_HEAP)
        HTTP_FREE(r->hbuf);
    if (r->flags & HTTP__R_BODY_HEAP)
        HTTP_FREE((void *)(uintptr_t)r->body.ptr);
    HTTP_FREE(r->pend);
    if (r->file_fd >= 0 && (r->flags & HTTP__R_FILE_CLOSE))
        close(r->file_fd);
    srv->st.requests--;
    http__block_put(srv, r, r->block);
    http__server_maybe_done(srv);
}

/* ---- output ------------------------------------------------------------------------ */

static void http__flush_tick(evloop *loop, void *arg)
{
    http__conn *c = (http__conn *)arg;
    (void)loop;
    c->flags &= ~HTTP__C_FLUSH_DUE;
    if (!(c->flags & HTTP__C_CLOSING))
        http__conn_flush(c);
}

/* Output is flushed after the read callback's batch, else on next-tick, so
 * the responses of one callback go out in one write. */
static void http__conn_want_flush(http__conn *c)
{
    if (c->flags & (HTTP__C_IN_READ | HTTP__C_FLUSH_DUE))
        return;
    if (evloop_next_tick(c->srv->loop, http__flush_tick, c) == 0)
        c->flags |= HTTP__C_FLUSH_DUE;
    else
        http__conn_flush(c);
}

/* Adds response bytes of r: to the connection's output when r is first in
 * line, else to r's own pending buffer. Large pieces skip the copy when the
 * socket takes them at once. */
static int http__emit(http_req *r, const void *data, size_t len)
{
    http__conn *c = r->conn;
    if (!len)
        return 0;
    if (c->head != r) {
        if (http__append(&r->pend, &r->pend_len, &r->pend_cap, data, len) < 0)
            return -ENOMEM;
        c->held += len;
        return 0;
    }
    if (len > HTTP__INLINE_OUT && !(c->flags & HTTP__C_CLOSING)) {
        evloop_buf iov[2];
        ssize_t n;
        size_t skip;
        int rc;
        iov[0].iov_base = c->out;
        iov[0].iov_len = c->out_len;
        iov[1].iov_base = (void *)(uintptr_t)data;
        iov[1].iov_len = len;
        n = evloop_try_write(&c->s, c->out_len ? iov : iov + 1, c->out_len ? 2 : 1);
        if (n < 0 && n != -EAGAIN)
            return (int)n;
        skip = n > 0 ? (size_t)n : 0;
        if (skip < c->out_len) {
            rc = evloop_write_copy(&c->s, c->out + skip, c->out_len - skip, NULL, NULL);
            if (rc < 0)
                return rc;
            skip = 0;
        } else {
            skip -= c->out_len;
        }
        c->out_len = 0;
        rc = skip < len ? evloop_write_copy(&c->s, (const char *)data + skip, len - skip, NULL, NULL)
                        : 0;
        http__conn_timers(c);
        return rc;
    }
    if (http__append(&c->out, &c->out_len, &c->out_cap, data, len) < 0)
        return -ENOMEM;
    http__conn_want_flush(c);
    return 0;
}

static void http__conn_flush(http__conn *c)
{
    int rc;
    if (c->flags & HTTP__C_CLOSING)
        return;
    if (c->out_len) {
        rc = evloop_write_copy(&c->s, c->out, c->out_len, NULL, NULL);
        c->out_len = 0;
        if (rc < 0) {
            http__conn_close(c, rc);
            return;
        }
    }
    /* an idle connection keeps no output buffer */
    if (!c->inflight && c->out) {
        HTTP_FREE(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    http__conn_advance(c);
}

/* ---- response heads ------------------------------------------------------------------- */

static bool http__status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/* Decides whether the connection closes after r's response: the client
 * asked, or no request will follow r (server shutting down, an error or the
 * request limit ended the parsing, and r is the last in flight). */
static bool http__req_closes(http_req *r)
{
    http__conn *c = r->conn;
    if ((r->flags & HTTP__R_CLOSE) || !r->keep_alive)
        return true;
    return (c->flags & HTTP__C_CLOSE_AFTER) && !r->next;
}

/* Removes the fields named name from the caller's fields of r (each a
 * "Name: value\r\n" line that http_res_headern made). */
static void http__hbuf_drop(http_req *r, const char *name)
{
    size_t nlen = strlen(name), i = 0;
    while (i < r->hlen) {
        const char *eol = (const char *)memchr(r->hbuf + i, '\n', r->hlen - i);
        size_t line = (size_t)(eol - (r->hbuf + i)) + 1;
        if (line > nlen && r->hbuf[i + nlen] == ':' && http__ieq(r->hbuf + i, nlen, name)) {
            memmove(r->hbuf + i, r->hbuf + i + line, r->hlen - i - line);
            r->hlen -= (uint32_t)line;
        } else {
            i += line;
        }
    }
}

/* Writes the head of r's response: status line, Date, Server, the caller's
 * fields, framing, Connection. body_len: the whole body when known, else
 * UINT64_MAX (chunked, or until close for HTTP/1.0). */
static int http__send_head(http_req *r, uint64_t body_len)
{
    http_server *srv = r->server;
    char num[HTTP_UINT_MAX_LEN];
    char buf[512];
    size_t n = 0;
    const char *reason = http_status_reason(r->status);
    bool closes, nobody = !http__status_has_body(r->status);
    char *head = buf;
    size_t cap = sizeof buf, need;
    int rc;

    if (nobody) {
        r->flags |= HTTP__R_NO_BODY;
        /* 1xx and 204 must not have a Content-Length (RFC 9110 section
         * 8.6); a 304 may keep the caller's (the length of a 200) */
        if (r->status != 304 && r->res_length != UINT64_MAX) {
            http__hbuf_drop(r, "content-length");
            r->res_length = UINT64_MAX;
        }
    }
    if (r->res_length != UINT64_MAX)
        body_len = r->res_length;
    if (body_len == UINT64_MAX && !nobody && !(r->flags & HTTP__R_UPGRADE)) {
        if (r->version_minor >= 1)
            r->flags |= HTTP__R_CHUNKED;
        else
            r->flags |= HTTP__R_CLOSE; /* HTTP/1.0: the end of the body is the close */
    }
    closes = !(r->flags & HTTP__R_UPGRADE) && http__req_closes(r);
    if (closes)
        r->flags |= HTTP__R_CLOSE;

    need = 64 + strlen(reason) + HTTP_DATE_LEN + srv->server_line_len + r->hlen + 96;
    if (need > cap) {
        head = (char *)HTTP_MALLOC(need);
        if (!head)
            return -ENOMEM;
        cap = need;
    }
    memcpy(head, "HTTP/1.1 ", 9);
    head[9] = (char)('0' + r->status / 100);
    head[10] = (char)('0' + r->status / 10 % 10);
    head[11] = (char)('0' + r->status % 10);
    head[12] = ' ';
    n = 13;
    memcpy(head + n, reason, strlen(reason));
    n += strlen(reason);
    memcpy(head + n, "\r\n", 2);
    n += 2;
    if (!(r->flags & HTTP__R_HAS_DATE)) {
        memcpy(head + n, http__date_line(srv), HTTP_DATE_LEN + 8);
        n += HTTP_DATE_LEN + 8;
    }
    if (srv->server_line_len && !(r->flags & HTTP__R_HAS_SERVER)) {
        memcpy(head + n, srv->server_line, srv->server_line_len);
        n += srv->server_line_len;
    }
    memcpy(head + n, r->hbuf, r->hlen);
    n += r->hlen;
    if (r->flags & HTTP__R_UPGRADE) {
        if (r->status == 101) {
            memcpy(head + n, "Connection: Upgrade\r\n", 21);
            n += 21;
        }
    } else if (r->flags & HTTP__R_CHUNKED) {
        memcpy(head + n, "Transfer-Encoding: chunked\r\n", 28);
        n += 28;
    } else if (body_len != UINT64_MAX && r->res_length == UINT64_MAX && !nobody) {
        size_t k = http_format_uint(num, body_len);
        memcpy(head + n, "Content-Length: ", 16);
        memcpy(head + n + 16, num, k);
        memcpy(head + n + 16 + k, "\r\n", 2);
        n += 18 + k;
    }
    if (!(r->flags & HTTP__R_UPGRADE)) {
        if (closes) {
            memcpy(head + n, "Connection: close\r\n", 19);
            n += 19;
        } else if (r->version_minor == 0) {
            memcpy(head + n, "Connection: keep-alive\r\n", 24);
            n += 24;
        }
    }
    memcpy(head + n, "\r\n", 2);
    n += 2;
    r->flags |= HTTP__R_HEAD_SENT;
    rc = http__emit(r, head, n);
    if (head != buf)
        HTTP_FREE(head);
    if (closes && r->conn)
        r->conn->flags |= HTTP__C_CLOSE_AFTER;
    return rc;
}

/* ---- the response API --------------------------------------------------------------------- */

static int http__res_check(const http_req *r)
{
    if (r->flags & HTTP__R_ENDED)
        return -EALREADY;
    if ((r->flags & HTTP__R_ABORTED) || !r->conn)
        return -ECONNRESET;
    return 0;
}

HTTP_API int http_res_status(http_req *r, int status)
{
    int rc = http__res_check(r);
    if (rc < 0)
        return rc;
    if (r->flags & HTTP__R_HEAD_SENT)
        return -EALREADY;
    if (status < 200 || status > 999)
        return -EINVAL; /* 100 is the server's; 101 is http_res_upgrade's */
    r->status = status;
    return 0;
}

HTTP_API int http_res_headern(http_req *r, const char *name, size_t nlen, const char *value,
                              size_t vlen)
{
    size_t need;
    int rc = http__res_check(r);
    if (rc < 0)
        return rc;
    if (r->flags & HTTP__R_HEAD_SENT)
        return -EALREADY;
    if (!http__is_token(name, nlen) || !http__is_value(value, vlen) ||
        http__ieq(name, nlen, "transfer-encoding"))
        return -EINVAL;
    if (http__ieq(name, nlen, "content-length")) {
        uint64_t v = 0;
        size_t i;
        if (!vlen || vlen > 19)
            return -EINVAL;
        for (i = 0; i < vlen; i++) {
            if (value[i] < '0' || value[i] > '9')
                return -EINVAL;
            v = v * 10 + (uint64_t)(value[i] - '0');
        }
        if (r->res_length != UINT64_MAX)
            return -EINVAL; /* once */
        r->res_length = v;
    } else if (http__ieq(name, nlen, "connection")) {
        http_str s;
        s.ptr = value;
        s.len = vlen;
        if (http_list_has(s, "close"))
            r->flags |= HTTP__R_CLOSE;
        return 0; /* the server writes Connection itself */
    } else if (http__ieq(name, nlen, "date")) {
        r->flags |= HTTP__R_HAS_DATE;
    } else if (http__ieq(name, nlen, "server")) {
        r->flags |= HTTP__R_HAS_SERVER;
    }
    need = r->hlen + nlen + vlen + 4;
    if (need > r->hcap) {
        size_t ncap = r->hcap * 2 > need ? r->hcap * 2 : need + 256;
        char *nb = (char *)HTTP_MALLOC(ncap);
        if (!nb)
            return -ENOMEM;
        memcpy(nb, r->hbuf, r->hlen);
        if (r->flags & HTTP__R_HBUF_HEAP)
            HTTP_FREE(r->hbuf);
        r->hbuf = nb;
        r->hcap = (uint32_t)ncap;
        r->flags |= HTTP__R_HBUF_HEAP;
    }
    memcpy(r->hbuf + r->hlen, name, nlen);
    r->hbuf[r->hlen + nlen] = ':';
    r->hbuf[r->hlen + nlen + 1] = ' ';
    memcpy(r->hbuf + r->hlen + nlen + 2, value, vlen);
    memcpy(r->hbuf + r->hlen + nlen + 2 + vlen, "\r\n", 2);
    r->hlen += (uint32_t)(nlen + vlen + 4);
    return 0;
}

HTTP_API int http_res_header(http_req *r, const char *name, const char *value)
{
    if (!name || !value)
        return -EINVAL;
    return http_res_headern(r, name, strlen(name), value, strlen(value));
}

/* Body bytes, framed: a chunk, or as they are. */
static int http__body(http_req *r, const void *data, size_t len)
{
    if (!len || (r->flags & (HTTP__R_HEAD_REQ | HTTP__R_NO_BODY)))
        return 0;
    if (r->res_length != UINT64_MAX && r->res_sent + len > r->res_length)
        return -EINVAL; /* more than the Content-Length promised */
    r->res_sent += len;
    if (r->flags & HTTP__R_CHUNKED) {
        char hdr[HTTP_CHUNK_HEADER_MAX];
        size_t k = http_chunk_header(hdr, len);
        int rc = http__emit(r, hdr, k);
        if (rc == 0)
            rc = http__emit(r, data, len);
        if (rc == 0)
            rc = http__emit(r, "\r\n", 2);
        return rc;
    }
    return http__emit(r, data, len);
}

HTTP_API int http_res_write(http_req *r, const void *data, size_t len)
{
    int rc = http__res_check(r);
    if (rc < 0)
        return rc;
    if (!(r->flags & HTTP__R_HEAD_SENT) && (rc = http__send_head(r, UINT64_MAX)) < 0)
        return rc;
    rc = http__body(r, data, len);
    if (r->conn && !http_res_writable(r))
        r->flags |= HTTP__R_WANT_DRAIN;
    return rc;
}

HTTP_API int http_res_writable(const http_req *r)
{
    const http__conn *c = r->conn;
    size_t hwm;
    if (!c || (r->flags & (HTTP__R_ABORTED | HTTP__R_ENDED)))
        return 0;
    hwm = r->server->o.write_high_water;
    if (c->head != r)
        return r->pend_len < hwm;
    return evloop_stream_queued(&c->s) + c->out_len < hwm;
}

HTTP_API void http_res_on_drain(http_req *r, http_req_cb cb) { r->on_drain = cb; }

/* The end of a request whose connection is gone releases it, except while
 * http__conn_abort runs the on_close callbacks: it releases them after. */
static void http__req_end_orphan(http_req *r)
{
    r->flags |= HTTP__R_ENDED;
    if (!(r->flags & HTTP__R_ABORTING))
        http__req_release(r);
}

/* The response of r is complete: the next one may go. */
static void http__req_ended(http_req *r)
{
    http__conn *c = r->conn;
    if (!c) {
        http__req_end_orphan(r);
        return;
    }
    r->flags |= HTTP__R_ENDED;
    if (c->head == r)
        http__conn_advance(c);
}

HTTP_API int http_res_end(http_req *r, const void *data, size_t len)
{
    int rc;
    if (r->flags & HTTP__R_ENDED)
        return -EALREADY;
    if ((r->flags & HTTP__R_ABORTED) || !r->conn) {
        http__req_end_orphan(r);
        return -ECONNRESET;
    }
    rc = 0;
    if (!(r->flags & HTTP__R_HEAD_SENT))
        rc = http__send_head(r, len);
    if (rc == 0)
        rc = http__body(r, data, len);
    if (rc == 0 && (r->flags & HTTP__R_CHUNKED) && !(r->flags & (HTTP__R_HEAD_REQ | HTTP__R_NO_BODY)))
        rc = http__emit(r, "0\r\n\r\n", 5);
    if (rc == 0 && r->res_length != UINT64_MAX && r->res_sent != r->res_length &&
        !(r->flags & (HTTP__R_HEAD_REQ | HTTP__R_NO_BODY)))
        rc = -EINVAL; /* fewer bytes than the Content-Length: the framing is broken */
    if (rc < 0)
        r->flags |= HTTP__R_CLOSE;
    http__req_ended(r);
    return rc;
}

/* A response that cannot be made as asked still ends, so that the request
 * is released: a 500 without the caller's fields while the head has not
 * gone, else the connection closes after what went (its framing is broken).
 * A request whose client is gone is just released. */
static void http__res_fail(http_req *r)
{
    if (r->flags & HTTP__R_ENDED)
        return;
    if ((r->flags & HTTP__R_ABORTED) || !r->conn) {
        http__req_end_orphan(r);
        return;
    }
    if (r->flags & HTTP__R_HEAD_SENT) {
        r->flags |= HTTP__R_CLOSE;
        http__req_ended(r);
        return;
    }
    r->hlen = 0;
    r->res_length = UINT64_MAX;
    r->flags &= ~(HTTP__R_HAS_DATE | HTTP__R_HAS_SERVER);
    r->status = 500;
    (void)http_res_end(r, NULL, 0);
}

HTTP_API int http_res_send(http_req *r, int status, const char *content_type, const void *body,
                           size_t len)
{
    int rc = http_res_status(r, status);
    if (rc == 0 && content_type)
        rc = http_res_header(r, "Content-Type", content_type);
    if (rc < 0) {
        if (rc != -EALREADY)
            http__res_fail(r);
        return rc;
    }
    return http_res_end(r, body, len);
}

/* The file of r goes once everything before it in the output is queued. */
static void http__file_done(evloop_write_req *w, int status)
{
    http_req *r = HTTP__CONTAINER(w, http_req, wreq);
    http__conn *c = r->conn;
    r->flags &= ~(HTTP__R_FILE | HTTP__R_FILE_BUSY);
    if (!c) /* the connection went meanwhile: the request waited for this */
        http__req_release(r);
    else if (status < 0)
        http__conn_close(c, status); /* releases r with the other requests */
    else
        http__conn_advance(c);
}

static int http__file_start(http_req *r)
{
    http__conn *c = r->conn;
    int rc;
    if (c->out_len) {
        rc = evloop_write_copy(&c->s, c->out, c->out_len, NULL, NULL);
        c->out_len = 0;
        if (rc < 0)
            return rc;
    }
    r->flags |= HTTP__R_FILE_BUSY;
    rc = evloop_sendfile(&r->wreq, &c->s, r->file_fd, r->file_offset, r->file_len,
                         http__file_done);
    if (rc < 0)
        r->flags &= ~HTTP__R_FILE_BUSY;
    http__conn_timers(c);
    return rc;
}

HTTP_API int http_res_sendfile(http_req *r, int fd, int64_t offset, uint64_t len, unsigned flags)
{
    int rc = http__res_check(r);
    if (rc == 0 && (r->flags & HTTP__R_HEAD_SENT))
        rc = -EALREADY;
    /* a Content-Length set before must be the file's: anything else would
     * frame the response wrongly and desynchronize the connection */
    if (rc == 0 && (fd < 0 || offset < 0 || (r->res_length != UINT64_MAX && r->res_length != len)))
        rc = -EINVAL;
    if (rc == 0)
        rc = http__send_head(r, len);
    if (rc < 0) {
        if (fd >= 0 && (flags & HTTP_FILE_CLOSE))
            close(fd); /* the server's from the call on, whatever happens */
        if (rc != -EALREADY)
            http__res_fail(r);
        return rc;
    }
    r->file_fd = fd;
    if (flags & HTTP_FILE_CLOSE)
        r->flags |= HTTP__R_FILE_CLOSE;
    if (!(r->flags & (HTTP__R_HEAD_REQ | HTTP__R_NO_BODY)) && len) {
        r->file_offset = offset;
        r->file_len = len;
        r->res_sent = len;
        r->flags |= HTTP__R_FILE;
    }
    http__req_ended(r);
    return 0;
}

HTTP_API int http_res_upgrade(http_req *r, evloop_stream *target, http_upgrade_cb cb)
{
    int rc = http__res_check(r);
    if (rc < 0)
        return rc;
    if (!r->upgrade || !target || !cb || (r->flags & HTTP__R_HEAD_SENT))
        return -EINVAL;
    if (!(r->flags & HTTP__R_BODY_DONE))
        return -EBUSY; /* the new protocol starts after the body: read it first */
    if (r->method != HTTP_METHOD_CONNECT && r->status == 200)
        r->status = 101;
    r->flags |= HTTP__R_UPGRADE;
    r->up_target = target;
    r->up_cb = cb;
    rc = http__send_head(r, UINT64_MAX);
    if (rc < 0) { /* not accepted: cb will not run */
        r->flags &= ~HTTP__R_UPGRADE;
        r->up_cb = NULL;
        return rc;
    }
    http__req_ended(r);
    return 0;
}

/* ---- requests: bodies, aborts ---------------------------------------------------------- */

HTTP_API const http_str *http_req_header(const http_req *r, const char *name)
{
    const http_header *h = http_header_find(r->headers, r->num_headers, name, NULL);
    return h ? &h->value : NULL;
}

HTTP_API int http_req_peer(const http_req *r, struct sockaddr_storage *out)
{
    if (!r->conn)
        return -ENOTCONN;
    return evloop_peername(&r->conn->s, out);
}

HTTP_API void http_req_on_close(http_req *r, http_req_cb cb) { r->on_close = cb; }
HTTP_API bool http_req_aborted(const http_req *r) { return (r->flags & HTTP__R_ABORTED) != 0; }

static void http__send_continue(http_req *r)
{
    if (r->expect_continue && !(r->flags & (HTTP__R_CONTINUED | HTTP__R_HEAD_SENT)) && r->conn) {
        r->flags |= HTTP__R_CONTINUED;
        (void)http__emit(r, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
}

static void http__read_resume_tick(evloop *loop, void *arg);
static void http__conn_kick(http__conn *c);

HTTP_API int http_req_read(http_req *r, http_data_cb on_data, http_end_cb on_end)
{
    if (!r->server->o.stream_bodies || (r->flags & HTTP__R_READING))
        return -EINVAL;
    r->on_data = on_data;
    r->on_end = on_end;
    r->flags |= HTTP__R_READING;
    if (!r->conn)
        return 0;
    if (r->flags & HTTP__R_BODY_DONE) {
        r->flags |= HTTP__R_END_DUE; /* no body, or an error came first */
    } else {
        http__send_continue(r);
    }
    http__conn_kick(r->conn); /* delivered from the loop, never from inside this call */
    return 0;
}

HTTP_API void http_req_pause(http_req *r)
{
    r->flags |= HTTP__R_PAUSED;
}

HTTP_API void http_req_resume(http_req *r)
{
    if (!(r->flags & HTTP__R_PAUSED))
        return;
    r->flags &= ~HTTP__R_PAUSED;
    if (r->conn)
        http__conn_kick(r->conn);
}

/* Tells the requests of a lost connection; each still has to be ended.
 * An on_close callback may end any request of the list (its own, another
 * one, several), so none is released while the callbacks run: the list
 * stays intact, an end meanwhile only marks the request, and a second
 * walk releases every request that has ended. */
static void http__conn_abort(http__conn *c, int reason)
{
    http_req *first = c->head, *r, *next;
    (void)reason;
    c->head = c->tail = NULL;
    c->body_req = NULL;
    c->inflight = 0;
    for (r = first; r; r = r->next) {
        r->conn = NULL;
        r->flags |= HTTP__R_ABORTED | HTTP__R_ABORTING;
        if (!(r->flags & HTTP__R_ENDED))
            r->server->st.aborted++;
    }
    for (r = first; r; r = r->next) {
        if (r->flags & HTTP__R_ENDED)
            continue;
        if (!(r->flags & HTTP__R_DISPATCHED))
            r->flags |= HTTP__R_ENDED; /* the handler never saw it: end it here */
        else if (r->on_close)
            r->on_close(r);
    }
    for (r = first; r; r = next) {
        next = r->next;
        r->next = NULL;
        r->flags &= ~HTTP__R_ABORTING;
        /* an upgrade accepted but not handed over: its callback, without
         * a stream, is how the caller learns target was never opened */
        if (r->flags & HTTP__R_UPGRADE)
            r->up_cb(r, NULL, NULL, 0);
        /* a file being sent is released by its write's callback (the
         * close cancels it); one not ended yet by the end to come */
        if ((r->flags & HTTP__R_ENDED) && !(r->flags & HTTP__R_FILE_BUSY))
            http__req_release(r);
    }
}

/* ---- connections ------------------------------------------------------------------------ */

static void http__conn_closed(evloop_handle *h)
{
    http__conn *c = (http__conn *)h->data;
    http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    HTTP_FREE(c->in);
    HTTP_FREE(c->out);
    HTTP_FREE(c->partial);
    HTTP_FREE(c);
    srv->st.connections--;
    http__server_maybe_done(srv);
}

static void http__conn_close(http__conn *c, int reason)
{
    if (c->flags & HTTP__C_CLOSING)
        return;
    c->flags |= HTTP__C_CLOSING;
    http__tq_unlink(c);
    http__conn_abort(c, reason);
    evloop_close(&c->s.handle, http__conn_closed);
}

/* After a closing response: half-close, then read and drop until the
 * client closes (or linger_ms), so that what the client still sends does
 * not turn into a reset that destroys the response on its way. */
static void http__linger_read(evloop_stream *s, ssize_t n, const char *buf)
{
    http__conn *c = (http__conn *)s->handle.data;
    (void)buf;
    if (n < 0)
        http__conn_close(c, (int)n);
}

static void http__linger_shut(evloop_stream *s, int status)
{
    http__conn *c = (http__conn *)s->handle.data;
    if (c->flags & HTTP__C_CLOSING)
        return;
    if (status < 0 || (c->flags & HTTP__C_EOF)) {
        http__conn_close(c, status);
        return;
    }
    c->flags |= HTTP__C_LINGER;
    if (evloop_read_start(&c->s, http__linger_read) < 0) {
        http__conn_close(c, 0);
        return;
    }
    http__conn_timers(c);
}

static void http__conn_finish(http__conn *c)
{
    if (c->flags & (HTTP__C_LINGER | HTTP__C_CLOSING))
        return;
    if (c->out_len)
        http__conn_flush(c);
    if (c->flags & HTTP__C_CLOSING)
        return;
    c->flags |= HTTP__C_LINGER;
    if (evloop_shutdown(&c->s, http__linger_shut) < 0)
        http__conn_close(c, 0);
}

/* Hands an upgraded connection over once its 101 has been written. */
static void http__conn_upgrade(http__conn *c, http_req *r)
{
    int fd;
    c->flags |= HTTP__C_DETACHED;
    fd = evloop_stream_detach(&c->s);
    c->head = r->next;
    if (!c->head)
        c->tail = NULL;
    c->inflight--;
    r->conn = NULL;
    if (fd < 0 || evloop_stream_open(r->up_target, fd) < 0) {
        if (fd >= 0)
            close(fd);
        r->flags |= HTTP__R_ABORTED;
        r->up_cb(r, NULL, NULL, 0);
    } else {
        r->up_cb(r, r->up_target, c->in, c->in_len);
    }
    c->in_len = 0;
    http__req_release(r);
    http__conn_close(c, 0);
}

/* Input can go on (the pipeline has room, a body reader resumed, an
 * upgrade was declined): parse what waits and read again, from next-tick. */
static void http__conn_kick(http__conn *c)
{
    if (c->flags & (HTTP__C_RESUME_DUE | HTTP__C_CLOSING))
        return;
    if (evloop_next_tick(c->srv->loop, http__read_resume_tick, c) == 0)
        c->flags |= HTTP__C_RESUME_DUE;
}

static void http__conn_drain(evloop_stream *s)
{
    http__conn *c = (http__conn *)s->handle.data;
    if (c->flags & HTTP__C_CLOSING)
        return;
    http__conn_advance(c);
    if (!(c->flags & HTTP__C_CLOSING))
        http__conn_timers(c);
}

/* Why a new request must wait, or 0: max_pipelined requests are in flight
 * (HTTP__C_PIPE_FULL), or the output (queued in the stream, assembled, or
 * held by responses waiting for their turn) has reached write_high_water
 * (HTTP__C_OUT_FULL), so that a client that sends requests without reading
 * the responses cannot make the server buffer them without bound. */
static unsigned http__conn_input_wait(const http__conn *c)
{
    const http_server *srv = c->srv;
    if (c->inflight >= srv->o.max_pipelined)
        return HTTP__C_PIPE_FULL;
    if (evloop_stream_queued(&c->s) + c->out_len + c->held >= srv->o.write_high_water)
        return HTTP__C_OUT_FULL;
    return 0;
}

/* The same, remembering the reason: http__conn_advance resumes the input
 * when it is gone. */
static bool http__conn_input_full(http__conn *c)
{
    unsigned why = http__conn_input_wait(c);
    c->flags |= why;
    return why != 0;
}

/* Moves the line forward: the first request's held output goes out, ended
 * requests leave, a closing response closes, drain is told. */
static void http__conn_advance(http__conn *c)
{
    http_req *r;
    for (;;) {
        if (c->flags & HTTP__C_CLOSING)
            return;
        r = c->head;
        if (!r)
            break;
        if (r->pend_len) {
            size_t n = r->pend_len;
            r->pend_len = 0;
            c->held -= n;
            if (http__emit(r, r->pend, n) < 0) {
                http__conn_close(c, -ENOMEM);
                return;
            }
            HTTP_FREE(r->pend);
            r->pend = NULL;
            r->pend_cap = 0;
        }
        if (r->flags & HTTP__R_FILE) {
            if (!(r->flags & HTTP__R_FILE_BUSY) && http__file_start(r) < 0) {
                http__conn_close(c, -EIO);
                return;
            }
            break; /* the line waits for the file */
        }
        if (!(r->flags & HTTP__R_ENDED)) {
            if ((r->flags & HTTP__R_WANT_DRAIN) && http_res_writable(r)) {
                r->flags &= ~HTTP__R_WANT_DRAIN;
                if (r->on_drain)
                    r->on_drain(r);
                continue;
            }
            break;
        }
        if (r->flags & HTTP__R_UPGRADE) {
            if (c->flags & HTTP__C_IN_READ) { /* the bytes after it are not kept yet */
                http__conn_kick(c);
                return;
            }
            if (c->out_len || evloop_stream_queued(&c->s)) {
                http__conn_flush(c);
                return; /* the drain comes back here */
            }
            http__conn_upgrade(c, r);
            return;
        }
        if (c->body_req == r) {
            /* ended before its body arrived: skip a little of it, or close */
            uint64_t left = r->has_content_length ? r->content_length - r->body.len : UINT64_MAX;
            c->body_req = NULL;
            if (left <= HTTP__DISCARD_MAX) {
                c->flags |= HTTP__C_DISCARD;
                http__conn_kick(c); /* reading may have stopped for it */
            } else {
                r->flags |= HTTP__R_CLOSE;
            }
        }
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->inflight--;
        if (r->upgrade && (c->flags & HTTP__C_UPGRADING)) {
            c->flags &= ~HTTP__C_UPGRADING; /* declined: HTTP goes on */
            http__conn_kick(c);
        }
        if (r->flags & HTTP__R_CLOSE) {
            c->flags |= HTTP__C_CLOSE_AFTER;
            http__req_release(r);
            /* later pipelined requests will get no answer */
            http__conn_abort(c, 0);
            http__conn_finish(c);
            return;
        }
        http__req_release(r);
    }
    if (!c->head && (c->flags & HTTP__C_CLOSE_AFTER)) {
        http__conn_finish(c);
        return;
    }
    /* room in the pipeline, or the output drained: read on */
    if ((c->flags & (HTTP__C_PIPE_FULL | HTTP__C_OUT_FULL)) && !http__conn_input_wait(c)) {
        c->flags &= ~(HTTP__C_PIPE_FULL | HTTP__C_OUT_FULL);
        http__conn_kick(c);
    }
    http__conn_timers(c);
}

/* ---- input ------------------------------------------------------------------------------ */

/* Answers an error the server found (bad request, too large) and closes. */
static void http__conn_error(http__conn *c, int err)
{
    http_req *r;
    char body[160];
    int status = err == -ENOMEM ? 503 : err == -EFBIG ? 413 : http_error_status(err);
    int n;
    c->srv->st.parse_errors++;
    c->flags |= HTTP__C_CLOSE_AFTER;
    c->body_req = NULL;
    r = http__req_synthetic(c);
    if (!r) {
        http__conn_close(c, err);
        return;
    }
    http__conn_push(c, r);
    n = snprintf(body, sizeof body, "%d %s: %s\n", status, http_status_reason(status),
                 err == -ENOMEM  ? "out of memory"
                 : err == -EFBIG ? "the body is larger than the server accepts"
                                 : http_strerror(err));
    r->flags |= HTTP__R_CLOSE;
    http_res_status(r, status);
    http_res_header(r, "Content-Type", "text/plain");
    http_res_end(r, body, (size_t)n);
}

static void http__dispatch(http__conn *c, http_req *r)
{
    r->flags |= HTTP__R_DISPATCHED;
    c->srv->handler(r);
}

/* The body of r is complete. An Upgrade request's new protocol starts
 * after it; a buffered body goes to the handler now. */
static void http__body_complete(http__conn *c, http_req *r)
{
    c->body_req = NULL;
    r->flags |= HTTP__R_BODY_DONE;
    if (r->flags & HTTP__R_ENDED)
        return; /* answered (or declined) already: nothing to tell */
    if (r->upgrade)
        c->flags |= HTTP__C_UPGRADING;
    if (!c->srv->o.stream_bodies)
        http__dispatch(c, r);
    else if (r->on_end)
        r->on_end(r, 0);
}

/* Body bytes of the request being read (or skipped). Returns the bytes
 * consumed; stops when the request holds its body (http__body_held). A
 * callback may end and release the request: it is looked up again after. */
static size_t http__conn_body(http__conn *c, const char *data, size_t len)
{
    http_server *srv = c->srv;
    size_t pos = 0;
    while (pos < len) {
        http_req *r = c->body_req;
        http_body b;
        int rc;
        if (!r && !(c->flags & HTTP__C_DISCARD))
            break;
        if (http__body_held(c))
            break;
        memset(&b, 0, sizeof b);
        rc = http_parse_body(&c->p, data + pos, len - pos, &b);
        pos += b.consumed;
        if (b.consumed)
            c->flags |= HTTP__C_BODY_MOVED; /* progress: the body timeout restarts */
        else if (rc == 0)
            break; /* a piece of framing (a trailer field, say) waits for the rest */
        if (rc < 0) {
            c->flags &= ~HTTP__C_DISCARD;
            if (r && srv->o.stream_bodies) {
                c->body_req = NULL;
                r->body_status = rc;
                r->flags |= HTTP__R_BODY_DONE | HTTP__R_CLOSE;
                c->flags |= HTTP__C_CLOSE_AFTER;
                if (r->on_end)
                    r->on_end(r, rc);
                return len; /* nothing more from this connection */
            }
            if (r)
                r->flags |= HTTP__R_ENDED; /* never dispatched: the error answers */
            http__conn_error(c, rc);
            return len;
        }
        if (b.data.len && r) {
            if (srv->o.stream_bodies) {
                r->body.len += b.data.len; /* a count: the bytes are not kept */
                if (r->on_data)
                    r->on_data(r, b.data.ptr, b.data.len);
                if (c->flags & HTTP__C_CLOSING)
                    return len;
                if (c->body_req != r)
                    r = NULL; /* ended and released by the callback */
            } else {
                char *body = (char *)(uintptr_t)r->body.ptr;
                size_t blen = r->body.len;
                if (blen + b.data.len > srv->o.max_body) {
                    r->flags |= HTTP__R_ENDED;
                    http__conn_error(c, -EFBIG);
                    return len;
                }
                if (http__append(&body, &blen, &r->body_cap, b.data.ptr, b.data.len) < 0) {
                    r->flags |= HTTP__R_ENDED;
                    http__conn_error(c, -ENOMEM);
                    return len;
                }
                r->flags |= HTTP__R_BODY_HEAP;
                r->body.ptr = body;
                r->body.len = blen;
            }
        }
        if (rc == 1) {
            c->flags &= ~HTTP__C_DISCARD;
            if (r)
                http__body_complete(c, r);
            if (c->flags & HTTP__C_CLOSING)
                return len;
            break;
        }
    }
    return pos;
}

/* Parses what can be parsed of data[0..len): heads, bodies, dispatching
 * handlers. Returns the bytes consumed (the rest waits in c->in). */
static size_t http__conn_parse(http__conn *c, const char *data, size_t len)
{
    http_server *srv = c->srv;
    size_t pos = 0;
    while (!(c->flags & (HTTP__C_CLOSING | HTTP__C_LINGER))) {
        http_message *m;
        http_header *hdrs;
        http_req *r;
        http_body_kind body;
        bool expect_unknown;
        int rc;
        if (c->body_req || (c->flags & HTTP__C_DISCARD)) {
            /* a body is read to its end, also after the last request */
            size_t used = http__conn_body(c, data + pos, len - pos);
            pos += used;
            if (c->body_req || (c->flags & HTTP__C_DISCARD) || pos == len)
                break;
            continue;
        }
        /* a new head: not after the last request, not before an upgrade
         * is decided, not while the pipeline or the output is full */
        if (c->flags & (HTTP__C_CLOSE_AFTER | HTTP__C_UPGRADING))
            break;
        if (http__conn_input_full(c))
            break;
        if (pos == len)
            break;
        if (c->partial) {
            m = &c->partial->m;
            hdrs = c->partial->h;
        } else {
            m = &srv->m;
            hdrs = srv->scratch;
        }
        rc = http_parse_head(&c->p, data + pos, len - pos, m, hdrs, srv->o.parser.max_headers);
        if (rc == 0) {
            if (!c->partial) { /* keep this connection's progress out of the shared scratch */
                size_t sz = sizeof(http__partial) + srv->o.parser.max_headers * sizeof(http_header);
                c->partial = (http__partial *)HTTP_MALLOC(sz);
                if (!c->partial) {
                    http__conn_error(c, -ENOMEM);
                    return len;
                }
                memcpy(&c->partial->m, m, sizeof *m);
                memcpy(c->partial->h, hdrs, srv->o.parser.max_headers * sizeof(http_header));
            }
            break;
        }
        if (rc < 0) {
            http__conn_error(c, rc);
            return len;
        }
        r = http__req_new(c, m, data + pos, (size_t)rc);
        expect_unknown = m->expect_unknown;
        body = m->body;
        if (c->partial) { /* m was in it */
            HTTP_FREE(c->partial);
            c->partial = NULL;
        }
        pos += (size_t)rc;
        if (!r) {
            http__conn_error(c, -ENOMEM);
            return len;
        }
        http__conn_push(c, r);
        if (expect_unknown) {
            r->flags |= HTTP__R_DISPATCHED | HTTP__R_CLOSE;
            http_res_send(r, 417, "text/plain", "417 Expectation Failed\n", 23);
            continue;
        }
        if (body == HTTP_BODY_NONE) {
            if (r->upgrade) /* the bytes after it may not be HTTP */
                c->flags |= HTTP__C_UPGRADING;
            http__dispatch(c, r);
            continue;
        }
        c->body_req = r;
        if (srv->o.stream_bodies) {
            http__dispatch(c, r);
            continue;
        }
        if (r->has_content_length && r->content_length > srv->o.max_body) {
            r->flags |= HTTP__R_ENDED | HTTP__R_DISPATCHED;
            c->body_req = NULL;
            http__conn_error(c, -EFBIG);
            return len;
        }
        if (r->has_content_length && r->content_length) {
            char *body = (char *)HTTP_MALLOC((size_t)r->content_length);
            if (!body) {
                r->flags |= HTTP__R_ENDED | HTTP__R_DISPATCHED;
                http__conn_error(c, -ENOMEM);
                return len;
            }
            r->body.ptr = body;
            r->body_cap = (size_t)r->content_length;
            r->flags |= HTTP__R_BODY_HEAP;
        }
        http__send_continue(r);
    }
    return pos;
}

/* Runs the parser over what is waiting in c->in (after a pause). */
static void http__conn_feed_input(http__conn *c)
{
    size_t used;
    if (c->flags & (HTTP__C_CLOSING | HTTP__C_IN_READ))
        return;
    c->flags |= HTTP__C_IN_READ;
    used = c->in_len ? http__conn_parse(c, c->in, c->in_len) : 0;
    if (!(c->flags & HTTP__C_CLOSING) && c->in) {
        if (used > c->in_len)
            used = c->in_len;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    c->flags &= ~HTTP__C_IN_READ;
}

static void http__conn_read(evloop_stream *s, ssize_t n, const char *buf);

/* Reading goes on while a body arrives that is taken (read, buffered or
 * skipped), and between bodies while a new head may be parsed: not after
 * the last request, not while an upgrade holds the input, not while the
 * pipeline or the output is full (the reason is kept in c->flags, see
 * http__conn_input_full). */
static bool http__conn_may_read(http__conn *c)
{
    if (c->flags & (HTTP__C_CLOSING | HTTP__C_EOF))
        return false;
    if (c->body_req || (c->flags & HTTP__C_DISCARD)) {
        if (http__body_held(c))
            return false;
    } else if ((c->flags & (HTTP__C_CLOSE_AFTER | HTTP__C_UPGRADING)) || http__conn_input_full(c)) {
        return false;
    }
    return c->in_len < c->srv->o.parser.max_head + 65536;
}

static void http__conn_sync_read(http__conn *c)
{
    if (c->flags & (HTTP__C_CLOSING | HTTP__C_LINGER))
        return;
    if (http__conn_may_read(c)) {
        if (c->flags & HTTP__C_STOPPED) {
            c->flags &= ~HTTP__C_STOPPED;
            if (evloop_read_start(&c->s, http__conn_read) < 0)
                http__conn_close(c, -EIO);
        }
    } else if (!(c->flags & HTTP__C_STOPPED)) {
        c->flags |= HTTP__C_STOPPED;
        evloop_read_stop(&c->s);
    }
}

/* Streamed-body owed end, or input that waited: from next-tick. */
static void http__read_resume_tick(evloop *loop, void *arg)
{
    http__conn *c = (http__conn *)arg;
    http_req *b;
    (void)loop;
    c->flags &= ~HTTP__C_RESUME_DUE;
    if (c->flags & HTTP__C_CLOSING)
        return;
    /* an end owed to a request whose body was already complete; on_end
     * may end (and release) any request, so the scan starts over */
    for (b = c->head; b;) {
        if (!(b->flags & HTTP__R_END_DUE)) {
            b = b->next;
            continue;
        }
        b->flags &= ~HTTP__R_END_DUE;
        if (b->on_end && !(b->flags & HTTP__R_ENDED))
            b->on_end(b, b->body_status);
        if (c->flags & HTTP__C_CLOSING)
            return;
        b = c->head;
    }
    http__conn_feed_input(c);
    if (c->flags & HTTP__C_CLOSING)
        return;
    http__conn_sync_read(c);
    http__conn_flush(c);
    if (!(c->flags & HTTP__C_CLOSING))
        http__conn_timers(c);
}

static void http__conn_read(evloop_stream *s, ssize_t n, const char *buf)
{
    http__conn *c = (http__conn *)s->handle.data;
    size_t used;
    if (n < 0) {
        http_req *r;
        bool unanswered = false;
        for (r = c->head; r; r = r->next)
            if (!(r->flags & HTTP__R_ENDED))
                unanswered = true;
        if (n == EVLOOP_EOF && !unanswered && !c->body_req && !(c->flags & HTTP__C_LINGER) &&
            (c->head || c->out_len || evloop_stream_queued(&c->s))) {
            /* answered, not yet all written: finish writing, then close */
            c->flags |= HTTP__C_EOF | HTTP__C_CLOSE_AFTER;
            http__conn_flush(c);
            if (!(c->flags & HTTP__C_CLOSING))
                http__conn_timers(c);
            return;
        }
        /* gone (a client that stops sending while a handler works has
         * aborted the request, as a browser leaving a page does) */
        http__conn_close(c, (int)n);
        return;
    }
    c->flags |= HTTP__C_IN_READ;
    if (c->in_len) { /* bytes wait from before: add these, parse all */
        if (http__append(&c->in, &c->in_len, &c->in_cap, buf, (size_t)n) < 0) {
            c->flags &= ~HTTP__C_IN_READ;
            http__conn_close(c, -ENOMEM);
            return;
        }
        used = http__conn_parse(c, c->in, c->in_len);
        if (!(c->flags & HTTP__C_CLOSING) && c->in) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }
    } else { /* parse straight from the loop's buffer; keep only a rest */
        used = http__conn_parse(c, buf, (size_t)n);
        if (!(c->flags & HTTP__C_CLOSING) && used < (size_t)n &&
            http__append(&c->in, &c->in_len, &c->in_cap, buf + used, (size_t)n - used) < 0) {
            c->flags &= ~HTTP__C_IN_READ;
            http__conn_close(c, -ENOMEM);
            return;
        }
    }
    c->flags &= ~HTTP__C_IN_READ;
    if (c->flags & HTTP__C_CLOSING)
        return;
    if (!c->in_len && c->in && !c->inflight) { /* idle: no buffer kept */
        HTTP_FREE(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    http__conn_flush(c);
    if (c->flags & HTTP__C_CLOSING)
        return;
    http__conn_sync_read(c);
    http__conn_timers(c);
}

static void http__on_connection(evloop_stream *l, int status)
{
    http_server *srv = ((http__listener *)l->handle.data)->srv;
    http__conn *c;
    if (status < 0)
        return; /* EMFILE and such: the loop pauses the listener */
    c = (http__conn *)HTTP_MALLOC(sizeof *c);
    if (!c)
        return; /* not accepted: the loop closes it */
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->s.handle.data = c;
    if (l->handle.type == EVLOOP_UNIX)
        evloop_unix_init(srv->loop, &c->s);
    else
        evloop_tcp_init(srv->loop, &c->s);
    /* in the list from the start: http__conn_closed unlinks every one */
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->st.connections++;
    if (evloop_accept(l, &c->s) < 0) {
        http__conn_close(c, -EIO);
        return;
    }
    srv->st.connections_total++;
    if (srv->st.connections > srv->o.max_connections || srv->shutting) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                                   "Content-Length: 0\r\n\r\n";
        srv->st.rejected++;
        /* closed like any closing response (half-close, then what the
         * client sends is dropped for up to linger_ms): a close with its
         * request unread would be a reset that can destroy the 503 */
        if (evloop_write_copy(&c->s, busy, sizeof busy - 1, NULL, NULL) < 0) {
            http__conn_close(c, -EBUSY);
            return;
        }
        c->flags |= HTTP__C_CLOSE_AFTER;
        http__conn_finish(c);
        http__conn_timers(c);
        return;
    }
    if (l->handle.type == EVLOOP_TCP)
        evloop_tcp_nodelay(&c->s, 1);
    http_parse_init(&c->p, HTTP_KIND_REQUEST, &srv->o.parser);
    evloop_stream_set_hwm(&c->s, 1, http__conn_drain); /* drain: the queue emptied */
    if (evloop_read_start(&c->s, http__conn_read) < 0) {
        http__conn_close(c, -EIO);
        return;
    }
    http__conn_timers(c);
}

/* ---- the server ------------------------------------------------------------------------- */

static void http__on_signal(evloop_signal *sig, int signum)
{
    http_server *srv = (http_server *)sig->handle.data;
    (void)signum;
    http_server_shutdown(srv, srv->o.shutdown_timeout_ms, srv->done);
}

HTTP_API int http_server_new(http_server **out, evloop *loop, const http_server_options *opts,
                             http_handler handler)
{
    http_server *srv;
    http_server_options o;
    int i;
    HTTP_ASSERT(out && loop && handler);
    *out = NULL;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (!o.parser.max_request_line) o.parser.max_request_line = 8192;
    if (!o.parser.max_head) o.parser.max_head = 32768;
    if (!o.parser.max_headers) o.parser.max_headers = 100;
    if (!o.max_body) o.max_body = 1u << 20;
    if (!o.header_timeout_ms) o.header_timeout_ms = 10000;
    if (!o.body_timeout_ms) o.body_timeout_ms = 30000;
    if (!o.keepalive_timeout_ms) o.keepalive_timeout_ms = 5000;
    if (!o.write_timeout_ms) o.write_timeout_ms = 30000;
    if (!o.linger_ms) o.linger_ms = 2000;
    if (!o.max_connections) o.max_connections = 10000;
    if (!o.max_pipelined) o.max_pipelined = 16;
    if (!o.write_high_water) o.write_high_water = 65536;
    if (!o.shutdown_timeout_ms) o.shutdown_timeout_ms = 10000;
    srv = (http_server *)HTTP_MALLOC(sizeof *srv);
    if (!srv)
        return -ENOMEM;
    memset(srv, 0, sizeof *srv);
    srv->scratch = (http_header *)HTTP_MALLOC(o.parser.max_headers * sizeof(http_header));
    if (!srv->scratch) {
        HTTP_FREE(srv);
        return -ENOMEM;
    }
    if (o.server_name) {
        size_t n = strlen(o.server_name);
        if (!http__is_value(o.server_name, n) ||
            !(srv->server_line = (char *)HTTP_MALLOC(n + 11))) {
            HTTP_FREE(srv->scratch);
            HTTP_FREE(srv);
            return o.server_name && !http__is_value(o.server_name, n) ? -EINVAL : -ENOMEM;
        }
        memcpy(srv->server_line, "Server: ", 8);
        memcpy(srv->server_line + 8, o.server_name, n);
        memcpy(srv->server_line + 8 + n, "\r\n", 2);
        srv->server_line_len = n + 10;
        o.server_name = NULL; /* not kept: the caller's string may go */
    }
    srv->loop = loop;
    srv->handler = handler;
    srv->o = o;
    srv->port = -1;
    srv->tdur[HTTP__T_HEADER] = o.header_timeout_ms;
    srv->tdur[HTTP__T_BODY] = o.body_timeout_ms;
    srv->tdur[HTTP__T_IDLE] = o.keepalive_timeout_ms;
    srv->tdur[HTTP__T_WRITE] = o.write_timeout_ms;
    srv->tdur[HTTP__T_LINGER] = o.linger_ms;
    evloop_timer_init(loop, &srv->timer);
    evloop_unref(&srv->timer.handle);
    evloop_timer_init(loop, &srv->shutdown_timer);
    srv->open_handles = 2;
    if (o.handle_signals) {
        srv->sigint.handle.data = srv;
        srv->sigterm.handle.data = srv;
        evloop_signal_init(loop, &srv->sigint);
        evloop_signal_init(loop, &srv->sigterm);
        srv->open_handles += 2;
        if ((i = evloop_signal_start(&srv->sigint, http__on_signal, SIGINT)) < 0 ||
            (i = evloop_signal_start(&srv->sigterm, http__on_signal, SIGTERM)) < 0) {
            http_server_shutdown(srv, 0, NULL);
            *out = srv;
            return i;
        }
        evloop_unref(&srv->sigint.handle);
        evloop_unref(&srv->sigterm.handle);
    }
    *out = srv;
    return 0;
}

/* ---- listeners ------------------------------------------------------------------------- */

/* A listener is closed after a failed listen (its memory goes with its
 * close callback, so that nothing is reused while it closes) and at
 * shutdown. A Unix socket's file is removed then, if it is still ours. */
static void http__listener_closed(evloop_handle *h)
{
    http__listener *l = (http__listener *)h->data;
    http_server *srv = l->srv;
    if (l->path) {
        struct stat st;
        if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
            st.st_ino == l->ino)
            unlink(l->path);
        HTTP_FREE(l->path);
    }
    HTTP_FREE(l);
    srv->open_handles--;
    http__server_maybe_done(srv);
}

static http__listener *http__listener_new(http_server *srv)
{
    http__listener *l = (http__listener *)HTTP_MALLOC(sizeof *l);
    if (!l)
        return NULL;
    memset(l, 0, sizeof *l);
    l->srv = srv;
    l->s.handle.data = l;
    srv->open_handles++; /* its close is waited for, even after a failure */
    return l;
}

/* Listens on l if its bind succeeded (bound == 0), and adds it to the
 * server; closes it on failure. */
static int http__listen(http_server *srv, http__listener *l, int bound)
{
    int rc = bound < 0 ? bound : evloop_listen(&l->s, srv->o.backlog, http__on_connection);
    if (rc < 0) {
        evloop_close(&l->s.handle, http__listener_closed);
        return rc;
    }
    l->next = srv->listeners;
    srv->listeners = l;
    return 0;
}

HTTP_API int http_server_listen(http_server *srv, const char *host, int port)
{
    struct sockaddr_storage a;
    http__listener *l;
    int rc;
    if (srv->shutting || !host)
        return -EINVAL;
    if ((rc = evloop_addr(host, port, &a)) < 0)
        return rc;
    if (!(l = http__listener_new(srv)))
        return -ENOMEM;
    evloop_tcp_init(srv->loop, &l->s);
    rc = evloop_tcp_bind(&l->s, (struct sockaddr *)&a, srv->o.reuseport ? EVLOOP_BIND_REUSEPORT : 0);
    if ((rc = http__listen(srv, l, rc)) < 0)
        return rc;
    if (srv->port < 0 && evloop_sockname(&l->s, &a) == 0)
        srv->port = evloop_addr_port((struct sockaddr *)&a);
    return 0;
}

/* A socket file nobody listens on any more (a connection is refused) was
 * left by a server that is gone: it is removed so that the bind succeeds.
 * One that answers is in use (-EADDRINUSE); anything else at the path is
 * left for the bind to refuse. */
static int http__unix_clear_stale(const char *path)
{
    struct sockaddr_un a;
    struct stat st;
    int fd, rc, err;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || strlen(path) >= sizeof a.sun_path)
        return 0;
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    /* non-blocking: a listener with a full backlog must not stall us */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path, strlen(path));
    rc = connect(fd, (struct sockaddr *)(void *)&a, sizeof a);
    err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
        return -EADDRINUSE; /* someone answers (or will: a full backlog) */
    if (err == ECONNREFUSED)
        unlink(path); /* nobody listens: stale */
    return 0;           /* else the bind tells what is wrong */
}

HTTP_API int http_server_listen_unix(http_server *srv, const char *path)
{
    http__listener *l;
    struct stat st;
    int rc;
    if (srv->shutting || !path)
        return -EINVAL;
    if ((rc = http__unix_clear_stale(path)) < 0)
        return rc;
    if (!(l = http__listener_new(srv)))
        return -ENOMEM;
    evloop_unix_init(srv->loop, &l->s);
    rc = evloop_unix_bind(&l->s, path);
    if (rc == 0 && lstat(path, &st) == 0) { /* ours now: removed at close */
        l->path = (char *)HTTP_MALLOC(strlen(path) + 1);
        if (l->path) {
            memcpy(l->path, path, strlen(path) + 1);
            l->dev = st.st_dev;
            l->ino = st.st_ino;
        }
    }
    return http__listen(srv, l, rc);
}

HTTP_API int http_server_port(const http_server *srv) { return srv->port; }
HTTP_API evloop *http_server_loop(const http_server *srv) { return srv->loop; }
HTTP_API void http_server_set_data(http_server *srv, void *data) { srv->data = data; }
HTTP_API void *http_server_get_data(const http_server *srv) { return srv->data; }

HTTP_API void http_server_get_stats(const http_server *srv, http_server_stats *out)
{
    *out = srv->st;
}

static void http__handle_closed(evloop_handle *h)
{
    http_server *srv = (http_server *)h->data;
    srv->open_handles--;
    http__server_maybe_done(srv);
}

static void http__server_maybe_done(http_server *srv)
{
    if (!srv->shutting || srv->finished || srv->st.connections || srv->st.requests)
        return;
    if (srv->open_handles) {
        /* the last connection is gone: close the server's own handles */
        if (!evloop_is_closing(&srv->timer.handle)) {
            srv->timer.handle.data = srv;
            srv->shutdown_timer.handle.data = srv;
            evloop_close(&srv->timer.handle, http__handle_closed);
            evloop_close(&srv->shutdown_timer.handle, http__handle_closed);
            if (srv->o.handle_signals) {
                evloop_close(&srv->sigint.handle, http__handle_closed);
                evloop_close(&srv->sigterm.handle, http__handle_closed);
            }
        }
        return;
    }
    srv->finished = 1;
    if (srv->done)
        srv->done(srv);
}

static void http__shutdown_deadline(evloop_timer *t)
{
    http_server *srv = HTTP__CONTAINER(t, http_server, shutdown_timer);
    http__conn *c = srv->conns, *next;
    for (; c; c = next) {
        next = c->next;
        http__conn_close(c, -ETIMEDOUT);
    }
}

HTTP_API void http_server_shutdown(http_server *srv, unsigned timeout_ms, http_server_cb done)
{
    http__conn *c, *next;
    http__listener *l, *lnext;
    if (done)
        srv->done = done;
    if (srv->shutting)
        return;
    srv->shutting = 1;
    for (l = srv->listeners; l; l = lnext) {
        lnext = l->next;
        evloop_close(&l->s.handle, http__listener_closed);
    }
    srv->listeners = NULL;
    for (c = srv->conns; c; c = next) {
        next = c->next;
        if (!c->inflight && !c->body_req && !(c->flags & HTTP__C_DISCARD) && !c->out_len &&
            !evloop_stream_queued(&c->s))
            http__conn_close(c, 0); /* idle: nothing to finish */
        else
            c->flags |= HTTP__C_CLOSE_AFTER;
    }
    if (timeout_ms == 0)
        http__shutdown_deadline(&srv->shutdown_timer);
    else if (srv->st.connections)
        evloop_timer_start(&srv->shutdown_timer, http__shutdown_deadline, timeout_ms, 0);
    http__server_maybe_done(srv);
}

HTTP_API int http_server_free(http_server *srv)
{
    if (!srv)
        return 0;
    if (!srv->finished)
        return -EBUSY;
    while (srv->nfree)
        HTTP_FREE(srv->freelist[--srv->nfree]);
    HTTP_FREE(srv->scratch);
    HTTP_FREE(srv->server_line);
    HTTP_FREE(srv);
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* HTTP__SERVER_DONE */

/*
 * LICENSE (MIT)
 *
 * Copyright (c) the authors of this project
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy
 * of this software and associated documentation files (the "Software"), to
 * deal in the Software without restriction, including without limitation the
 * rights to use, copy, modify, merge, publish, distribute, sublicense, and/or
 * sell copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
 * FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
 * IN THE SOFTWARE.
 */
