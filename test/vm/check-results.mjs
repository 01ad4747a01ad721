// Reads jest's --json output file of the trunk suite and fails unless tests really ran:
// jest exits 0 when the suite skipped itself (describe.skip on a kernel without the features),
// so the exit code alone proves nothing. The expected count is the file's own: every test it
// declares must have run and passed (none pending or skipped), unless the caller filtered
// tests on purpose (--filtered, e.g. --testNamePattern bench), then at least one ran.
//   node test/vm/check-results.mjs RESULTS.json [--filtered]
import { readFileSync } from 'node:fs';

const [file, flag] = process.argv.slice(2);
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`trunk suite: no jest results (${e.message}): the suite did not run`);
  process.exit(1);
}
const { numTotalTests: total, numPassedTests: passed, numFailedTests: failed, numPendingTests: pending, numTodoTests: todo = 0 } = r;
const problems = [];
if (total === 0) problems.push('no test found');
if (passed === 0) problems.push('no test passed');
if (failed > 0) problems.push(`${failed} failed`);
if (flag !== '--filtered' && pending + todo > 0) problems.push(`${pending + todo} skipped or pending (the kernel check inside the run said no?)`);
if (flag !== '--filtered' && passed !== total) problems.push(`${passed} of ${total} passed`);
console.log(`trunk suite results: ${passed} passed, ${failed} failed, ${pending + todo} skipped of ${total}`);
if (problems.length) {
  console.error(`trunk suite FAILED: ${problems.join('; ')}`);
  process.exit(1);
}
