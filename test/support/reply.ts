/** Reading a ProxyReply in tests: its body as text, whatever form the body takes. */
import type { ProxyReply } from '../../src/proxy/message.ts'

export async function replyText(reply: ProxyReply): Promise<string> {
  const b = reply.body
  if (b === null) return ''
  if (typeof b === 'string') return b
  if (b instanceof Uint8Array) return new TextDecoder().decode(b)
  return new Response(b).text()
}
