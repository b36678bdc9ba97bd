/**
 * The limits of an HTTP/2 server session, with their defaults and the clamping of configured
 * values to what the protocol allows. The flood budgets are counted in floods.ts; enforcing the
 * rest is session.ts's job.
 */
import { Setting, type SettingsList } from './frames.ts'

export interface Http2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce; streams beyond it are refused (REFUSED_STREAM, §5.1.2). */
  maxConcurrentStreams: number
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a decoded request head larger than this gets 431 (§10.5.1). */
  maxHeaderListBytes: number
  /** Compressed header block bytes (HEADERS + CONTINUATION) accepted before the connection is closed (CVE-2024-27316). */
  maxHeaderBlockBytes: number
  /** CONTINUATION frames accepted for one header block (empty ones cost work without adding bytes). */
  maxContinuationFrames: number
  /** SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the client may use (RFC 7541 §4.2). */
  headerTableBytes: number
  /**
   * SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a new stream may send before its reader takes
   * any. What one stream buffers, so the streams' windows (not the connection's) bound a
   * connection's request body memory: every stream at once, stalled, holds this much each.
   */
  streamInitialWindowBytes: number
  /** The window a stream whose reader keeps up grows to, while streamWindowBudgetBytes lasts. */
  streamWindowBytes: number
  /** What the open streams' windows may together grow beyond streamInitialWindowBytes. */
  streamWindowBudgetBytes: number
  /**
   * Connection receive window. Credited as DATA arrives on an open stream, not as it is read: a
   * stream whose upstream does not read stops itself (its own window), never the others (RFC 9113
   * §5.2.1); past connectionUnreadBytes unread on the connection, as it is read.
   */
  connectionWindowBytes: number
  /**
   * Request body bytes received and not yet read, over the connection's streams, beyond which the
   * connection window is credited only as they are read: the bound on them whatever
   * maxConcurrentStreams is (128 streams x 64 KiB + the growth budget stay under it).
   */
  connectionUnreadBytes: number
  /**
   * SETTINGS_MAX_FRAME_SIZE we accept. What a frame cut by a read holds grows with the bytes that
   * came (reader.ts), so a large limit is not an allocation a header alone can ask for; clients
   * that frame uploads by it (httpx) send fewer, larger frames.
   */
  maxFrameBytes: number
  /** Response bytes a stream queues before write() says to wait (the drain callback follows). */
  streamHighWaterBytes: number
  /** A connection with no open stream and no request for this long is closed with GOAWAY. 0: never. */
  idleTimeoutMs: number
  /**
   * A request's header block must be complete this long after it began, and the first one this
   * long after the connection opened (the preface first); else GOAWAY. 0: no limit (idleTimeoutMs
   * only). The proxy passes client_header_timeout, as for an HTTP/1.1 head.
   */
  headTimeoutMs: number
  /** Length of the window the flood budgets count in. */
  floodWindowMs: number
  /**
   * Streams reset (by the client, or by us for its errors) per window; beyond: GOAWAY ENHANCE_YOUR_CALM
   * (CVE-2023-44487). Near nghttp2's burst of 1000: a browser leaving a page may cancel hundreds at once.
   */
  maxResetsPerWindow: number
  /**
   * Streams the client reset after they reached the request path and before their response began,
   * per window; beyond: GOAWAY ENHANCE_YOUR_CALM. Each costs the origin a request, and a proxy an
   * upstream connection cut mid-response, so the budget is below the one for resets at large, yet
   * above what a browser leaving pages cancels (a few hundred).
   */
  maxAbandonedPerWindow: number
  /** SETTINGS frames per window. */
  maxSettingsPerWindow: number
  /** PING frames per window. */
  maxPingsPerWindow: number
  /** Frames that carry nothing (empty DATA without END_STREAM, PRIORITY, unknown types) per window. */
  maxEmptyFramesPerWindow: number
  /** WINDOW_UPDATE frames per window, on top of two per DATA frame we sent. */
  maxWindowUpdatesPerWindow: number
  /**
   * DATA frames that carry little: the bytes of frame overhead (the 9-byte header, padding) a
   * client may send per window beyond dataOverheadPerBodyByte for each body byte they carry;
   * beyond: GOAWAY ENHANCE_YOUR_CALM. Frames with END_STREAM are not counted (one per stream).
   */
  dataOverheadSlackBytes: number
  /** Overhead bytes each body byte pays for (see dataOverheadSlackBytes). */
  dataOverheadPerBodyByte: number
  /** Frames we must answer (acks, resets) queued while the client does not read; beyond: GOAWAY. */
  maxQueuedControlBytes: number
}

export const DEFAULT_LIMITS: Readonly<Http2Limits> = Object.freeze({
  maxConcurrentStreams: 128,
  maxHeaderListBytes: 32 * 1024,
  maxHeaderBlockBytes: 64 * 1024,
  maxContinuationFrames: 32,
  headerTableBytes: 4096,
  streamInitialWindowBytes: 64 * 1024,
  streamWindowBytes: 256 * 1024,
  streamWindowBudgetBytes: 1024 * 1024,
  connectionWindowBytes: 1024 * 1024,
  connectionUnreadBytes: 16 * 1024 * 1024,
  maxFrameBytes: 256 * 1024,
  streamHighWaterBytes: 64 * 1024,
  idleTimeoutMs: 60_000,
  headTimeoutMs: 0,
  floodWindowMs: 10_000,
  maxResetsPerWindow: 1000,
  maxAbandonedPerWindow: 400,
  maxSettingsPerWindow: 100,
  maxPingsPerWindow: 100,
  maxEmptyFramesPerWindow: 200,
  maxWindowUpdatesPerWindow: 2000,
  // nginx's rule, cut when the bytes read pass 8x the payload plus 1 MiB, lets ~4.2 million 1-byte
  // DATA frames through, and over a connection's life it would end a slow interactive stream one
  // day. Here per window: a frame with 5 body bytes or more (a gRPC message's prefix alone) costs
  // nothing net (9 <= 2 x 5), uploads in 16 KiB frames (curl, browsers, h2load) earn credit, and a
  // 1-byte frame costs 7: 64 KiB of slack lets ~9,400 through a window (keystrokes at 900 a
  // second), so a flood of 1,000,000 is cut after ~9,400, and 200 bytes of padding after ~300.
  dataOverheadSlackBytes: 64 * 1024,
  dataOverheadPerBodyByte: 2,
  maxQueuedControlBytes: 64 * 1024,
})

/**
 * The receive windows of a far client's connection (SessionOptions.roundTripMs): a stream's window
 * caps an upload at about window / round trip (256 KiB over 100 ms: 2.6 MB/s, where HTTP/1.1 on
 * the same link, left to the kernel's autotuning, carries the link's rate), so there a stream may
 * grow to 4 MiB, and the connection's streams by 8 MiB together, while its reader takes each half
 * window within two round trips, and gives growth back when it does not (flow.ts). What a
 * connection holds stays within connectionUnreadBytes plus this connection window.
 */
export const FAR_WINDOWS: Readonly<Pick<Http2Limits, 'streamWindowBytes' | 'streamWindowBudgetBytes' | 'connectionWindowBytes'>> = Object.freeze({
  streamWindowBytes: 4 * 1024 * 1024,
  streamWindowBudgetBytes: 8 * 1024 * 1024,
  connectionWindowBytes: 8 * 1024 * 1024,
})

/** The SETTINGS of our server preface (RFC 9113 §3.4, §6.5.2); no server push (§8.4). */
export function announcedSettings(l: Http2Limits): SettingsList {
  return [
    [Setting.HEADER_TABLE_SIZE, l.headerTableBytes],
    [Setting.ENABLE_PUSH, 0],
    [Setting.MAX_CONCURRENT_STREAMS, l.maxConcurrentStreams],
    [Setting.INITIAL_WINDOW_SIZE, l.streamInitialWindowBytes],
    [Setting.MAX_FRAME_SIZE, l.maxFrameBytes],
    [Setting.MAX_HEADER_LIST_SIZE, l.maxHeaderListBytes],
  ]
}

export function resolveLimits(partial: Partial<Http2Limits> | undefined): Http2Limits {
  const limits = { ...DEFAULT_LIMITS, ...partial }
  // Below the protocol defaults a client that sends before our SETTINGS arrive would break flow control (§6.9.2).
  limits.streamWindowBytes = Math.max(65_535, Math.min(limits.streamWindowBytes, 2 ** 31 - 1))
  limits.streamInitialWindowBytes = Math.max(65_535, Math.min(limits.streamInitialWindowBytes, limits.streamWindowBytes))
  limits.streamWindowBudgetBytes = Math.max(0, limits.streamWindowBudgetBytes)
  limits.connectionWindowBytes = Math.max(65_535, Math.min(limits.connectionWindowBytes, 2 ** 31 - 1))
  limits.maxFrameBytes = Math.max(16_384, Math.min(limits.maxFrameBytes, 16_777_215))
  return limits
}
