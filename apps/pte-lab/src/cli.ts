#!/usr/bin/env node
import { main } from './main.js';

// A reader that stops early (`| head`) closes the pipe: stop quietly, as other tools do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// `pnpm pte-lab …` runs this from the workspace root; the paths the user typed (--out, --costs, a
// trace) are relative to where they typed them, which pnpm passes as INIT_CWD.
const initCwd = process.env.INIT_CWD;
if (process.env.npm_lifecycle_event === 'pte-lab' && initCwd !== undefined && initCwd !== '') {
  try {
    process.chdir(initCwd);
  } catch {
    /* stay in the workspace root */
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
