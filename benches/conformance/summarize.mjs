// Scores cache-tests results the way the suite's own report does (lib/display.mjs,
// determineTestResult, dependencies honoured), for the CLI's (non-browser) tests.
// Run from the suite's directory: node summarize.mjs results.json [more.json ...]
import fs from 'fs'
import tests from './tests/index.mjs'
import surrogate from './tests/surrogate-control.mjs'

tests.push(surrogate) // the CLI runs this suite too
const all = []
for (const suite of tests) for (const test of suite.tests) if (test.browser_only !== true) all.push(test)
const byId = Object.fromEntries(all.map(t => [t.id, t]))
const PASSED = new Set(['pass', 'yes'])

function outcome (id, results) {
  const test = byId[id]
  const result = results[id]
  if (test === undefined || result === undefined) return 'untested'
  for (const dependency of test.depends_on || []) {
    if (!PASSED.has(outcome(dependency, results))) return 'dependency_fail'
  }
  if (Array.isArray(result) && result[0] === 'Setup') return result[1] === 'retry' ? 'retry' : 'setup_fail'
  const kind = test.kind || 'required'
  if (kind === 'required') return result === true ? 'pass' : 'fail'
  if (kind === 'optimal') return result === true ? 'pass' : 'optional_fail'
  return result === true ? 'yes' : 'no'
}

const kinds = {}
for (const test of all) kinds[test.kind || 'required'] = (kinds[test.kind || 'required'] || 0) + 1
console.log(`tests run by the CLI: ${all.length} (${JSON.stringify(kinds)})`)
for (const file of process.argv.slice(2)) {
  const results = JSON.parse(fs.readFileSync(file, 'utf8'))
  const counts = {}
  const failed = []
  for (const test of all) {
    const kind = test.kind || 'required'
    const o = outcome(test.id, results)
    counts[`${kind}:${o}`] = (counts[`${kind}:${o}`] || 0) + 1
    if (kind === 'required' && o !== 'pass') failed.push(`${test.id} (${o})`)
  }
  console.log(`${file}: required passed ${counts['required:pass'] || 0} of ${kinds.required}; ${JSON.stringify(counts)}`)
  if (process.env.LIST_FAILED) console.log('  not passed: ' + failed.join(', '))
}
