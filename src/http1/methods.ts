/**
 * What RFC 9110 §9.2 says of request methods that a client or a proxy acts on: which ones may be
 * sent again after a connection failed under them.
 */

/** RFC 9110 §9.2.2: methods whose request, sent twice, has the effect of once (safe to retry). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
