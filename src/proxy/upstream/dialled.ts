/**
 * A dial's outcome as the pool hands it on: a failure as a RequestFailure naming the address, and
 * a connection an upgrade tunnel owns, counted among its address's open connections (for
 * max_conns_per_address, /status and the pool's gauge) until it closes, whatever handlers the
 * tunnel gives it.
 */
import { DialError, type Conn, type ConnHandlers } from '../../runtime/socket.ts'
import { RequestFailure } from '../errors.ts'
import type { AddressState } from './address-state.ts'

/** A failed dial as a RequestFailure whose message names the address as host:port ("[::1]:8080: ..."). */
export function toRequestFailure(err: unknown, state: Pick<AddressState, 'address' | 'label'>): RequestFailure {
  if (err instanceof RequestFailure) return err
  const address = state.address
  if (err instanceof DialError) return new RequestFailure(err.code, 'connect', `${state.label}: ${err.message}`, { cause: err, address })
  return new RequestFailure('CONNECT_FAILED', 'connect', `${state.label}: ${(err as Error)?.message ?? String(err)}`, { cause: err, address })
}

/**
 * `conn`, with `closed` called once when it closes: its `handlers`, set by whoever owns it, are
 * wrapped as they are set (one wrapper per setting, not per event).
 */
export function countedUntilClose(conn: Conn, closed: () => void): Conn {
  let done = false
  const wrap = (h: ConnHandlers): ConnHandlers => ({
    data: (chunk) => h.data(chunk),
    drain: () => h.drain(),
    close: (err) => {
      if (!done) {
        done = true
        closed()
      }
      h.close(err)
    },
  })
  let wrapped = wrap(conn.handlers)
  Object.defineProperty(conn, 'handlers', {
    configurable: true,
    get: () => wrapped,
    set: (h: ConnHandlers) => void (wrapped = wrap(h)),
  })
  return conn
}
