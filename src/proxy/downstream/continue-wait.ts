/**
 * When the proxy sends a "100 Continue" of its own to a client waiting on Expect: 100-continue
 * (RFC 9110 §10.1.1): once the request path wants the body and the upstream, which has had the
 * head from the start, let CONTINUE_WAIT_MS pass without its own 100 or a final answer (either of
 * which the client gets instead; a listener sends one 100 at most). A 100 from the proxy at once
 * told the client its request "has not yet been rejected" (§15.2.1) before the origin had a say,
 * so an origin that refused at the head (a 417, a 401) was answered after the upload had begun;
 * §10.1.1 lets a proxy send its own 100 only for an origin it believes speaks HTTP/1.0. Body bytes
 * the client sends without waiting go upstream as they come. Both listeners use it
 * (client-connection.ts through reply-writer.ts, h2-client.ts).
 */

/** How long the upstream has to answer a waiting client first: curl's own wait for a 100 (--expect100-timeout). */
export const CONTINUE_WAIT_MS = 1000

/** Runs `send` after CONTINUE_WAIT_MS; the caller clears the timer when the request is answered or its connection closes. */
export function continueLater(send: () => void): ReturnType<typeof setTimeout> {
  const timer = setTimeout(send, CONTINUE_WAIT_MS)
  // A wait alone never keeps the process alive.
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}
