/** @pte/machine: assembles and runs a simulated machine. */
export { Machine, ACCESS_SEGV, ACCESS_NONCANONICAL, USER_READ, USER_WRITE, USER_FETCH } from './machine.js';
export type { MachineOptions, AccessKind, PageRange } from './machine.js';
export { PLATFORMS, IMPLEMENTED_PLATFORMS, parsePlatform, FAULT_FIXED_BY_HOST } from './platform.js';
export type { Platform, PlatformName, PlatformSetup } from './platform.js';
export { NativePlatform } from './platforms/native.js';
export { XenPvPlatform, hypervisorOf } from './platforms/xen-pv.js';
export { KvmShadowPlatform, shadowOf } from './platforms/kvm-shadow.js';
export { KvmTdpPlatform } from './platforms/kvm-tdp.js';
export { ALL_COSTS, resolveRunCosts } from './costs.js';
export type { RunCostKey } from './costs.js';
export type { RunResult } from './run-result.js';
export { sortedRecord } from './run-result.js';
export { PGD_PIN_PHASE } from '@pte/pvops';
