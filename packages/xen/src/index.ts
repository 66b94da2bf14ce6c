/** @pte/xen: Xen PV — the ABI, the hypervisor's MMU, and the guest's pvops backend. */
export * from './abi.js';
export { XenHypervisor, XEN_OK, XEN_EINVAL } from './hypervisor.js';
export type { XenOptions, XenSmp } from './hypervisor.js';
export { XenPvMmu } from './xen-pv.js';
export type { XenPteWrite, XenAliasPolicy } from './xen-pv.js';
export { McQueue } from './multicall.js';
export { XEN_COSTS } from './costs.js';
export type { XenCostKey } from './costs.js';
export { evtchnSend } from './event-channel.js';
