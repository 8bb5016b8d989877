import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { errorCatalogue } from '../../protocol/index.ts'

t.test('the README error table lists exactly the catalogue, with the same statuses', async (t) => {
  const readme = fs.readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8')
  const rows = [...readme.matchAll(/^\| `(GW_ERR_[A-Z_]+)` \| (\d{3}) \| (\d?) \|/gm)]
  const documented = Object.fromEntries(rows.map((m) => [m[1], { http: Number(m[2]), connack: m[3] === '' ? undefined : Number(m[3]) }]))
  const catalogue = Object.fromEntries(Object.entries(errorCatalogue).map(([code, spec]) => [code, { http: spec.httpStatus, connack: (spec as { connackCode?: number }).connackCode }]))
  t.same(documented, catalogue)
})
