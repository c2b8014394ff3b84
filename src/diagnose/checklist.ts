// The checklist, run: for the upstream and then each backup, DNS, TCP to every
// address (in the order the sidecar races them), TLS with every address that
// connected; then one HTTP request through the first address that would carry
// the sidecar's traffic. Addresses of one
// target are probed together, so a dead address costs one timeout, not one each.
// Steps are reported as they complete (for live output); the verdict is
// decided from them afterwards, by pure code (verdict.ts).

import type net from 'node:net';
import { interleaveFamilies } from '../upstream/address-book.ts';
import { withExtraAddresses } from '../upstream/connector.ts';
import { hostPort } from '../upstream/host-port.ts';
import { literalAddresses, type ResolvedAddress, type Resolver } from '../upstream/resolver.ts';
import { type Probed, probeTcp, probeTls } from './connect.ts';
import { resolveTarget } from './dns.ts';
import { probeHttp } from './http.ts';
import type { Plan, TargetPlan } from './plan.ts';
import type { Step, StepPhase } from './schema.ts';

export interface ChecklistEvents {
  /** A phase starts for one target: what it waits for (for a progress line). */
  readonly onPhase?: (phase: StepPhase, target: number, what: string) => void;
  /** A step is done. */
  readonly onStep?: (step: Step) => void;
  /** An address was left out by ChecklistOptions.admit, with why. */
  readonly onRefused?: (target: number, address: string, reason: string) => void;
}

/** How a running component (a sidecar's checks, the operator's probe) runs the checklist. */
export interface ChecklistOptions {
  /** Ask only this resolver (a sidecar's own, with its cache) instead of every server on its own. */
  readonly resolver?: Resolver;
  /** Send the HTTP request (default true); false checks connecting only. */
  readonly http?: boolean;
  /** User-Agent of the HTTP request. */
  readonly userAgent?: string;
  /** Whether an address may be probed: undefined if so, else why not (it is then left out). */
  readonly admit?: (address: ResolvedAddress) => string | undefined;
}

/**
 * The order a fresh sidecar tries a target's addresses in: the resolved ones,
 * then the extra ones, families interleaved (RFC 8305, as the connector races them).
 */
const sidecarOrder = (resolved: readonly ResolvedAddress[], target: TargetPlan): ResolvedAddress[] =>
  interleaveFamilies(withExtraAddresses(resolved, target.extraAddresses));

/** The address whose connection would carry traffic, and that connection when kept for the request. */
interface Carrier {
  readonly target: TargetPlan;
  readonly index: number;
  readonly address: ResolvedAddress;
  readonly socket?: net.Socket;
}

/** TCP to every address of one target, then TLS with those that connected; the first that works carries. */
async function connectTarget(
  plan: Plan,
  target: TargetPlan,
  index: number,
  addresses: readonly ResolvedAddress[],
  keep: boolean,
  out: { readonly emit: (steps: readonly Step[]) => void; readonly events: ChecklistEvents },
): Promise<Carrier | undefined> {
  out.events.onPhase?.('tcp', index, `${addresses.length} address(es), port ${target.port}`);
  const plain = keep && target.tls === undefined;
  const tcp = await Promise.all(
    addresses.map((a) => probeTcp(target, index, a, plan.connectTimeoutMs, plain)),
  );
  out.emit(tcp.map((p) => p.step));
  let connected = addresses.map((a, i) => ({ a, p: tcp[i] as Probed })).filter((x) => x.p.step.ok);
  if (target.tls !== undefined && connected.length > 0) {
    out.events.onPhase?.('tls', index, `${connected.length} address(es)`);
    const tls = await Promise.all(
      connected.map((x) => probeTls(target, index, x.a, plan.connectTimeoutMs, keep)),
    );
    out.emit(tls.map((p) => p.step));
    connected = connected.map((x, i) => ({ a: x.a, p: tls[i] as Probed })).filter((x) => x.p.step.ok);
  }
  const [first, ...others] = connected;
  for (const o of others) o.p.socket?.destroy();
  if (first === undefined) return undefined;
  return {
    target,
    index,
    address: first.a,
    ...(first.p.socket === undefined ? {} : { socket: first.p.socket }),
  };
}

/** Runs every step of the checklist; resolves with all of them, in order. */
export async function runChecklist(
  plan: Plan,
  events: ChecklistEvents = {},
  options: ChecklistOptions = {},
): Promise<Step[]> {
  const steps: Step[] = [];
  const emit = (list: readonly Step[]) => {
    for (const s of list) {
      steps.push(s);
      events.onStep?.(s);
    }
  };
  let carrier: Carrier | undefined;
  // The connection that would carry traffic carries the request too: one connection, not two.
  const http = options.http !== false;
  for (const [index, target] of plan.targets.entries()) {
    if (literalAddresses(target.host) === undefined) events.onPhase?.('dns', index, target.host);
    const resolution = await resolveTarget(
      index,
      target.host,
      plan.resolver,
      plan.connectTimeoutMs,
      options.resolver,
    );
    emit(resolution.steps);
    const addresses = sidecarOrder(resolution.addresses, target).filter((a) => {
      const refused = options.admit?.(a);
      if (refused !== undefined) events.onRefused?.(index, hostPort(a.address, target.port), refused);
      return refused === undefined;
    });
    if (addresses.length === 0) continue;
    const found = await connectTarget(plan, target, index, addresses, http && carrier === undefined, {
      emit,
      events,
    });
    if (carrier === undefined) carrier = found;
    else found?.socket?.destroy();
  }
  if (carrier !== undefined && http) {
    events.onPhase?.('http', carrier.index, `GET ${plan.path}`);
    emit([
      await probeHttp(
        plan,
        carrier.target,
        carrier.index,
        carrier.address,
        options.userAgent,
        carrier.socket,
      ),
    ]);
  }
  return steps;
}
