// Validates an AsyncAPI document with the official parser (@asyncapi/parser).
// Usage: node tools/asyncapi/validate.mjs docs/asyncapi.yaml
// Prints every diagnostic; exits 1 when the parser reports an error (severity 0).
import { Parser, fromFile } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <asyncapi.yaml>');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const severity = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${severity[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${d.path.join('.')}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}`);
