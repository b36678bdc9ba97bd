/**
 * CIDR parsing and matching for IPv4 and IPv6 (used by trusted_proxies). Addresses are
 * compared as 128-bit BigInts; IPv4 and IPv4-mapped IPv6 (::ffff:a.b.c.d) are the same, and in
 * no IPv6 range shorter than /96.
 */
import { isIP } from 'node:net'

export interface Cidr {
  base: bigint
  bits: number
}

export function parseCidr(raw: string): Cidr | undefined {
  const [addr, len, extra] = raw.split('/')
  if (extra !== undefined || addr === undefined) return undefined
  const base = ipToBigInt(addr)
  if (base === undefined) return undefined
  const v4 = isIP(addr) === 4
  const max = v4 ? 32 : 128
  const prefix = len === undefined ? max : /^\d+$/.test(len) ? Number(len) : NaN
  if (!(prefix >= 0 && prefix <= max)) return undefined
  const bits = v4 ? prefix + 96 : prefix
  return { base: base & mask(bits), bits }
}

/**
 * What is wrong with a CIDR that parses but does not mean what it says, or undefined: an
 * IPv4-mapped address with an IPv4-sized prefix ("::ffff:10.0.0.0/8" is ::/8, IPv6 clients only:
 * cidrContains), or bits set past the prefix ("10.0.0.1/8" is 10.0.0.0/8). nginx warns of the
 * second; for trusted_proxies both are refused, with what to write instead.
 */
export function cidrProblem(raw: string): string | undefined {
  const c = parseCidr(raw)
  const [addr = '', len] = raw.split('/')
  if (!c || len === undefined) return undefined
  const v4 = isIP(addr) === 4
  const mapped = !v4 && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(addr)
  if (mapped && c.bits < 96) return `is ::/${c.bits} read as IPv6, a range of IPv6 clients and no IPv4 one; write "${addr.slice(7)}/${c.bits}" for the IPv4 range, or "${addr}/${c.bits + 96}"`
  if (ipToBigInt(addr) !== c.base) return `has bits set past its /${len} prefix, so it means ${showBase(c, v4)}/${len}; write that`
  return undefined
}

function showBase(c: Cidr, v4: boolean): string {
  if (v4) return [24n, 16n, 8n, 0n].map((s) => String((c.base >> s) & 0xffn)).join('.')
  const groups = Array.from({ length: 8 }, (_, i) => ((c.base >> BigInt(112 - 16 * i)) & 0xffffn).toString(16))
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)
}

/**
 * Whether `ip` is in `cidr`. An IPv4 address (or its IPv4-mapped form) is in an IPv6 range only if
 * the range lies within ::ffff:0:0/96, as "::ffff:10.0.0.0/104" does: "::/0", "::/8" or "::/64"
 * name IPv6 clients, as in nginx (until the eighteenth round of outside reviews they held every
 * IPv4 address too, and `trusted_proxies = ["::/0"]` trusted every IPv4 client's X-Forwarded-*).
 */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const v = ipToBigInt(ip)
  if (v === undefined || (cidr.bits < 96 && v >> 32n === 0xffffn)) return false
  return (v & mask(cidr.bits)) === cidr.base
}

function mask(bits: number): bigint {
  return bits === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - bits)) - 1n)
}

/** IPv4 becomes ::ffff:a.b.c.d so both families share one space. */
export function ipToBigInt(ip: string): bigint | undefined {
  const kind = isIP(ip)
  if (kind === 4) {
    const p = ip.split('.').map(Number)
    return 0xffffn << 32n | BigInt(((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!)
  }
  if (kind !== 6) return undefined
  let text = ip.toLowerCase().split('%')[0]!
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4tail) {
    const p = v4tail[1]!.split('.').map(Number)
    text = text.slice(0, -v4tail[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : []
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  let v = 0n
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16))
  return v
}
