// What a failure means and what to do about it, in plain words specific to the
// evidence: which addresses, which name, which certificate date. Pure: steps
// and the plan in, sentences out. The generic meaning and hint of every cause
// stay in src/api/causes.ts (one source of truth); this adds the specifics.
import { CAUSES, type Cause, isCause } from '../api/causes.ts';
import { clusterOnlyHost, type Plan, type TargetPlan } from './plan.ts';
import type { Step } from './schema.ts';

export interface Explained {
  readonly summary: string;
  readonly fix: string;
}

/** The failure being explained and what surrounds it. */
export interface FailureContext {
  readonly plan: Plan;
  readonly steps: readonly Step[];
  /** The attempt that speaks for the failure (the sidecar's dominant one). */
  readonly step: Step;
  /** Every failed attempt with the same cause on the sidecar's path. */
  readonly same: readonly Step[];
}

/** How each c-ares code reads in the checklist. */
const OUTCOMES: Readonly<Record<string, string>> = {
  ENOTFOUND: 'NXDOMAIN',
  ENODATA: 'NODATA',
  ESERVFAIL: 'SERVFAIL',
  EREFUSED: 'REFUSED',
  ETIMEOUT: 'timeout',
  ECONNREFUSED: 'connection refused',
};
export const outcomeOf = (code: string): string => OUTCOMES[code] ?? code;

/** "3 days ago", "1 day ago", "less than a day ago". */
export const daysAgo = (days: number): string =>
  days <= 0 ? 'less than a day ago' : `${days} ${days === 1 ? 'day' : 'days'} ago`;

const ms = (n: number): string => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);
const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);
const list = (items: readonly string[]): string =>
  items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;

function targetOf(ctx: FailureContext): TargetPlan {
  return ctx.plan.targets[ctx.step.target] as TargetPlan;
}

/** Where to change a setting: the Origin's field for Origins, the flag or URL otherwise. */
function field(ctx: FailureContext, name: 'port' | 'host' | 'tls' | 'serverName' | 'caBundle'): string {
  if (ctx.plan.origin === null) {
    return {
      port: 'the port in TARGET',
      host: 'the host name in TARGET',
      tls: 'the scheme (http://)',
      serverName: '--server-name',
      caBundle: '--ca-file',
    }[name];
  }
  const base = ctx.step.target === 0 ? 'spec.upstream' : `spec.upstream.backups[${ctx.step.target - 1}]`;
  const path = {
    port: 'port',
    host: 'host',
    tls: 'tls.enabled',
    serverName: 'tls.serverName',
    caBundle: 'tls.caBundle',
  }[name];
  return `\`${base}.${path}\``;
}

/** A cluster-only name read as a Service: its name and namespace (the Origin's when the name has none). */
function serviceName(host: string, plan: Plan): { service: string; namespace?: string } | undefined {
  const namespace = plan.origin?.namespace;
  if (!clusterOnlyHost(host, namespace)) return undefined;
  const [service, second] = host.toLowerCase().split('.');
  const ns = second !== undefined && second !== 'svc' ? second : namespace;
  return { service: service as string, ...(ns === undefined ? {} : { namespace: ns }) };
}

const addresses = (steps: readonly Step[]) => steps.map((s) => s.address ?? '?');
/** " while NAME resolves", when DNS answered for the target: the name is not the problem. */
const resolvesPart = (ctx: FailureContext, target: TargetPlan): string =>
  ctx.steps.some((s) => s.phase === 'dns' && s.target === ctx.step.target && s.address === null && s.ok)
    ? ` while ${target.host} resolves`
    : '';

/** What the per-server DNS steps of the failing target show. */
interface DnsFacts {
  readonly host: string;
  readonly servers: readonly Step[];
  /** " from 10.0.0.10:53" when servers failed on their own too. */
  readonly by: string;
  readonly tried: readonly string[];
}

function dnsByRcode(ctx: FailureContext, f: DnsFacts): Explained {
  const { host, servers, by, tried } = f;
  const ndots = servers[0]?.dns?.ndots ?? 1;
  switch (ctx.step.rcode) {
    case 'NXDOMAIN': {
      const svc = serviceName(host, ctx.plan);
      const searchNote =
        tried.length > 1 && host.split('.').length - 1 < ndots
          ? ` (with ndots:${ndots} the search domains are tried before the name itself; end a fully qualified name with a dot to skip them)`
          : '';
      const svcNote =
        svc === undefined
          ? ''
          : `; a Service is named <service>.<namespace>.svc.cluster.local: check \`kubectl get service ${svc.service}${svc.namespace === undefined ? '' : ` -n ${svc.namespace}`}\``;
      return {
        summary: `${host} does not exist in DNS (NXDOMAIN${by})${tried.length > 1 ? `; names tried: ${tried.join(', ')}` : ''}`,
        fix: `fix ${field(ctx, 'host')} (its spelling) or create the DNS record${svcNote}${searchNote}`,
      };
    }
    case 'NOERROR': {
      const cnames = servers.find((s) => (s.dns?.cnames.length ?? 0) > 0)?.dns?.cnames ?? [];
      const via = cnames.length > 0 ? ` (it is a CNAME to ${cnames.at(-1)}, which has none)` : '';
      return {
        summary: `${host} exists but has no A or AAAA record (NOERROR, no data${by})${via}`,
        fix: `add an A or AAAA record for ${cnames.at(-1) ?? host}, or point ${field(ctx, 'host')} at a name that has one`,
      };
    }
    case 'SERVFAIL':
      return {
        summary: `the resolver fails for ${host} (SERVFAIL${by})`,
        fix: `the resolver could not get an answer from the name's authoritative servers (down, unreachable, or DNSSEC validation failing): check them with \`dig +trace ${host}\`, and the resolver's own upstream (CoreDNS: \`kubectl -n kube-system logs -l k8s-app=kube-dns\`)`,
      };
    case 'REFUSED':
      return {
        summary: `the DNS server refuses to answer for ${host} (REFUSED${by})`,
        fix: 'that server does not resolve names for this client (no recursion, or an access list): point resolv.conf, --dns-server or the CoreDNS forward at a server that does',
      };
    default:
      return {
        summary: `${host} could not be resolved (${outcomeOf(ctx.step.code ?? '')}${by})`,
        fix: CAUSES.dns_error.hint,
      };
  }
}

function dnsExplained(ctx: FailureContext): Explained {
  const host = targetOf(ctx).host;
  const servers = ctx.steps.filter(
    (s) => s.phase === 'dns' && s.target === ctx.step.target && s.address !== null,
  );
  const failing = servers.filter((s) => !s.ok).map((s) => s.address as string);
  const answering = servers.filter((s) => s.ok).map((s) => s.address as string);
  const by = failing.length === 0 ? '' : ` from ${list(failing)}`;
  const tried = servers[0]?.dns?.queries.map((q) => q.name) ?? [];
  const base: Explained =
    ctx.step.cause === 'dns_timeout'
      ? {
          summary: `${failing.length > 0 ? list(failing) : 'the DNS servers'} did not answer for ${host} within ${ms(ctx.plan.connectTimeoutMs)}`,
          fix: 'check that the DNS server runs and that UDP and TCP port 53 to it are allowed (in a cluster: the CoreDNS pods, and a NetworkPolicy allowing egress to kube-dns)',
        }
      : dnsByRcode(ctx, { host, servers, by, tried });
  if (answering.length === 0) return base;
  // c-ares asks the servers in order and takes the first one's SERVFAIL or REFUSED as the answer.
  return {
    summary: `${base.summary}; ${list(answering)} ${plural(answering.length, 'answers', 'answer')} when asked on ${plural(answering.length, 'its', 'their')} own, but the sidecar's resolver stops at the first server's answer`,
    fix: `fix or remove ${list(failing)} (resolv.conf, --dns-server); ${base.fix}`,
  };
}

function connectExplained(ctx: FailureContext, cause: Cause): Explained | undefined {
  const target = targetOf(ctx);
  const addrs = addresses(ctx.same);
  const tried = ctx.steps.filter((s) => s.phase === 'tcp' && s.target === ctx.step.target).length;
  const who =
    addrs.length === tried && tried > 1
      ? `all ${tried} addresses of ${target.host} (${list(addrs)})`
      : list(addrs);
  const verb = (one: string, many: string) => plural(addrs.length, one, many);
  const port = target.port;
  switch (cause) {
    case 'connection_refused': {
      const svc = serviceName(target.host, ctx.plan);
      const endpoints =
        svc === undefined
          ? ''
          : `; for a Service, check it has ready endpoints (\`kubectl get endpointslices${svc.namespace === undefined ? '' : ` -n ${svc.namespace}`} -l kubernetes.io/service-name=${svc.service}\`) and its targetPort`;
      return {
        summary: `${who} ${verb('refuses', 'refuse')} connections${resolvesPart(ctx, target)}: nothing listens on port ${port}`,
        fix: `start the origin process (\`systemctl status nginx\`, \`ss -ltn 'sport = :${port}'\` on the origin) or fix ${field(ctx, 'port')}${endpoints}`,
      };
    }
    case 'connection_timeout':
      return {
        summary: `${who} ${verb('drops', 'drop')} connections: no answer to the connection attempt within ${ms(ctx.plan.connectTimeoutMs)}`,
        fix: `a firewall, security group or NetworkPolicy most likely drops traffic to port ${port} silently: allow egress from the sidecar's pods to ${list(addrs)}; an origin whose accept queue is full (overloaded) looks the same, so check its load too`,
      };
    case 'destination_ip_unroutable':
      return {
        summary: `there is no route to ${who} (${ctx.step.code})`,
        fix: `check the address is right (a stale DNS record or spec.upstream.addresses), the routes and gateways on the way (\`ip route get ${ctx.step.address?.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')}\`), and firewalls that reject with ICMP host-unreachable`,
      };
    case 'destination_ip_prohibited':
      return {
        summary: `connections to ${who} are administratively prohibited (${ctx.step.code})`,
        fix: `a firewall or a \`prohibit\` route rejects them: allow egress to ${list(addrs)} (firewall, security group, NetworkPolicy)`,
      };
    case 'connection_terminated':
      return {
        summary: `${who} ${verb('accepts', 'accept')} the connection, then ${verb('resets', 'reset')} it at once`,
        fix: "check the origin's logs for crashes and its connection limits (maximum connections, per-client limits); a middlebox resetting traffic it does not like does the same",
      };
    default:
      return undefined;
  }
}

const ALERTS: Readonly<Record<number, [name: string, fix: string]>> = {
  40: [
    'handshake_failure',
    'no cipher suite in common, or the origin requires a client certificate, which the sidecar does not send',
  ],
  42: [
    'bad_certificate',
    'the origin rejects the (absent) client certificate: the sidecar does not send one',
  ],
  48: [
    'unknown_ca',
    'the origin expects a client certificate from a CA it knows; the sidecar does not send one',
  ],
  70: [
    'protocol_version',
    'no TLS version in common: the sidecar offers TLS 1.2 and 1.3; enable one of them on the origin',
  ],
  112: [
    'unrecognized_name',
    'the origin does not serve the name sent in SNI: set the server name to one it serves',
  ],
  116: ['certificate_required', 'the origin requires a client certificate, which the sidecar does not send'],
};

/** The names a certificate holds, as people write them. */
const namesOf = (leaf: { subjectAltNames: readonly string[] } | undefined): string[] =>
  leaf?.subjectAltNames.map((n) => n.replace(/^(DNS|IP Address):/, '')) ?? [];

/** A chain problem and a name mismatch at once: OpenSSL reports the first only; both need fixing. */
function certificateExplained(ctx: FailureContext): Explained {
  const base = chainExplained(ctx);
  const tls = ctx.step.tls;
  if (tls === undefined || tls.nameMatches || ctx.step.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return base;
  return {
    summary: `${base.summary}; it is not valid for ${tls.nameChecked} either (it holds ${list(namesOf(tls.chain[0])) || 'no name'})`,
    fix: `${base.fix}; give the new one ${tls.nameChecked} among its names, or set ${field(ctx, 'serverName')} to a name it holds`,
  };
}

function chainExplained(ctx: FailureContext): Explained {
  const s = ctx.step;
  const leaf = s.tls?.chain[0];
  const where = s.address ?? targetOf(ctx).host;
  const trustFix = `set ${field(ctx, 'caBundle')} to the CA that issued it, or, for a public CA, make the origin send its intermediate certificates`;
  switch (s.code) {
    case 'CERT_HAS_EXPIRED':
      return {
        summary: `the certificate of ${where} expired ${leaf === undefined ? '' : `${daysAgo(-leaf.daysLeft)} `}(notAfter ${leaf?.notAfter ?? '?'})`,
        fix: `renew the certificate on the origin${leaf === undefined ? '' : ` (${leaf.subject})`}; until then nothing that verifies certificates can connect`,
      };
    case 'CERT_NOT_YET_VALID':
      return {
        summary: `the certificate of ${where} is not valid before ${leaf?.notBefore ?? '?'}`,
        fix: "check the clocks (the origin's, and this machine's) or reissue the certificate with a current notBefore",
      };
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'HOSTNAME_MISMATCH': {
      const names = namesOf(leaf);
      return {
        summary: `the certificate of ${where} is for ${names.length > 0 ? list(names) : (leaf?.subject ?? 'another name')}, not ${s.tls?.nameChecked ?? '?'}`,
        fix: `reissue it with ${s.tls?.nameChecked ?? 'the name'} among its subject alternative names, or set ${field(ctx, 'serverName')} to a name it holds (it is the SNI sent and the name checked)`,
      };
    }
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return {
        summary: `${where} presents a self-signed certificate (${leaf?.subject ?? '?'})`,
        fix: `trust it explicitly with ${field(ctx, 'caBundle')}, or install a certificate from a CA the sidecar trusts`,
      };
    default:
      return {
        summary: `the certificate of ${where}${leaf === undefined ? '' : ` (issued by ${leaf.issuer})`} does not chain to ${s.tls?.trust ?? 'a trusted CA'} (${s.code})`,
        fix: trustFix,
      };
  }
}

function tlsExplained(ctx: FailureContext, cause: Cause): Explained | undefined {
  const s = ctx.step;
  const where = s.address ?? targetOf(ctx).host;
  if (cause === 'tls_certificate_error') return certificateExplained(ctx);
  if (cause === 'tls_alert_received') {
    const [name, fix] = ALERTS[s.alertId ?? -1] ?? ['alert', CAUSES.tls_alert_received.hint];
    return { summary: `${where} aborted the TLS handshake with alert ${s.alertId ?? '?'} (${name})`, fix };
  }
  if (
    cause === 'tls_protocol_error' &&
    /WRONG_VERSION_NUMBER|packet length too long|wrong version/i.test(`${s.code} ${s.detail}`)
  ) {
    return {
      summary: `${where} does not speak TLS: it answered the handshake with plain data (most likely plain HTTP)`,
      fix: `${ctx.plan.origin === null ? 'use http://' : `set ${field(ctx, 'tls')}: false`}, or point ${field(ctx, 'port')} at the origin's TLS port`,
    };
  }
  if (cause === 'connection_timeout') {
    return {
      summary: `${where} accepts TCP but does not finish the TLS handshake within ${ms(ctx.plan.connectTimeoutMs)}`,
      fix: `the port may not speak TLS (a plain server waits for a request), or the origin is overloaded: check with \`openssl s_client -connect ${where} -servername ${s.tls?.serverName ?? targetOf(ctx).host}\``,
    };
  }
  if (cause === 'connection_terminated') {
    return {
      summary: `${where} closed the connection during the TLS handshake`,
      fix: `check that the origin expects TLS on this port and serves the name sent in SNI, and its TLS settings and logs`,
    };
  }
  return undefined;
}

function httpExplained(ctx: FailureContext, cause: Cause): Explained | undefined {
  const s = ctx.step;
  const where = s.address ?? targetOf(ctx).host;
  const req = `GET ${ctx.plan.path}, Host ${ctx.plan.hostHeader}`;
  const raise = ctx.plan.origin === null ? '--response-timeout' : '`spec.timeouts.response`';
  switch (cause) {
    case 'http_response_timeout':
      return s.failedIn === 'response'
        ? {
            summary: `${where} answered ${s.http?.status ?? ''} then sent nothing of the body for ${ms(ctx.plan.responseTimeoutMs)}`,
            fix: 'the application stalls while streaming: check its logs; long polls and streams need a longer response timeout',
          }
        : {
            summary: `${where} accepted the connection and the request (${req}) but sent no response within ${ms(ctx.plan.responseTimeoutMs)}`,
            fix: `the application hangs or is slower than that: check its logs and slow requests, or raise ${raise}`,
          };
    case 'connection_terminated':
      return {
        summary: `${where} closed the connection after the request (${req}) without answering`,
        fix: "check the origin's logs for crashes, and its request size and header limits (a TLS 1.3 origin that requires a client certificate closes like this too)",
      };
    case 'http_protocol_error':
      return {
        summary: `${where} answered the request with something that is not HTTP/1.1 (${s.code})`,
        fix: `the port serves another protocol (TLS, SSH, a database): check ${field(ctx, 'port')}${targetOf(ctx).tls === undefined ? ` and whether the origin expects TLS (${field(ctx, 'tls')})` : ''}`,
      };
    case 'http_response_incomplete':
      return {
        summary: `${where} answered ${s.http?.status ?? ''} then closed the connection in the middle of the body`,
        fix: "check the origin's logs for crashes, and its response size and time limits",
      };
    default:
      return undefined;
  }
}

/** The summary and fix for a failure: specific where the evidence allows, else the cause's own hint. */
export function explainFailure(ctx: FailureContext): Explained {
  const cause = ctx.step.cause ?? 'proxy_internal_error';
  const phase = ctx.step.phase;
  const specific =
    phase === 'dns'
      ? dnsExplained(ctx)
      : phase === 'tcp'
        ? connectExplained(ctx, cause as Cause)
        : phase === 'tls'
          ? (tlsExplained(ctx, cause as Cause) ?? connectExplained(ctx, cause as Cause))
          : ctx.step.failedIn === 'connect' || ctx.step.failedIn === 'tls'
            ? (tlsExplained(ctx, cause as Cause) ?? connectExplained(ctx, cause as Cause))
            : httpExplained(ctx, cause as Cause);
  if (specific !== undefined) return specific;
  const info = isCause(cause) ? CAUSES[cause] : CAUSES.proxy_internal_error;
  return { summary: `${ctx.step.address ?? targetOf(ctx).host}: ${info.summary}`, fix: info.hint };
}

/** An evidence line: the step as the checklist showed it. */
export function evidenceLine(step: Step): string {
  const where = step.address ?? (step.phase === 'dns' ? 'sidecar resolver' : '');
  return `${step.phase} ${where}: ${step.detail} (${Math.round(step.elapsedMs)} ms)`;
}
