import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { start, startOrigin, waitFor, workDir, wrk } from './local-load.ts'
const bin = process.argv[2]!
const dir = workDir('split-')
startOrigin(dir, 18400)
const conf = join(dir, 'px.conf')
writeFileSync(conf, `worker_processes 1;\ndaemon off;\npid ${join(dir, 'px.pid')};\nerror_log ${join(dir, 'px.err')} warn;\nevents { worker_connections 8192; }\nhttp {\n access_log off;\n keepalive_requests 1000000;\n upstream o { server 127.0.0.1:18400; keepalive 256; }\n server { listen 127.0.0.1:18401; location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n`)
const ng = start('nginx', ['-c', conf])
const px = start(bin, ['serve', '--upstream', '127.0.0.1:18400', '--listen', '127.0.0.1:18402', '--admin', 'off', '--access-log', 'off'])
await waitFor(18400, '/small'); await waitFor(18401, '/small'); await waitFor(18402, '/small')
await new Promise((r) => setTimeout(r, 500))
function pids(root: number): number[] { // nginx: master + worker
  const out = [root]
  for (const line of require('node:child_process').execSync(`ps -o pid= --ppid ${root} || true`).toString().trim().split('\n')) if (line.trim()) out.push(Number(line))
  return out
}
function ticks(ps: number[]): [number, number] { let u = 0, s = 0; for (const p of ps) { const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' '); u += Number(f[11]); s += Number(f[12]) } return [u, s] }
const targets = [['nginx', 18401, pids(ng.pid!)], ['proxy', 18402, pids(px.pid!)]] as const
for (const [, port] of targets) await wrk(port, '/small', '64', '2s')
for (let r = 0; r < 3; r++) for (const [name, port, ps] of targets) {
  const a = ticks([...ps]); const res = await wrk(port, '/small', '64', '5s'); const b = ticks([...ps])
  console.log(`${name}: ${Math.round(res.rps)} req/s user ${((b[0] - a[0]) * 1e4 / res.requests).toFixed(2)} sys ${((b[1] - a[1]) * 1e4 / res.requests).toFixed(2)} us/req`)
}
process.exit(0)
