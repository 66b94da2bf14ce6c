import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_COSTS, COSTS_BY_LAYER, ERA_COSTS } from '@pte/machine';

/** Every cost key in code has a row in docs/cost-model.md with the same default and a source. */
const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'cost-model.md'), 'utf8');
const tables = COSTS_BY_LAYER;

describe('docs/cost-model.md', () => {
  it('covers every key the machine merges, and nothing else', () => {
    const documented = doc
      .split('\n')
      .filter((l) => /^\| `[a-z0-9_.]+` \|/.test(l))
      .map((l) => l.split('`')[1]);
    expect(documented.sort()).toEqual(Object.keys(ALL_COSTS).sort());
  });

  for (const [pkg, table] of Object.entries(tables)) {
    for (const [key, entry] of Object.entries(table)) {
      it(`${pkg}: ${key} has a row with default ${entry.cycles} and a source`, () => {
        const row = doc.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
        expect(row).toBeDefined();
        const cells = row!.split('|').map((c) => c.trim());
        expect(Number(cells[2])).toBe(entry.cycles);
        expect(cells[3]!.length).toBeGreaterThan(10);
        expect(entry.source.length).toBeGreaterThan(10);
      });
    }
  }

  for (const [profile, table] of Object.entries(ERA_COSTS)) {
    for (const [key, entry] of Object.entries(table)) {
      it(`the ${profile} era: ${key} has a row with ${entry!.cycles} cycles and a source`, () => {
        const row = doc.split('\n').find((l) => l.startsWith(`| \`${profile}\` | \`${key}\` |`));
        expect(row).toBeDefined();
        const cells = row!.split('|').map((c) => c.trim());
        expect(Number(cells[3])).toBe(entry!.cycles);
        expect(cells[4]!.length).toBeGreaterThan(10);
      });
    }
  }
});
