/** Parsing, merging and rendering Prometheus text over workers (merge-metrics.ts), as tables. */
import { describe, expect, test } from 'bun:test'
import { mergeFamilies, MetricsParseError, parseExposition, renderExposition, summedFamilies } from '../../../src/proxy/observe/merge-metrics.ts'
import { Histogram } from '../../../src/proxy/observe/metrics.ts'

const W0 = `# HELP proxy_requests_total Requests by status class.
# TYPE proxy_requests_total counter
proxy_requests_total{worker="0",upstream="default",class="2xx"} 7
proxy_requests_total{worker="0",upstream="default",class="5xx"} 1
# HELP proxy_client_connections Open client connections.
# TYPE proxy_client_connections gauge
proxy_client_connections{worker="0"} 3
# HELP proxy_request_duration_seconds Whole request time.
# TYPE proxy_request_duration_seconds histogram
proxy_request_duration_seconds_bucket{worker="0",upstream="default",le="0.1"} 6
proxy_request_duration_seconds_bucket{worker="0",upstream="default",le="+Inf"} 8
proxy_request_duration_seconds_sum{worker="0",upstream="default"} 0.5
proxy_request_duration_seconds_count{worker="0",upstream="default"} 8
`
const W1 = `# HELP proxy_requests_total Requests by status class.
# TYPE proxy_requests_total counter
proxy_requests_total{worker="1",class="2xx",upstream="default"} 5
proxy_requests_total{worker="1",upstream="api",class="2xx"} 2
# TYPE proxy_client_connections gauge
proxy_client_connections{worker="1"} 4
# TYPE proxy_request_duration_seconds histogram
proxy_request_duration_seconds_bucket{worker="1",upstream="default",le="0.1"} 4
proxy_request_duration_seconds_bucket{worker="1",upstream="default",le="+Inf"} 5
proxy_request_duration_seconds_sum{worker="1",upstream="default"} 0.25
proxy_request_duration_seconds_count{worker="1",upstream="default"} 5
`

function merged(...texts: string[]): string {
  return renderExposition(mergeFamilies(texts.map((t, i) => ({ worker: String(i), families: parseExposition(t) }))))
}

describe('parseExposition', () => {
  const cases: { name: string; text: string; want: { family: string; type: string; samples: [string, [string, string][], number][] }[] }[] = [
    { name: 'no labels', text: 'up 1\n', want: [{ family: 'up', type: 'untyped', samples: [['up', [], 1]] }] },
    { name: 'escapes in label values', text: '# TYPE m gauge\nm{a="x\\"y",b="c\\\\d",c="e\\nf"} 2\n', want: [{ family: 'm', type: 'gauge', samples: [['m', [['a', 'x"y'], ['b', 'c\\d'], ['c', 'e\nf']], 2]] }] },
    { name: 'a comma and spaces inside a value, a trailing comma', text: 'm{ a = "1, 2" ,} 3\n', want: [{ family: 'm', type: 'untyped', samples: [['m', [['a', '1, 2']], 3]] }] },
    { name: 'special values and a timestamp', text: 'a +Inf\nb -Inf\nc NaN\nd 1.5e3 1700000000000\n', want: [
      { family: 'a', type: 'untyped', samples: [['a', [], Infinity]] },
      { family: 'b', type: 'untyped', samples: [['b', [], -Infinity]] },
      { family: 'c', type: 'untyped', samples: [['c', [], NaN]] },
      { family: 'd', type: 'untyped', samples: [['d', [], 1500]] },
    ] },
    { name: 'histogram suffixes join their family', text: '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 0.5\nh_count 1\n', want: [{ family: 'h', type: 'histogram', samples: [['h_bucket', [['le', '1']], 1], ['h_sum', [], 0.5], ['h_count', [], 1]] }] },
    { name: 'a summary has no _bucket', text: '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 2\ns_count 3\ns_bucket 4\n', want: [
      { family: 's', type: 'summary', samples: [['s', [['quantile', '0.5']], 1], ['s_sum', [], 2], ['s_count', [], 3]] },
      { family: 's_bucket', type: 'untyped', samples: [['s_bucket', [], 4]] },
    ] },
    { name: 'other comments are skipped', text: '# just a comment\n\n# TYPE c counter\nc_total 1\n', want: [
      { family: 'c', type: 'counter', samples: [] },
      { family: 'c_total', type: 'untyped', samples: [['c_total', [], 1]] },
    ] },
  ]
  for (const c of cases) {
    test(c.name, () => {
      const got = parseExposition(c.text).map((f) => ({ family: f.name, type: f.type as string, samples: f.samples.map((s) => [s.name, s.labels, s.value]) }))
      expect(got).toEqual(c.want)
    })
  }

  const bad = ['m{a="1"', 'm{a=1} 2', 'm{a="1" b="2"} 3', 'm', 'm 1 2 3', 'm abc', '{a="1"} 2', '# TYPE m countr']
  for (const text of bad) {
    test(`refused: ${JSON.stringify(text)}`, () => {
      let err: unknown
      try {
        parseExposition(text)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(MetricsParseError)
      expect((err as MetricsParseError).code).toBe('E_METRICS_PARSE')
    })
  }
})

describe('mergeFamilies', () => {
  test('counters summed per label set without the worker label, whatever the label order', () => {
    const text = merged(W0, W1)
    expect(text).toContain('proxy_requests_total{upstream="default",class="2xx"} 12\n')
    expect(text).toContain('proxy_requests_total{upstream="default",class="5xx"} 1\n')
    expect(text).toContain('proxy_requests_total{upstream="api",class="2xx"} 2\n')
    expect(text).not.toMatch(/proxy_requests_total\{worker=/)
  })

  test('histogram buckets, sums and counts summed', () => {
    const text = merged(W0, W1)
    expect(text).toContain('proxy_request_duration_seconds_bucket{upstream="default",le="0.1"} 10\n')
    expect(text).toContain('proxy_request_duration_seconds_bucket{upstream="default",le="+Inf"} 13\n')
    expect(text).toContain('proxy_request_duration_seconds_sum{upstream="default"} 0.75\n')
    expect(text).toContain('proxy_request_duration_seconds_count{upstream="default"} 13\n')
  })

  test('gauges kept per worker, labelled by the merging side (a wrong worker label is replaced)', () => {
    const text = renderExposition(mergeFamilies([
      { worker: '0', families: parseExposition(W0) },
      { worker: '1', families: parseExposition(W1.replace('proxy_client_connections{worker="1"}', 'proxy_client_connections{worker="7"}')) },
    ]))
    expect(text).toContain('proxy_client_connections{worker="0"} 3\nproxy_client_connections{worker="1"} 4\n')
    expect(text).not.toContain('worker="7"')
  })

  test('HELP and TYPE once per family, from the first worker that has them; families keep first-seen order', () => {
    const text = merged(W0, W1)
    expect(text.match(/# HELP proxy_requests_total /g)).toHaveLength(1)
    expect(text.match(/# TYPE proxy_request_duration_seconds histogram/g)).toHaveLength(1)
    expect(text.indexOf('# TYPE proxy_requests_total')).toBeLessThan(text.indexOf('# TYPE proxy_client_connections'))
    expect(text.indexOf('# TYPE proxy_client_connections')).toBeLessThan(text.indexOf('# TYPE proxy_request_duration_seconds'))
  })

  test('an input without a worker (carried counts) adds to sums and brings no gauges', () => {
    const carried = summedFamilies(parseExposition(W1))
    expect(carried.map((f) => f.name)).toEqual(['proxy_requests_total', 'proxy_request_duration_seconds'])
    const text = renderExposition(mergeFamilies([{ worker: '0', families: parseExposition(W0) }, { worker: undefined, families: parseExposition(W1) }]))
    expect(text).toContain('proxy_requests_total{upstream="default",class="2xx"} 12\n')
    expect(text).toContain('proxy_client_connections{worker="0"} 3\n')
    expect(text).not.toContain('worker="1"')
  })

  test('the inputs are not changed by a merge', () => {
    const f0 = parseExposition(W0)
    mergeFamilies([{ worker: '0', families: f0 }, { worker: '1', families: parseExposition(W1) }])
    expect(renderExposition(f0)).toBe(W0)
  })

  test('the merge of the real Histogram rendering of two workers equals one histogram fed both', () => {
    const a = new Histogram()
    const b = new Histogram()
    const both = new Histogram()
    const samplesMs = [0.4, 3, 3, 12, 80, 700, 4000, 90_000]
    samplesMs.forEach((ms, i) => {
      ;(i % 2 ? a : b).observeMs(ms)
      both.observeMs(ms)
    })
    const render = (h: Histogram, worker?: string) => {
      const out = ['# TYPE x histogram']
      h.render('x', worker ? `worker="${worker}",upstream="u"` : 'upstream="u"', out)
      return out.join('\n') + '\n'
    }
    const got = renderExposition(mergeFamilies([{ worker: '0', families: parseExposition(render(a, '0')) }, { worker: '1', families: parseExposition(render(b, '1')) }]))
    const want = renderExposition(parseExposition(render(both)))
    // The sums may differ in the last float digit; everything else must be identical.
    const noSum = (t: string) => t.replace(/^x_sum.*$/m, '')
    expect(noSum(got)).toBe(noSum(want))
    expect(Number(/^x_sum\{upstream="u"\} (\S+)$/m.exec(got)![1])).toBeCloseTo(samplesMs.reduce((s, ms) => s + ms / 1000, 0), 9)
  })
})

describe('renderExposition', () => {
  test('round trip: what it renders parses back to the same families', () => {
    const families = parseExposition(W0 + 'm{a="x\\"y\\\\z\\nw"} +Inf\nn NaN\n')
    expect(parseExposition(renderExposition(families))).toEqual(families)
  })
})
