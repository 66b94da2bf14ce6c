import { Machine, resolveRunCosts } from '../src/index.js';
import { getProfile, populateByWrite, VM_READ, type VmPolicy } from '@pte/vm';
const MiB = 2 ** 20;
function m(platform: any, profile: string, o: Partial<VmPolicy> = {}) {
  const p = getProfile(profile);
  return new Machine({ platform, profile: p, policy: { ...p.policy, ...o }, memBytes: 64 * MiB, seed: 1, costs: resolveRunCosts({}), check: true });
}
test('explore', () => {
  for (const old of [false, true]) {
    const mc = m('kvm-shadow', 'linux-3.15', { prefaultOld: old });
    const t = mc.spawn();
    const P = 1024;
    const f = mc.createFile('f', P * 4096);
    populateByWrite(mc.kernel, f, 256, 0);
    const v = mc.sys.mmap(t, { pages: P, prot: VM_READ, shared: false, file: f });
    mc.startMeasurement();
    mc.touch(t, v, { kind: 'seq' }, 'read', 1);
    const c = mc.measuredCounters();
    console.log(old, v.start % 512, Object.fromEntries(Object.entries(c).filter(([k, x]) => x !== 0 && (k.startsWith('kvm') || k.startsWith('faults') || k.startsWith('pt.') || k.startsWith('pte')))));
  }
});
