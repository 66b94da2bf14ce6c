import { HYPERVISOR } from './abi.js';
import type { XenHypervisor } from './hypervisor.js';
import { enterHypercall } from './mm.js';

/**
 * EVTCHNOP_send (HYPERVISOR_event_channel_op): a PV guest's block frontend tells the backend
 * that requests wait on the ring (blkfront flush_requests → notify_remote_via_irq). One per
 * request here, the most it can be (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY skips the notify while
 * the backend is still working through the ring). The completion comes back as an event upcall,
 * which takes no hypercall.
 */
export function evtchnSend(x: XenHypervisor): void {
  enterHypercall(x, HYPERVISOR.event_channel_op);
}
