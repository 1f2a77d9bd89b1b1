// Summarises a cache-tests run per test group: required and optional tests passed, over the
// tests that apply to a shared cache (browser-only tests are left out, as the suite's client
// leaves them out). A dependency that failed fails the tests depending on it, as in the suite's
// own reports.
//
//   node summary.mjs SUITE_DIR RESULTS.json COMMIT SETTING  > summary.md
//   node summary.mjs --splice docs/cache.md summary.md      (between the cache-tests markers)

import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const START = '<!-- cache-tests results: start -->'
const END = '<!-- cache-tests results: end -->'

if (process.argv[2] === '--splice') {
  const [doc, summary] = process.argv.slice(3)
  const text = fs.readFileSync(doc, 'utf8')
  const a = text.indexOf(START)
  const b = text.indexOf(END)
  if (a < 0 || b < a) throw new Error(`${doc} has no cache-tests markers`)
  const body = fs.readFileSync(summary, 'utf8')
  fs.writeFileSync(doc, text.slice(0, a + START.length) + '\n' + body + text.slice(b))
  process.exit(0)
}

const [suiteDir, resultsFile, commit, setting] = process.argv.slice(2)
const load = (p) => import(pathToFileURL(path.join(suiteDir, p)).href)
const suites = (await load('tests/index.mjs')).default
const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))

const rows = []
const total = { req: 0, reqPass: 0, opt: 0, optPass: 0 }
const failed = []
for (const suite of suites) {
  const row = { name: suite.name, req: 0, reqPass: 0, opt: 0, optPass: 0 }
  for (const test of suite.tests) {
    if (test.browser_only === true) continue
    const kind = test.kind === undefined ? 'required' : test.kind
    if (kind === 'check') continue
    const r = determineTestResult(suites, test.id, results)
    const pass = r === resultTypes.pass
    if (kind === 'required') {
      row.req++
      if (pass) row.reqPass++
      else failed.push(`${test.id} (${r[2]})`)
    } else {
      row.opt++
      if (pass) row.optPass++
    }
  }
  for (const k of Object.keys(total)) total[k] += row[k]
  rows.push(row)
}

const out = []
out.push(`cache-tests ${commit} against \`bext run\`, one worker, \`${setting}\`:`)
out.push('')
out.push('| Group | Required passed | Optional passed |')
out.push('|---|---|---|')
for (const r of rows) {
  out.push(`| ${r.name} | ${r.reqPass} / ${r.req} | ${r.optPass} / ${r.opt} |`)
}
out.push(`| **Total** | **${total.reqPass} / ${total.req}** | **${total.optPass} / ${total.opt}** |`)
out.push('')
out.push(`Required tests not passed: ${failed.length ? failed.map(f => `\`${f}\``).join(', ') : 'none'}.`)
console.log(out.join('\n'))
