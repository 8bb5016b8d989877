import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'

const RULES = 'ops/prometheus/vgw-alerts.yml'
const DASHBOARD = 'ops/grafana/vgw-dashboard.json'
const run = promisify(execFile)

/** Metric names a PromQL expression reads: identifiers that are not functions, keywords, labels or durations. */
export function metricsIn (expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan'])
  const names = new Set<string>()
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m
    if (name === undefined || call !== undefined || keywords.has(name.toLowerCase()) || name.startsWith('$')) continue
    names.add(name)
  }
  return [...names]
}

/** Series names a scrape can hold: each TYPE line's name, and a histogram's _bucket, _sum, _count. */
function exportedNames (exposition: string): Set<string> {
  const names = new Set<string>(['up']) // Prometheus' own, per target
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string]
    names.add(name)
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
  }
  return names
}

interface Panel { title?: string, targets?: Array<{ expr?: string }>, panels?: Panel[] }

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => fs.existsSync(p))
// Without promtool the test is reported as skipped, never as passed; with CI=true it fails.
const promtoolSkip = PROMTOOL === undefined && process.env.CI !== 'true' ? 'promtool is not installed (Debian package prometheus); CI=true makes this a failure' : false

t.test('promtool accepts the alert rules', { skip: promtoolSkip }, async (t) => {
  if (PROMTOOL === undefined) return t.fail('promtool missing: apt-get install -y prometheus')
  const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES])
  t.match(stdout, /SUCCESS: \d+ rules found/)
})

t.test('the dashboard and the rules query only metrics the gateway exports', async (t) => {
  const gw = await startTestGateway(t)
  const res = await fetch(`${gw.baseUrl}/metrics`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  const exported = exportedNames(await res.text())
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[], templating: { list: Array<{ query?: unknown }> } }
  const exprs: string[] = []
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      for (const target of p.targets ?? []) if (target.expr !== undefined) exprs.push(target.expr)
      walk(p.panels ?? [])
    }
  }
  walk(dashboard.panels)
  t.ok(exprs.length >= 30, `${exprs.length} panel queries`)
  const rules = fs.readFileSync(RULES, 'utf8')
  for (const m of rules.matchAll(/expr: (\|\n(?:\s{10,}.*\n)+|.*)/g)) exprs.push((m[1] ?? '').replace(/^\|/, ''))
  const unknown = new Set<string>()
  const used = new Set<string>()
  for (const expr of exprs) for (const name of metricsIn(expr)) (exported.has(name) ? used : unknown).add(name)
  t.same([...unknown], [], 'no query names a metric the gateway does not export')
  t.ok(used.size >= 30, `${used.size} distinct metrics used`)
  // And the check can fail: a made-up name is caught.
  t.same(metricsIn('sum by (instance) (rate(vgw_made_up_total{x="a"}[5m])) / on (instance) vgw_ready'), ['vgw_made_up_total', 'vgw_ready'])
})
