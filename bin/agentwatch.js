#!/usr/bin/env node
// Entry point of the `agentwatch` command. The TypeScript sources are compiled
// to dist/ by `npm install` (the `prepare` script) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('agentwatch is not built yet: run `npm install` (or `npm run build`) in the repository first.');
  process.exit(1);
}
const { runCli } = await import(main.href);
await runCli(process.argv);
