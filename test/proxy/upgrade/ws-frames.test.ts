/** WebSocket frames (RFC 6455 §5.2): the reader and the masked encoder, table-tested. */
import { expect, test } from 'bun:test'
import { closePayload, encodeMaskedFrame, FrameError, FrameReader, OPCODE } from '../../../src/proxy/upgrade/ws-frames.ts'

test.each([0, 1, 125, 126, 65535, 65536, 70_000])('a %i-byte payload survives encode then read, whole or byte by byte', (n) => {
  const payload = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff)
  const frame = encodeMaskedFrame(OPCODE.binary, payload)
  expect(frame[1]! & 0x80).toBe(0x80) // masked, as a client must (§5.3)
  const whole = new FrameReader(1 << 20).push(frame)
  expect(whole).toHaveLength(1)
  expect(whole[0]!.fin).toBe(true)
  expect(whole[0]!.opcode).toBe(OPCODE.binary)
  expect(Buffer.from(whole[0]!.payload).equals(Buffer.from(payload))).toBe(true)
  if (n <= 200) {
    const r = new FrameReader(1 << 20)
    const got = [...frame].flatMap((b) => r.push(Uint8Array.of(b)))
    expect(got.map((f) => Buffer.from(f.payload).equals(Buffer.from(payload)))).toEqual([true])
  }
})

test('an unmasked server frame, two frames in one read, and a fragment', () => {
  const r = new FrameReader(1024)
  const frames = r.push(Uint8Array.of(0x01, 0x02, 0x68, 0x69, 0x80, 0x01, 0x21))
  expect(frames.map((f) => [f.fin, f.opcode, new TextDecoder().decode(f.payload)])).toEqual([
    [false, OPCODE.text, 'hi'],
    [true, OPCODE.continuation, '!'],
  ])
})

test.each([
  ['reserved bits', Uint8Array.of(0xc1, 0x00), 1002],
  ['a control frame over 125 bytes', Uint8Array.of(0x89, 126, 0, 126), 1002],
  ['a fragmented control frame', Uint8Array.of(0x09, 0x00), 1002],
  ['a frame over the limit', Uint8Array.of(0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0), 1009],
] as const)('%s is refused with close code %i', (_name, bytes, code) => {
  let err: unknown
  try {
    new FrameReader(1 << 20).push(bytes)
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(FrameError)
  expect((err as FrameError).closeCode).toBe(code)
})

test('a close payload carries the code big-endian and the reason', () => {
  expect([...closePayload(4001, 'bye')]).toEqual([0x0f, 0xa1, 0x62, 0x79, 0x65])
  expect(closePayload(undefined, 'x').byteLength).toBe(0)
})

test('a 4 MiB frame read in 64 KiB pieces, with the next frame in its last piece: both whole, and the pieces held apart until the frame is whole, then joined once (outside sweep, twentieth session)', () => {
  const payload = new Uint8Array(4 * 1024 * 1024)
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251
  const wire = new Uint8Array(Buffer.concat([encodeMaskedFrame(OPCODE.binary, payload), encodeMaskedFrame(OPCODE.text, new TextEncoder().encode('next'))]))
  const reader = new FrameReader(16 * 1024 * 1024)
  const got: { opcode: number; payload: Uint8Array }[] = []
  const piece = 64 * 1024
  let heldApartMax = 0
  for (let at = 0; at < wire.length; at += piece) {
    got.push(...reader.push(wire.subarray(at, at + piece)))
    heldApartMax = Math.max(heldApartMax, (reader as unknown as { later: Uint8Array[] }).later.length)
  }
  expect(got.map((f) => f.opcode)).toEqual([OPCODE.binary, OPCODE.text])
  expect(got[0]!.payload).toEqual(payload)
  expect(new TextDecoder().decode(got[1]!.payload)).toBe('next')
  // Before: every piece was joined to all before it at once (a copy of the whole so far per read).
  expect(heldApartMax).toBeGreaterThan(60)
})
