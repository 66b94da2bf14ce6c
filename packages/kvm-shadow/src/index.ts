/** @pte/kvm-shadow: KVM's shadow MMU and nested paging (TDP). */
export { ShadowMmu, PTE_PREFETCH_NUM, WRITE_FLOOD_LIMIT } from './shadow-mmu.js';
export type { ShadowEra, ShadowOptions, ShadowSmp } from './shadow-mmu.js';
export { KvmTdp } from './tdp.js';
export { KvmShadowPvMmu } from './guest-backend.js';
export { KVM_COSTS } from './costs.js';
export type { KvmCostKey } from './costs.js';
