/**
 * An origin for restart tests: /hold answers a head and a first piece ("head;"), then holds its
 * body open until release() (so a draining proxy has a request in flight); any other path answers
 * "next". The caller stops it.
 */
export function holdingOrigin(): { origin: ReturnType<typeof Bun.serve>; release: () => void } {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const origin = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (req) =>
      new URL(req.url).pathname === '/hold'
        ? new Response(
            new ReadableStream({
              async start(c) {
                c.enqueue(new TextEncoder().encode('head;'))
                await held
                c.close()
              },
            }),
          )
        : new Response('next'),
  })
  return { origin, release }
}
