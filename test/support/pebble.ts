/**
 * Debian's pebble (an RFC 8555 test CA) on loopback for tests, with pebble-challtestsrv as its
 * DNS server answering 127.0.0.1 for every name. Pebble's own HTTPS certificate comes from
 * test/support/certs.ts (openssl); its CA is `caPem` (what --acme-ca takes). Pebble's random
 * badNonce rejections (5%) stay on. HTTP-01 validation connects to 127.0.0.1:`httpPort`, which
 * the test's --acme-http-listen must use. `available()` says whether the binaries are installed
 * (.ci/run installs the pebble package).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeCerts } from './certs.ts'
import { freeUdpPort } from './dnsmasq.ts'
import { testDir } from './temp-dir.ts'

export function pebbleAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv']).status === 0
}

/** Ports this process handed out: the kernel may give a port just let go to the next bind(0), and two of one start() then collided (pebble's ACME and management listeners). */
const handedOut = new Set<number>()

/** A loopback TCP port free now and not handed out before by this process (bounded tries). */
export async function freeTcpPort(): Promise<number> {
  for (let i = 0; ; i++) {
    const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    const port = l.port
    l.stop(true)
    if (!handedOut.has(port) || i >= 20) {
      handedOut.add(port)
      return port
    }
  }
}

export interface PebbleOptions {
  /** Port pebble's validator connects to for HTTP-01 (the proxy's --acme-http-listen). */
  httpPort: number
  /** Lifetime of issued certificates, in seconds; pebble's default is about 5 years. */
  certValiditySeconds?: number
  /** Pebble's environment knobs (PEBBLE_WFE_NONCEREJECT, PEBBLE_VA_SLEEPTIME ...); PEBBLE_VA_NOSLEEP=1 unless given. */
  env?: Record<string, string>
  /** Pebble's -strict mode. */
  strict?: boolean
}

export class Pebble {
  private children: ChildProcess[] = []
  private readonly dir = testDir('proxy-pebble-')
  private readonly certs = makeCerts(['localhost'], ['127.0.0.1'])
  readonly caPem = this.certs.ca
  readonly caFile = this.certs.caFile
  acmePort = 0
  mgmtPort = 0
  dnsPort = 0
  output = ''

  constructor(private readonly opts: PebbleOptions) {}

  get directoryUrl(): string {
    return `https://127.0.0.1:${this.acmePort}/dir`
  }

  async start(): Promise<this> {
    this.dnsPort = await freeUdpPort()
    this.acmePort = this.acmePort || (await freeTcpPort())
    this.mgmtPort = this.mgmtPort || (await freeTcpPort())
    const challMgmt = await freeTcpPort()
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${this.acmePort}`,
        managementListenAddress: `127.0.0.1:${this.mgmtPort}`,
        certificate: this.certs.certFile,
        privateKey: this.certs.keyFile,
        httpPort: this.opts.httpPort,
        tlsPort: await freeTcpPort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(this.opts.certValiditySeconds ? { certificateValidityPeriod: this.opts.certValiditySeconds } : {}),
      },
    }
    const configFile = join(this.dir, 'pebble.json')
    writeFileSync(configFile, JSON.stringify(config))
    const dns = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${this.dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.track(dns)
    const pebble = spawn('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${this.dnsPort}`, ...(this.opts.strict ? ['-strict'] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', ...this.opts.env } })
    this.track(pebble)
    // Bounded wait for the directory to answer.
    for (let i = 0; i < 100; i++) {
      if (pebble.exitCode !== null) throw new Error(`pebble exited with ${pebble.exitCode}: ${this.output}`)
      try {
        const res = await fetch(this.directoryUrl, { tls: { ca: this.caPem } } as RequestInit)
        if (res.ok) return this
      } catch {
        // not up yet
      }
      await Bun.sleep(50)
    }
    throw new Error(`pebble did not start: ${this.output}`)
  }

  /** Pebble's issuing root, which changes on every start (its management API, /roots/0). */
  async rootPem(): Promise<string> {
    const res = await fetch(`https://127.0.0.1:${this.mgmtPort}/roots/0`, { tls: { ca: this.caPem } } as RequestInit)
    if (!res.ok) throw new Error(`pebble /roots/0: ${res.status}`)
    return res.text()
  }

  /** Stops pebble only (the DNS helper stays): "the ACME server is down". */
  stopPebble(): void {
    const p = this.children[1]
    p?.kill('SIGKILL')
  }

  close(): void {
    for (const c of this.children) c.kill('SIGKILL')
    this.children = []
    rmSync(this.dir, { recursive: true, force: true })
  }

  private track(c: ChildProcess): void {
    this.children.push(c)
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-8000)
    }
    c.stdout?.on('data', keep)
    c.stderr?.on('data', keep)
  }
}
