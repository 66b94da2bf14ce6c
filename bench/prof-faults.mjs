import { Machine, resolveRunCosts } from '@pte/machine';
import { getProfile, populateByWrite, VM_READ, VM_WRITE } from '@pte/vm';
const profile = getProfile('linux-3.15');
for (let rep = 0; rep < 3; rep++) {
const m = new Machine({ platform: 'native', profile, policy: { ...profile.policy, faultAround: 1 }, memBytes: 2.5 * 2**30, seed: 1, costs: resolveRunCosts({}) });
const task = m.spawn(); const file = m.createFile('d', 2**30); populateByWrite(m.kernel, file, 256, 0);
const vma = m.sys.mmap(task, { pages: 262144, prot: VM_READ, shared: false, file });
const t = performance.now(); m.touch(task, vma, { kind: 'seq' }, 'read', 1); console.log((262144 / (performance.now() - t) / 1000).toFixed(2), 'M faults/s');
}
