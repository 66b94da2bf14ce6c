import { Machine, resolveRunCosts } from '../src/index.js';
import { getProfile, VM_READ, VM_WRITE } from '@pte/vm';
const MiB = 2 ** 20;
function xm(profile = 'linux-6.18', check = true) {
  const p = getProfile(profile);
  return new Machine({ platform: 'xen-pv', profile: p, policy: p.policy, memBytes: 64 * MiB, seed: 1, costs: resolveRunCosts({}), check });
}
test('munmap last vma in pinned mm', () => {
  const m = xm('linux-6.18', false);
  const t = m.spawn();
  const v = m.sys.mmap(t, { pages: 64, prot: VM_READ | VM_WRITE, shared: false, file: null });
  m.touch(t, v, { kind: 'seq' }, 'write', 1);
  const x = m.xen!;
  console.log('refused before', x.refused, x.checkInvariants());
  m.sys.munmap(t, v.start, v.pages);
  console.log('refused after munmap', x.refused, x.checkInvariants().slice(0,3), m.mem.tableCount);
  m.sys.exit(t);
  console.log('refused after exit', x.refused, x.checkInvariants().slice(0,3));
  let refs = 0; for (let f = 0; f < x.ptRefs.length; f++) refs += x.ptRefs[f]!;
  console.log('ptRefs total', refs, 'pinned', x.pinned.reduce((a, b) => a + b, 0));
});
