/**
 * `pnpm lint`: the package layer graph of DESIGN.md. A package may import only the packages it
 * can reach in the graph; the guest kernel never imports a hypervisor package and a hypervisor
 * package never imports @pte/vm; the app imports @pte/machine's API and @pte/core only. Checks both
 * package.json dependencies and import statements (sources and tests).
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/** Direct edges of the DESIGN.md graph. */
const EDGES = {
  '@pte/core': [],
  '@pte/arch-x86': ['@pte/core'],
  '@pte/pvops': ['@pte/arch-x86', '@pte/core'],
  '@pte/vm': ['@pte/pvops'],
  '@pte/xen': ['@pte/pvops'],
  '@pte/kvm-shadow': ['@pte/pvops'],
  '@pte/workloads': ['@pte/core'],
  '@pte/machine': ['@pte/workloads', '@pte/vm', '@pte/xen', '@pte/kvm-shadow'],
  'pte-lab': ['@pte/machine', '@pte/core'],
  // Private: the helpers the tests share. Any package's tests may import it; no source may.
  '@pte/test-utils': ['@pte/vm'],
};
const TEST_ONLY = '@pte/test-utils';
/**
 * Packages that may import only their direct edges, not everything below them: the app drives the
 * machine through @pte/machine's API (its Machine's internals are stripped from the types) and
 * takes nothing else from the lower layers but @pte/core's errors and units.
 */
const DIRECT_ONLY = new Set(['pte-lab']);

function reachable(pkg) {
  const seen = new Set();
  const stack = [...(EDGES[pkg] ?? [])];
  while (stack.length) {
    const p = stack.pop();
    if (seen.has(p)) continue;
    seen.add(p);
    stack.push(...(EDGES[p] ?? []));
  }
  return seen;
}

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) yield p;
  }
}

const problems = [];
for (const group of ['packages', 'apps']) {
  for (const dirName of readdirSync(join(root, group))) {
    const dir = join(root, group, dirName);
    const pj = join(dir, 'package.json');
    if (!existsSync(pj)) continue;
    const pkg = JSON.parse(readFileSync(pj, 'utf8'));
    if (!(pkg.name in EDGES)) {
      problems.push(`${relative(root, pj)}: package ${pkg.name} is not in the layer graph (scripts/check-layers.mjs)`);
      continue;
    }
    const allowed = DIRECT_ONLY.has(pkg.name) ? new Set(EDGES[pkg.name]) : reachable(pkg.name);
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      if (dep.startsWith('@pte/') && !allowed.has(dep))
        problems.push(`${relative(root, pj)}: ${pkg.name} may not depend on ${dep}`);
    }
    for (const sub of ['src', 'test']) {
      if (!existsSync(join(dir, sub))) continue;
      for (const f of files(join(dir, sub))) {
        const text = readFileSync(f, 'utf8');
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](@pte\/[a-z0-9-]+|pte-lab)['"]/g)) {
          if (sub === 'test' && m[1] === TEST_ONLY) continue;
          if (m[1] !== pkg.name && !allowed.has(m[1]))
            problems.push(`${relative(root, f)}: ${pkg.name} may not import ${m[1]}`);
        }
      }
    }
  }
}

if (problems.length) {
  for (const p of problems) console.error(`layer check: ${p}`);
  process.exit(1);
}
console.log('layer check: every package imports only what DESIGN.md allows');
