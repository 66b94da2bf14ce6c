import { configError } from '@pte/core';
import { mmapTouch } from './mmap-touch.js';
import { xenBatching } from './xen-batching.js';
import { kvmAccessedBit } from './kvm-accessed-bit.js';
import { majorFaultReadahead } from './major-fault-readahead.js';
import { minorFaultAround } from './minor-fault-around.js';
import { mapPages2mbWindow } from './map-pages-2mb-window.js';
import { anonPrefault } from './anon-prefault.js';
import { vmapLazyFlush } from './vmap-lazy-flush.js';
import { forkyBuild } from './forky-build.js';
import { execShell } from './exec-shell.js';
import { madviseGated } from './madvise-gated.js';
import { smpPageFaultTest } from './smp-page-fault-test.js';
import { smpShootdown } from './smp-shootdown.js';
import { smpVmapScaling } from './smp-vmap-scaling.js';
import { smpEbizzy } from './smp-ebizzy.js';
import type { Scenario } from './scenario.js';

/** Every scenario this build runs, by name (SCENARIOS.md; more arrive with their issues). */
export const SCENARIOS: readonly Scenario<any>[] = [
  mmapTouch,
  majorFaultReadahead,
  xenBatching,
  kvmAccessedBit,
  minorFaultAround,
  mapPages2mbWindow,
  anonPrefault,
  vmapLazyFlush,
  forkyBuild,
  execShell,
  madviseGated,
  smpPageFaultTest,
  smpShootdown,
  smpVmapScaling,
  smpEbizzy,
];

export function getScenario(name: string): Scenario<any> {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) {
    throw configError(
      `unknown scenario '${name}'`,
      `scenarios: ${SCENARIOS.map((x) => x.name).join(', ')} (pte-lab list)`,
    );
  }
  return s;
}
