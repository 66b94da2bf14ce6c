import { Machine, resolveRunCosts } from '../src/index.js';
import { getProfile, populateByWrite, VM_READ, type VmPolicy } from '@pte/vm';
const MiB = 2 ** 20;
function m(platform: any, profile: string, o: Partial<VmPolicy> = {}) {
  const p = getProfile(profile);
  return new Machine({ platform, profile: p, policy: { ...p.policy, ...o }, memBytes: 64 * MiB, seed: 1, costs: resolveRunCosts({}), check: true });
}
test('explore', () => {
  for (const pl of ['native', 'kvm-shadow', 'kvm-tdp']) {
    const mc = m(pl, 'linux-3.15', { prefaultOld: false });
    const t = mc.spawn();
    const P = 1024;
    const f = mc.createFile('f', P * 4096);
    populateByWrite(mc.kernel, f, 256, 0);
    const v = mc.sys.mmap(t, { pages: P, prot: VM_READ, shared: false, file: f });
    mc.startMeasurement();
    mc.touch(t, v, { kind: 'stride', stride: 3 }, 'read', 1);
    mc.sys.exit(t);
    const c = mc.measuredCounters();
    console.log(pl, Object.fromEntries(Object.entries(c).filter(([k, x]) => x !== 0 && (k.startsWith('kvm') || k.startsWith('pte') || k.startsWith('tlb.walk')))));
  }
});
