/**
 * What the tunnel checks of an upstream's 101 (switch-checks.ts): the WebSocket handshake as a client checks it (RFC 6455
 * §4.1), against the request sent upstream. Deno's front answers the client with its own handshake, so the proxy is the
 * only one who sees the upstream's (seventeenth round of outside reviews).
 */
import { expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { parseResponseHeadBytes } from '../../../src/http1/response-head.ts'
import { websocketSwitchProblem } from '../../../src/proxy/upgrade/switch-checks.ts'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
// RFC 6455 §1.3's example.
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
const head = (...lines: string[]) => {
  const text = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`
  const bytes = Buffer.from(text, 'latin1')
  return parseResponseHeadBytes(bytes, bytes.length - 4, 'GET')
}
const request = (...fields: [string, string][]): [string, string][] => [['host', 'a'], ['sec-websocket-key', KEY], ['sec-websocket-version', '13'], ...fields]

test('the example accept of RFC 6455 §1.3 is the one derived', () => {
  expect(createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')).toBe(ACCEPT)
  expect(websocketSwitchProblem('websocket', request(), head(`Sec-WebSocket-Accept: ${ACCEPT}`))).toBeUndefined()
})

test('a missing or wrong accept is a problem', () => {
  expect(websocketSwitchProblem('websocket', request(), head())).toContain('no Sec-WebSocket-Accept')
  expect(websocketSwitchProblem('WebSocket', request(), head('Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA='))).toContain('not the one its Sec-WebSocket-Key calls for')
})

test('an extension the request did not offer is a problem; one it offered is not', () => {
  const deflate = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'
  expect(websocketSwitchProblem('websocket', request(), head(`Sec-WebSocket-Accept: ${ACCEPT}`, deflate))).toContain('"permessage-deflate"')
  expect(websocketSwitchProblem('websocket', request(['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits']), head(`Sec-WebSocket-Accept: ${ACCEPT}`, deflate))).toBeUndefined()
})

test('a subprotocol the request did not offer is a problem; one it offered is not', () => {
  expect(websocketSwitchProblem('websocket', request(), head(`Sec-WebSocket-Accept: ${ACCEPT}`, 'Sec-WebSocket-Protocol: chat'))).toContain('"chat"')
  expect(websocketSwitchProblem('websocket', request(['sec-websocket-protocol', 'superchat, chat']), head(`Sec-WebSocket-Accept: ${ACCEPT}`, 'Sec-WebSocket-Protocol: chat'))).toBeUndefined()
  expect(websocketSwitchProblem('websocket', request(['sec-websocket-protocol', 'superchat']), head(`Sec-WebSocket-Accept: ${ACCEPT}`, 'Sec-WebSocket-Protocol: chat'))).toContain('did not offer')
})

test('another protocol, or a request without a key (no WebSocket client), is not checked here', () => {
  expect(websocketSwitchProblem('h2c', request(), head())).toBeUndefined()
  expect(websocketSwitchProblem('websocket', [['host', 'a']], head())).toBeUndefined()
})
