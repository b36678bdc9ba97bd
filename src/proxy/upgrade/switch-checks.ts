/**
 * What the tunnel checks of an upstream's 101 before it switches (tunnel.ts): that it switches to a protocol the request
 * asked for, and, for a WebSocket, what a WebSocket client checks of the 101 that answers its opening handshake (RFC
 * 6455 §4.1, §4.2.2), against the request sent upstream: Sec-WebSocket-Accept derived from its Sec-WebSocket-Key, no extension and
 * no subprotocol it did not offer. On the own listener the client gets the upstream's 101 as it came and would check it
 * too; on Deno's runtime front the runtime answers the client with a handshake of its own, so the proxy is the only
 * client that sees the upstream's: a wrong accept was hidden, an unoffered permessage-deflate dropped (the client then
 * read compressed frames as plain), an unoffered subprotocol a bare 500 (seventeenth round of outside reviews).
 */
import { createHash } from 'node:crypto'
import { listMembers } from '../../http1/chars.ts'
import type { ResponseHead } from '../../http1/response-head.ts'
import { headerValue } from '../cache/directives.ts'

/** RFC 6455 §1.3: appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** Why the 101 `head` does not complete the WebSocket handshake of `request` (the fields sent upstream), or undefined. */
export function websocketSwitchProblem(upgrade: string, request: readonly (readonly [string, string])[], head: ResponseHead): string | undefined {
  if (!listMembers(upgrade).includes('websocket')) return undefined
  const key = headerValue(request, 'sec-websocket-key')?.trim()
  if (key === undefined) return undefined // no WebSocket client's request: nothing it would check
  const expected = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64')
  const accept = headerValue(head.headers, 'sec-websocket-accept')?.trim()
  if (accept !== expected) return `upstream's 101 has ${accept === undefined ? 'no Sec-WebSocket-Accept' : `Sec-WebSocket-Accept "${accept}"`}, not the one its Sec-WebSocket-Key calls for (RFC 6455 §4.1)`
  const offered = new Set((headerValue(request, 'sec-websocket-extensions') ?? '').split(',').map((e) => e.split(';')[0]!.trim().toLowerCase()).filter(Boolean))
  for (const e of (headerValue(head.headers, 'sec-websocket-extensions') ?? '').split(',')) {
    const name = e.split(';')[0]!.trim().toLowerCase()
    if (name !== '' && !offered.has(name)) return `upstream's 101 uses the extension "${name}", which the request did not offer (RFC 6455 §4.1)`
  }
  const protocol = headerValue(head.headers, 'sec-websocket-protocol')?.trim()
  if (protocol !== undefined && !listMembers(headerValue(request, 'sec-websocket-protocol') ?? '').includes(protocol.toLowerCase())) return `upstream's 101 names the subprotocol "${protocol}", which the request did not offer (RFC 6455 §4.1)`
  return undefined
}

/**
 * Why a 101 does not switch to what the request asked for, or undefined when it does. RFC 9110 §15.2.2: a 101 MUST say in Upgrade
 * which protocol(s) will be in effect; §7.8: a server MUST NOT switch to one the request did not name. Names compare
 * case-insensitively (§7.8), versions when both sides give one. A 101 without Upgrade, or to another protocol (h2c for a
 * WebSocket), is not tunnelled: the client would be left talking to an upstream in a protocol nobody checked.
 */
export function unaskedSwitch(asked: string, head: ResponseHead): string | undefined {
  const offered = listMembers(asked)
  const switched = listMembers(headerValue(head.headers, 'upgrade') ?? '')
  if (switched.length === 0) return 'upstream answered 101 without an Upgrade field naming the protocol it switched to'
  for (const p of switched) {
    const [name, version] = p.split('/', 2)
    const ok = offered.some((o) => {
      const [oName, oVersion] = o.split('/', 2)
      return oName === name && (oVersion === undefined || version === undefined || oVersion === version)
    })
    if (!ok) return `upstream switched to "${p}", which the request did not ask for (Upgrade: ${asked})`
  }
  return undefined
}
