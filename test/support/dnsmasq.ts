/**
 * Debian's dnsmasq as a real DNS server for tests: serves an addn-hosts file on 127.0.0.1 and a
 * free port, with --local-ttl; SIGHUP makes it re-read the file. `available()` says whether the
 * binary is installed (.ci/run installs dnsmasq-base).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { join } from 'node:path'
import { testDir } from './temp-dir.ts'

/** dnsmasq's path: on PATH, or in /usr/sbin (not on a non-root user's PATH on Debian). */
function dnsmasqPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v dnsmasq']).stdout?.toString().trim()
  if (found) return found
  return ['/usr/sbin/dnsmasq', '/sbin/dnsmasq'].find((p) => existsSync(p))
}

export function dnsmasqAvailable(): boolean {
  return dnsmasqPath() !== undefined
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  const port = s.address().port
  s.close()
  return port
}

export class Dnsmasq {
  private child: ChildProcess | undefined
  port = 0
  private readonly dir = testDir('proxy-dnsmasq-')
  readonly hostsFile = join(this.dir, 'hosts')

  /** hosts: lines of "ip name". */
  async start(hosts: string, ttlS: number): Promise<this> {
    chmodSync(this.dir, 0o755)
    this.writeHosts(hosts)
    // dnsmasq binds TCP as well as UDP on its port: a UDP port found free may be taken for TCP
    // by another process's connection. It then exits with 2 at once; a new port is tried (5 at most).
    for (let attempt = 1; ; attempt++) {
      this.port = await freeUdpPort()
      this.child = spawn(dnsmasqPath() ?? 'dnsmasq', ['--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--bind-interfaces', '--listen-address=127.0.0.1', `--port=${this.port}`, `--addn-hosts=${this.hostsFile}`, `--local-ttl=${ttlS}`, '--user=root', `--pid-file=${join(this.dir, 'pid')}`, '--log-facility=-'], { stdio: 'ignore' })
      await Bun.sleep(300)
      if (this.child.exitCode === null) return this
      if (this.child.exitCode !== 2 || attempt >= 5) throw new Error(`dnsmasq exited with ${this.child.exitCode}`)
    }
  }

  writeHosts(hosts: string): void {
    writeFileSync(this.hostsFile, hosts)
    chmodSync(this.hostsFile, 0o644)
  }

  /** Re-reads the hosts file (dnsmasq clears its cache and reloads addn-hosts on SIGHUP). */
  reload(): void {
    this.child?.kill('SIGHUP')
  }

  close(): void {
    this.child?.kill('SIGKILL')
    this.child = undefined
  }
}
