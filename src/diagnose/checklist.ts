// The checklist, run: for the upstream and then each backup, DNS, TCP to every
// address (in the order the sidecar races them), TLS with every address that
// connected; then one HTTP request through the first address that would carry
// the sidecar's traffic. Addresses of one
// target are probed together, so a dead address costs one timeout, not one each.
// Steps are reported as they complete (for live output); the verdict is
// decided from them afterwards, by pure code (verdict.ts).
import { interleaveFamilies } from '../upstream/address-book.ts';
import { withExtraAddresses } from '../upstream/connector.ts';
import { literalAddresses, type ResolvedAddress } from '../upstream/resolver.ts';
import { probeTcp, probeTls } from './connect.ts';
import { resolveTarget } from './dns.ts';
import { probeHttp } from './http.ts';
import type { Plan, TargetPlan } from './plan.ts';
import type { Step, StepPhase } from './schema.ts';

export interface ChecklistEvents {
  /** A phase starts for one target: what it waits for (for a progress line). */
  readonly onPhase?: (phase: StepPhase, target: number, what: string) => void;
  /** A step is done. */
  readonly onStep?: (step: Step) => void;
}

/**
 * The order a fresh sidecar tries a target's addresses in: the resolved ones,
 * then the extra ones, families interleaved (RFC 8305, as the connector races them).
 */
const sidecarOrder = (resolved: readonly ResolvedAddress[], target: TargetPlan): ResolvedAddress[] =>
  interleaveFamilies(withExtraAddresses(resolved, target.extraAddresses));

/** Runs every step of the checklist; resolves with all of them, in order. */
export async function runChecklist(plan: Plan, events: ChecklistEvents = {}): Promise<Step[]> {
  const steps: Step[] = [];
  const emit = (list: readonly Step[]) => {
    for (const s of list) {
      steps.push(s);
      events.onStep?.(s);
    }
  };
  let carrier: { target: TargetPlan; index: number; address: ResolvedAddress } | undefined;
  for (const [index, target] of plan.targets.entries()) {
    if (literalAddresses(target.host) === undefined) events.onPhase?.('dns', index, target.host);
    const resolution = await resolveTarget(index, target.host, plan.resolver, plan.connectTimeoutMs);
    emit(resolution.steps);
    const addresses = sidecarOrder(resolution.addresses, target);
    if (addresses.length === 0) continue;
    events.onPhase?.('tcp', index, `${addresses.length} address(es), port ${target.port}`);
    const tcp = await Promise.all(addresses.map((a) => probeTcp(target, index, a, plan.connectTimeoutMs)));
    emit(tcp);
    let connected = addresses.filter((_, i) => tcp[i]?.ok === true);
    if (target.tls !== undefined && connected.length > 0) {
      events.onPhase?.('tls', index, `${connected.length} address(es)`);
      const tls = await Promise.all(connected.map((a) => probeTls(target, index, a, plan.connectTimeoutMs)));
      emit(tls);
      connected = connected.filter((_, i) => tls[i]?.ok === true);
    }
    const first = connected[0];
    if (carrier === undefined && first !== undefined) carrier = { target, index, address: first };
  }
  if (carrier !== undefined) {
    events.onPhase?.('http', carrier.index, `GET ${plan.path}`);
    emit([await probeHttp(plan, carrier.target, carrier.index, carrier.address)]);
  }
  return steps;
}
