/**
 * The end of an accepted connection once everything for it is written: a FIN, over TLS with a
 * close_notify first. Bun's end() of a TLS socket sends the close_notify, then waits for the
 * peer's own (a two-way shutdown) before the TCP close, about 12 s for a peer that answers none
 * (one that reads nothing more, or takes the close_notify as the end and waits for the FIN): the
 * socket and its file descriptor were held that long past every close, outside max_connections
 * (outside review, sixteenth round). Its shutdown() sends the close_notify and closes at once; what
 * was written before still goes out (8 MiB to a slow reader, measured: every byte, then the
 * close_notify). Plain TCP keeps end(): its FIN, and the socket closes when the peer's comes.
 */
export function endAccepted(sock: { end(): void; shutdown(): void }, tls: boolean): void {
  if (tls) sock.shutdown()
  sock.end()
}
