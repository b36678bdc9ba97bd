/**
 * The corpus of the HTTP Garden sweep (scripts/garden.ts): odd HTTP/1.1 requests as latin1
 * strings, by family (request line, targets, Host, Content-Length, Transfer-Encoding, chunks,
 * field names, Expect, HTTP/1.0, pipelining, long lines, Connection), then seeded mutations of a
 * few base requests (a byte from a hostile set inserted, replaced or deleted at a random place).
 */

const H = 'Host: a.example\r\n'
const CTL: [string, string][] = [['HTAB', '\t'], ['VT', '\x0b'], ['FF', '\x0c'], ['CR', '\r'], ['LF', '\n'], ['NUL', '\x00'], ['x80', '\x80'], ['NBSP', '\xa0'], ['xFF', '\xff'], ['SP', ' ']]

function requestLine(): [string, string][] {
  const out: [string, string][] = []
  for (const [n, c] of CTL) {
    out.push([`line: ${n} before method`, `${c}GET /x HTTP/1.1\r\n${H}\r\n`])
    out.push([`line: ${n} for SP after method`, `GET${c}/x HTTP/1.1\r\n${H}\r\n`])
    out.push([`line: ${n} after SP after method`, `GET ${c}/x HTTP/1.1\r\n${H}\r\n`])
    out.push([`line: ${n} in target`, `GET /x${c}y HTTP/1.1\r\n${H}\r\n`])
    out.push([`line: ${n} for SP before version`, `GET /x${c}HTTP/1.1\r\n${H}\r\n`])
    out.push([`line: ${n} before CRLF`, `GET /x HTTP/1.1${c}\r\n${H}\r\n`])
    out.push([`line: ${n} in method`, `G${c}ET /x HTTP/1.1\r\n${H}\r\n`])
  }
  for (const v of ['http/1.1', 'HTTP/01.1', 'HTTP/1.10', 'HTTP/1.01', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.2', 'HTTP/1', 'HTTP/1.1 ', 'HTTP /1.1', 'HTTP/1 .1', 'HTTPS/1.1', 'HTTP/１.1']) {
    out.push([`version ${JSON.stringify(v)}`, `GET /x ${v}\r\n${H}\r\n`])
  }
  for (const m of ['get', 'GeT', 'GET\x7f', 'G(ET', 'G@T', 'PO"ST', 'X'.repeat(300), 'PRI', 'TRACE', 'DELETE', 'M-SEARCH', 'GET;x']) {
    out.push([`method ${JSON.stringify(m.slice(0, 20))}`, `${m} /x HTTP/1.1\r\n${H}\r\n`])
  }
  out.push(['HTTP/0.9 request', 'GET /x\r\n\r\n'])
  out.push(['no target', `GET HTTP/1.1\r\n${H}\r\n`])
  out.push(['two spaces in target', `GET /x /y HTTP/1.1\r\n${H}\r\n`])
  return out
}

function targets(): [string, string][] {
  const out: [string, string][] = []
  const abs = ['http://a.example/x', 'HTTP://A.EXAMPLE/x', 'http://u@a.example/x', 'http://u:p@a.example/x', 'http://a.example@evil.example/x', 'http://evil.example@a.example/x',
    'http://a.example:80/x', 'http://a.example:080/x', 'http://a.example:8080/x', 'http://a.example:/x', 'http://a.example:65616/x', 'http://a.example./x', 'https://a.example/x',
    'https://a.example:443/x', 'http://a.example', 'http://a.example?q', 'http://a.example#f', 'ftp://a.example/x', 'http:/a.example/x', 'http:a.example/x', '//a.example/x',
    'http://%61.example/x', 'http://a.example\\@evil.example/x', 'http://a.example%2f@evil/x', 'http://[::1]/x', 'http://a.example/x?a=http://b/', 'http://a.example//x', 'http://a.example/../x',
    'http://a.example;x/y', 'http://a.example:80:80/x', 'http://a.example\t/x', 'http://A.example/x', 'http://a.exAmple:0/x']
  for (const t of abs) out.push([`absolute ${t}`, `GET ${t} HTTP/1.1\r\n${H}\r\n`])
  out.push(['absolute [::1] with Host [::1]', 'GET http://[::1]/x HTTP/1.1\r\nHost: [::1]\r\n\r\n'])
  out.push(['absolute [::1]:80 with Host [0:0::1]', 'GET http://[::1]:80/x HTTP/1.1\r\nHost: [0:0::1]\r\n\r\n'])
  out.push(['absolute a.example with Host a.example:80', 'GET http://a.example/x HTTP/1.1\r\nHost: a.example:80\r\n\r\n'])
  out.push(['absolute a.example with Host A.EXAMPLE.', 'GET http://a.example/x HTTP/1.1\r\nHost: A.EXAMPLE.\r\n\r\n'])
  out.push(['absolute a.example. with Host a.example', 'GET http://a.example./x HTTP/1.1\r\nHost: a.example\r\n\r\n'])
  out.push(['absolute, HTTP/1.0 no Host', 'GET http://a.example/x HTTP/1.0\r\n\r\n'])
  out.push(['absolute https, HTTP/1.0 no Host', 'GET https://evil.example/x HTTP/1.0\r\n\r\n'])
  out.push(['OPTIONS absolute no path', `OPTIONS http://a.example HTTP/1.1\r\n${H}\r\n`])
  out.push(['OPTIONS *', `OPTIONS * HTTP/1.1\r\n${H}\r\n`])
  out.push(['GET *', `GET * HTTP/1.1\r\n${H}\r\n`])
  out.push(['OPTIONS *x', `OPTIONS *x HTTP/1.1\r\n${H}\r\n`])
  const paths = ['/a/../admin', '/a/%2e%2e/admin', '/%2e%2e/admin', '//x', '///x', '/a%00b', '/x#frag', '/x?#', '/a\\..\\admin', '/a/./b', '/%2fadmin', '/a;/../admin', '/a%2f..%2fadmin',
    '/x?a=b%20c', '/x"<>{}|^`', '/%zz', '/%', '/.', '/..', '/a/..%2f', '/%2E%2E/admin', '/a/.%2e/admin', '/a/%2e./admin', '/..;/admin', '/a/..\\admin', '/x?', '/x??', '/x;p=1',
    '/%u002e%u002e/admin', '/a%c0%afadmin', '/a/%252e%252e/admin', '/\\\\evil.example/x', '/a/.../admin', '/a/..', '/a/%2e', '/x/%09', '/x%23y', '/x?y#', '/a//../admin', '/A', '/x/']
  for (const p of paths) out.push([`path ${p}`, `GET ${p} HTTP/1.1\r\n${H}\r\n`])
  return out
}

function hosts(): [string, string][] {
  const out: [string, string][] = []
  const values = ['', ' ', 'a.example.', 'A.EXAMPLE', 'a.example:', 'a.example:80', 'a.example:0', 'a.example:99999', 'a.example:123456', 'a.example:08', 'u@a.example', 'u:p@a.example',
    'a.example, b.example', 'a.example b.example', 'a.example,', '[::1]', '[::1]:80', '::1', '[::1', '::1]', '[v1.x]', '[::ffff:127.0.0.1]', 'a_example', '%61.example', 'a.example%00',
    'a.example/x', 'a.example?x', 'a.example#x', 'a.example\\x', 'a..example', '.a.example', '-a.example', '127.0.0.1', '127.1', '0x7f.0.0.1', 'a.example:80:80', 'localhost',
    'a.example\t', '\ta.example', 'a.example\xa0', 'a.ex\xe4mple', 'a.example;b', 'a"b', 'a\'b', 'a(b)', 'a*b', 'a~b', "a!$&'()*+,;=b"]
  for (const v of values) out.push([`Host ${JSON.stringify(v)}`, `GET /x HTTP/1.1\r\nHost: ${v}\r\n\r\n`])
  out.push(['two Host, same', `GET /x HTTP/1.1\r\n${H}${H}\r\n`])
  out.push(['two Host, one empty', `GET /x HTTP/1.1\r\n${H}Host:\r\n\r\n`])
  out.push(['Host and host', `GET /x HTTP/1.1\r\n${H}host: b.example\r\n\r\n`])
  out.push(['Host with space before colon', 'GET /x HTTP/1.1\r\nHost : a.example\r\n\r\n'])
  out.push(['Host no space', 'GET /x HTTP/1.1\r\nHost:a.example\r\n\r\n'])
  out.push(['Host obs-fold', 'GET /x HTTP/1.1\r\nHost: a.example\r\n .evil\r\n\r\n'])
  out.push(['Host_ beside Host', `GET /x HTTP/1.1\r\n${H}Host_: b.example\r\n\r\n`])
  out.push(['X-Forwarded-Host from client', `GET /x HTTP/1.1\r\n${H}X-Forwarded-Host: evil.example\r\n\r\n`])
  out.push(['HTTP/1.0 empty Host', 'GET /x HTTP/1.0\r\nHost:\r\n\r\n'])
  out.push(['HTTP/1.0 two Host', 'GET /x HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n'])
  return out
}

function lengths(): [string, string][] {
  const out: [string, string][] = []
  const values = ['5', '05', '000000000000000000005', '5 ', ' 5', '\t5\t', '5,5', '5, 5', '5,', ',5', '5,,5', '5 5', '0x5', '5.0', '+5', '-5', '1e1', '5;', '"5"', '5\x00', '', ' ',
    '99999999999999999999', '9007199254740993', '4294967301', '18446744073709551621', '٥', '５', '5, 6', '5 , 5']
  for (const v of values) out.push([`CL ${JSON.stringify(v)}`, `POST /x HTTP/1.1\r\n${H}Content-Length: ${v}\r\n\r\nabcdeGET /smuggled HTTP/1.1\r\n${H}\r\n`])
  const names = ['Content-Length ', 'Content-Length\t', 'Content_Length', 'content-length', 'CONTENT-LENGTH', 'Content-Lenght', ' Content-Length', 'Content-Length\x00', 'Content\xadLength',
    'Content-Lengt\xe5', 'Content\xe2\x80\x90Length', 'Content-Length\x0b', 'X-Content-Length', 'Content-Length-', 'Content.Length']
  for (const n of names) out.push([`CL name ${JSON.stringify(n)}`, `POST /x HTTP/1.1\r\n${H}${n}: 5\r\n\r\nabcdeGET /smuggled HTTP/1.1\r\n${H}\r\n`])
  out.push(['CL twice equal', `POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nabcde`])
  out.push(['CL twice, second 0', `POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 0\r\n\r\nabcde`])
  out.push(['CL and Content_Length differ', `POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\nContent_Length: 0\r\n\r\nabcde`])
  out.push(['CL on GET', `GET /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcdeGET /y HTTP/1.1\r\n${H}\r\n`])
  out.push(['CL 0 then body', `POST /x HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\nGET /y HTTP/1.1\r\n${H}\r\n`])
  out.push(['CL shorter than data', `POST /x HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabcdeGET /y HTTP/1.1\r\n${H}\r\n`])
  out.push(['CL on HEAD', `HEAD /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcde`])
  out.push(['CL on OPTIONS', `OPTIONS /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcde`])
  out.push(['CL on DELETE', `DELETE /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcde`])
  out.push(['CL on TRACE', `TRACE /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcde`])
  return out
}

const CHUNKED_BODY = '5\r\nabcde\r\n0\r\n\r\n'
const NEXT = `GET /smuggled HTTP/1.1\r\n${H}\r\n`

function codings(): [string, string][] {
  const out: [string, string][] = []
  const values = ['chunked', 'Chunked', 'CHUNKED', '"chunked"', 'chunked;q=1', 'chunked ;', 'chunked\x0b', ' chunked', 'chunked\t', 'chunked, chunked', 'identity, chunked', 'identity',
    'x, chunked', ',chunked', 'chunked,', ', ,chunked', 'chunked\x00', 'chunk', 'chunked\xa0', 'ch\xfcnked', 'chunked\r\n foo', 'chunked,identity', 'compress, chunked', '', 'cHuNkEd', 'chunked x',
    'chunked;', 'chunked=1', '\tchunked', 'chu nked']
  for (const v of values) out.push([`TE ${JSON.stringify(v)}`, `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: ${v}\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  const names = ['Transfer-Encoding ', 'Transfer_Encoding', 'transfer-encoding', ' Transfer-Encoding', 'Transfer-Encoding\x0b', 'Transfer\xadEncoding', 'Transfer-Encodin\xe7', 'TE', 'Transfer-encoding\t']
  for (const n of names) out.push([`TE name ${JSON.stringify(n)}`, `POST /x HTTP/1.1\r\n${H}${n}: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['TE twice', `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['TE identity then chunked lines', `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['TE chunked, CL 0', `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['TE chunked, Content_Length 0', `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent_Length: 0\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['CL 5, Transfer_Encoding chunked', `POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n${NEXT}`])
  out.push(['TE chunked on HTTP/1.0', `POST /x HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}`])
  out.push(['TE chunked on GET', `GET /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['Connection: transfer-encoding', `POST /x HTTP/1.1\r\n${H}Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}`])
  out.push(['Connection: content-length', `POST /x HTTP/1.1\r\n${H}Connection: content-length\r\nContent-Length: 5\r\n\r\nabcde${NEXT}`])
  out.push(['Connection: host', `GET /x HTTP/1.1\r\n${H}Connection: host\r\n\r\n`])
  return out
}

function chunks(): [string, string][] {
  const out: [string, string][] = []
  const bodies = ['5\r\nabcde\r\n0\r\n\r\n', '05\r\nabcde\r\n0\r\n\r\n', '0x5\r\nabcde\r\n0\r\n\r\n', '5 \r\nabcde\r\n0\r\n\r\n', '5\t\r\nabcde\r\n0\r\n\r\n', '5;ext\r\nabcde\r\n0\r\n\r\n',
    '5;e=v\r\nabcde\r\n0\r\n\r\n', '5;e="v;w"\r\nabcde\r\n0\r\n\r\n', '5 ;e\r\nabcde\r\n0\r\n\r\n', '5; e = v\r\nabcde\r\n0\r\n\r\n', '5;e="a\\"b"\r\nabcde\r\n0\r\n\r\n', '5;\r\nabcde\r\n0\r\n\r\n',
    '5;e=\r\nabcde\r\n0\r\n\r\n', '-5\r\nabcde\r\n0\r\n\r\n', '+5\r\nabcde\r\n0\r\n\r\n', '5\x00\r\nabcde\r\n0\r\n\r\n', 'fffffffffffffffff5\r\nabcde\r\n0\r\n\r\n', '10000000000000005\r\nabcde\r\n0\r\n\r\n',
    '5\r\nabcdef\r\n0\r\n\r\n', '5\r\nabcd\r\n0\r\n\r\n', '5\r\nabcde0\r\n\r\n', '5\r\nabcde\n0\r\n\r\n', '5\nabcde\r\n0\r\n\r\n', '5\r\nabcde\r\n0\n\r\n', '5\r\nabcde\r\n0\r\n\n',
    '5\r\nabcde\r\n0\r\nX: y\r\n\r\n', '5\r\nabcde\r\n0\r\nContent-Length: 50\r\n\r\n', '5\r\nabcde\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nabcde\r\n0\r\nX: y\r\n z\r\n\r\n',
    '5\r\nabcde\r\n0\r\nX y\r\n\r\n', '5\r\nabcde\r\n0\r\nX: \x01\r\n\r\n', '5\r\nabcde\r\n00\r\n\r\n', '5\r\nabcde\r\n0;x\r\n\r\n', '5\r\nabcde\r\n000\r\n\r\n', 'A\r\nabcdefghij\r\n0\r\n\r\n',
    'a\r\nabcdefghij\r\n0\r\n\r\n', '5\r\nabcde\r\n0 \r\n\r\n', '5\r\nabcde\r\n 0\r\n\r\n', '\r\n5\r\nabcde\r\n0\r\n\r\n', '5\r\nabcde\r\n\r\n0\r\n\r\n', '5\r\r\nabcde\r\n0\r\n\r\n',
    '5\r\nabcde\r\r\n0\r\n\r\n', '5\x0b\r\nabcde\r\n0\r\n\r\n', '5;\x00\r\nabcde\r\n0\r\n\r\n', '5;e=\xff\r\nabcde\r\n0\r\n\r\n', '5;e="\r\n"\r\nabcde\r\n0\r\n\r\n', '0\r\n\r\n', '0\r\n',
    '1;' + 'x'.repeat(5000) + '\r\na\r\n0\r\n\r\n', '5\r\nabcde\r\n0\r\n' + 'X: y\r\n'.repeat(300) + '\r\n']
  for (const b of bodies) out.push([`chunks ${JSON.stringify(b.length > 48 ? `${b.slice(0, 40)}...(${b.length})` : b)}`, `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${b}${NEXT}`])
  return out
}

function namesAndMisc(): [string, string][] {
  const out: [string, string][] = []
  const lines = ['X Y: z', 'X\tY: z', ': z', 'X-A\x00: z', 'X-\xe4: z', 'X-A:', 'X-A: ', 'X-A', 'X-A:: z', `X-${'a'.repeat(8000)}: z`, "!#$%&'*+.^_`|~: z", 'X-A: z\x7f', 'X-A: \xff\xfe',
    'X-A: a\x0bb', 'X-A: a\x0cb', 'X-A: a\x1bb', 'X-A: a\rb', 'X-A: a\nb', 'X-A : z', 'X-A\t: z', '\x0bX-A: z', 'X-A: z\r\n\tcontinued', 'X-Forwarded-For: 1.2.3.4', 'X_Forwarded_For: 1.2.3.4',
    'X-Real-IP: 1.2.3.4', 'Forwarded: for=1.2.3.4', 'Via: 1.1 evil', 'X-Request-Id: ab\x01', 'Proxy-Connection: keep-alive', 'Keep-Alive: timeout=1', 'TE: trailers', 'Upgrade: h2c',
    'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'Connection: upgrade\r\nUpgrade: websocket', 'Connection: close, keep-alive', 'Connection: x-a\r\nX-A: 1',
    'Connection: X-Forwarded-For', 'Max-Forwards: 0', 'Max-Forwards: -1', 'Max-Forwards: 0x1']
  for (const l of lines) out.push([`field ${JSON.stringify(l.length > 48 ? `${l.slice(0, 40)}...` : l)}`, `GET /x HTTP/1.1\r\n${H}${l}\r\n\r\n`])
  for (const e of ['100-continue', '100-Continue', '100-continue, foo', 'foo', '100-continue\r\nExpect: foo', ' 100-continue ', '100-continue;x=1', '100-continue\x0b']) {
    out.push([`Expect ${JSON.stringify(e)} with body`, `POST /x HTTP/1.1\r\n${H}Expect: ${e}\r\nContent-Length: 5\r\n\r\nabcde${NEXT}`])
  }
  out.push(['Expect 100-continue on GET', `GET /x HTTP/1.1\r\n${H}Expect: 100-continue\r\n\r\n${NEXT}`])
  out.push(['Expect 100-continue HTTP/1.0', `POST /x HTTP/1.0\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nabcde`])
  // HTTP/1.0, keep-alive and pipelining.
  out.push(['1.0 keep-alive POST CL + GET', `POST /x HTTP/1.0\r\n${H}Connection: keep-alive\r\nContent-Length: 5\r\n\r\nabcde${NEXT}`])
  out.push(['1.0 POST CL + GET, no keep-alive', `POST /x HTTP/1.0\r\n${H}Content-Length: 5\r\n\r\nabcde${NEXT}`])
  out.push(['1.0 POST no length', `POST /x HTTP/1.0\r\n${H}\r\nabcde`])
  out.push(['1.0 keep-alive GET + 1.1 GET', `GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n${NEXT}`])
  out.push(['1.0 Keep-Alive mixed case', `GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n${NEXT}`])
  out.push(['1.1 Connection: close + GET', `GET /x HTTP/1.1\r\n${H}Connection: close\r\n\r\n${NEXT}`])
  out.push(['GET + GET', `GET /x HTTP/1.1\r\n${H}\r\n${NEXT}`])
  out.push(['GET, CRLF, GET', `GET /x HTTP/1.1\r\n${H}\r\n\r\n${NEXT}`])
  out.push(['GET, LF, GET', `GET /x HTTP/1.1\r\n${H}\r\n\n${NEXT}`])
  out.push(['GET + garbage', `GET /x HTTP/1.1\r\n${H}\r\nxyz\r\n\r\n`])
  out.push(['POST chunked + GET + GET', `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}${NEXT}`])
  out.push(['three leading CRLF', `\r\n\r\n\r\nGET /x HTTP/1.1\r\n${H}\r\n`])
  out.push(['leading LF', `\nGET /x HTTP/1.1\r\n${H}\r\n`])
  out.push(['bare LF head', `GET /x HTTP/1.1\n${H.replace('\r', '')}\n`])
  out.push(['LF CRLF end', `GET /x HTTP/1.1\r\n${H}\n\r\n`])
  // Long lines near the 16 KiB head limit.
  for (const n of [16_000, 16_300, 16_340, 16_400]) {
    out.push([`target ${n}`, `GET /${'a'.repeat(n)} HTTP/1.1\r\n${H}\r\n`])
    out.push([`field ${n}`, `GET /x HTTP/1.1\r\n${H}X-A: ${'a'.repeat(n)}\r\n\r\n`])
  }
  out.push(['201 fields', `GET /x HTTP/1.1\r\n${H}${'X-A: 1\r\n'.repeat(200)}\r\n`])
  // Requests the proxy answers itself (Max-Forwards: 0) with a body that holds a request: the body is read, never parsed as one.
  for (const m of ['TRACE', 'OPTIONS']) {
    out.push([`${m} Max-Forwards 0, CL body`, `${m} /x HTTP/1.1\r\n${H}Max-Forwards: 0\r\nContent-Length: ${NEXT.length}\r\n\r\n${NEXT}`])
    out.push([`${m} Max-Forwards 0, chunked body`, `${m} /x HTTP/1.1\r\n${H}Max-Forwards: 0\r\nTransfer-Encoding: chunked\r\n\r\n${NEXT.length.toString(16)}\r\n${NEXT}\r\n0\r\n\r\n`])
    out.push([`${m} Max-Forwards 1, CL body`, `${m} /x HTTP/1.1\r\n${H}Max-Forwards: 1\r\nContent-Length: ${NEXT.length}\r\n\r\n${NEXT}`])
  }
  out.push(['upgrade with CL body', `GET /x HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: ${NEXT.length}\r\n\r\n${NEXT}`])
  return out
}

/** A small deterministic generator (mulberry32), so a run can be repeated. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function mutations(count: number, seed: number): [string, string][] {
  const bases = [`POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nabcde${NEXT}`, `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${CHUNKED_BODY}${NEXT}`,
    `GET http://a.example/x HTTP/1.1\r\n${H}\r\n${NEXT}`, `POST /x HTTP/1.0\r\n${H}Connection: keep-alive\r\nContent-Length: 5\r\n\r\nabcde${NEXT}`]
  const bytes = ['\t', '\x0b', '\x0c', '\r', '\n', '\x00', '\x80', '\xa0', '\xff', ' ', ',', ';', ':', '"', '0', 'a', '\r\n', '\r\n ']
  const rnd = random(seed)
  const out: [string, string][] = []
  for (let i = 0; i < count; i++) {
    const b = Math.floor(rnd() * bases.length)
    const base = bases[b]!
    const at = Math.floor(rnd() * (base.indexOf('\r\n\r\n') + 8))
    const byte = bytes[Math.floor(rnd() * bytes.length)]!
    const op = Math.floor(rnd() * 3)
    const s = op === 0 ? base.slice(0, at) + byte + base.slice(at) : op === 1 ? base.slice(0, at) + byte + base.slice(at + 1) : base.slice(0, at) + base.slice(at + 1)
    out.push([`mutation ${i} (base ${b}, ${['insert', 'replace', 'delete'][op]} ${JSON.stringify(op === 2 ? base[at] : byte)} at ${at})`, s])
  }
  return out
}

export function gardenCases(mutationCount = 200, seed = 13): [string, string][] {
  return [...requestLine(), ...targets(), ...hosts(), ...lengths(), ...codings(), ...chunks(), ...namesAndMisc(), ...mutations(mutationCount, seed)]
}
