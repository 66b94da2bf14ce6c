/** pte-lab: the command line as a library (for tests and scripts). */
export { main, buildProgram, VERSION } from './main.js';
export type { CliIo } from './io.js';
export { formatTable } from './table.js';
