// The failure vocabulary: RFC 9209 Proxy-Status error types, used as-is in
// headers, logs, metrics, OriginReports and Origin status. Each carries what an
// operator needs to act: what it means and what to check.

/** Where the user documentation lives; each cause has its own row (and anchor) in causes.md. */
export const DOCS_URL = 'https://github.com/originguard/originguard/blob/main/docs';
export const CAUSES_DOC = `${DOCS_URL}/causes.md`;
/** The row of `cause` in docs/causes.md. */
export const causeDocUrl = (cause: string): string => `${CAUSES_DOC}#${cause}`;

export const PHASES = ['dns', 'connect', 'tls', 'request', 'response'] as const;
export type Phase = (typeof PHASES)[number];

export interface CauseInfo {
  /** One-line meaning, for the error page and the docs. */
  readonly summary: string;
  /** What to check, written for whoever runs the origin. */
  readonly hint: string;
  /** Answer under the Edgio status profile; the Uniform profile uses 531 or 536 by phase. */
  readonly edgioStatus: number;
}

export const CAUSES = {
  dns_error: {
    summary: 'The origin hostname could not be resolved.',
    hint: 'Check that the origin hostname is spelled right and has an A/AAAA record: run `dig <host>` from the pod; the rcode says whether the name does not exist (NXDOMAIN), has no address (NOERROR, no data) or the resolver failed (SERVFAIL, REFUSED).',
    edgioStatus: 537,
  },
  dns_timeout: {
    summary: 'The DNS resolver did not answer in time.',
    hint: 'The resolver did not answer: check that the cluster DNS (CoreDNS) is running and reachable from the pod, and that no NetworkPolicy blocks UDP/TCP 53.',
    edgioStatus: 537,
  },
  connection_refused: {
    summary: 'The origin refused the connection: nothing listens on that port.',
    hint: 'Nothing accepts connections on the origin port: check that the origin process (nginx, the app) is running and listening on that port and address (`ss -ltn`), or that the Service has ready endpoints.',
    edgioStatus: 531,
  },
  connection_timeout: {
    summary: 'The origin did not answer the connection attempt in time.',
    hint: "Connection attempts get no answer: a firewall, security group or NetworkPolicy is most likely dropping the sidecar's traffic, or the origin is overloaded (full accept queue). Allow the pod's egress to the origin and check the origin's load.",
    edgioStatus: 531,
  },
  destination_ip_unroutable: {
    summary: 'There is no network route to the origin address.',
    hint: 'The network reports no route to the origin address (or a firewall answers ICMP host-unreachable): check the address is right, the routes, VPC peering or gateway between the pod and the origin, and firewalls that reject rather than drop.',
    edgioStatus: 531,
  },
  destination_ip_prohibited: {
    summary: 'A firewall on the path rejected the connection.',
    hint: "A firewall on the path actively rejects the connection (ICMP administratively prohibited): allow the pod's egress to the origin in the firewall, security group or NetworkPolicy.",
    edgioStatus: 531,
  },
  destination_unavailable: {
    summary: 'The origin is marked failing after repeated connection failures; it is being probed.',
    hint: 'Recent connection attempts all failed, so requests are failed fast while one trial request at a time probes the origin; fix the underlying cause shown in the last failure.',
    edgioStatus: 531,
  },
  connection_terminated: {
    summary: 'The origin closed or reset the connection.',
    hint: "The origin closed or reset the connection: check the origin's logs for crashes or restarts, and its connection limits and idle timeouts.",
    edgioStatus: 531,
  },
  tls_certificate_error: {
    summary: "The origin's TLS certificate was not accepted.",
    hint: "The origin's certificate was rejected (expired, not yet valid, wrong name or unknown issuer): renew it or fix its subject alternative names, or set upstream.tls.serverName / caBundle to what the origin presents.",
    edgioStatus: 533,
  },
  tls_protocol_error: {
    summary: 'The TLS handshake with the origin failed.',
    hint: "The TLS handshake failed: check the origin really speaks TLS on that port (plain HTTP answers make this error), and that its TLS versions and ciphers overlap with the sidecar's.",
    edgioStatus: 533,
  },
  tls_alert_received: {
    summary: 'The origin aborted the TLS handshake with an alert.',
    hint: 'The origin refused the handshake with a TLS alert (see alert-id): check its protocol versions, ciphers and whether it requires a client certificate.',
    edgioStatus: 533,
  },
  http_response_timeout: {
    summary: 'The origin accepted the request but did not answer in time.',
    hint: "The origin accepted the connection but did not start answering within timeouts.response: check the origin's application logs and slow requests, or raise timeouts.response.",
    edgioStatus: 536,
  },
  http_response_incomplete: {
    summary: 'The origin closed the connection before sending a complete response.',
    hint: "The origin dropped the connection while the request was in flight: check the origin's logs for crashes, and its request size and time limits.",
    edgioStatus: 536,
  },
  http_protocol_error: {
    summary: 'The origin sent a response that is not valid HTTP/1.1.',
    hint: "The origin answered with bytes that are not valid HTTP/1.1 (a malformed status line or header, both Content-Length and Transfer-Encoding, a bare CR): check that the port serves HTTP (not TLS or another protocol) and the origin's response headers.",
    edgioStatus: 536,
  },
  http_response_header_section_size: {
    summary: "The origin's response headers are larger than the sidecar accepts.",
    hint: 'The origin sent more than 16 KiB of response headers (large cookies, Content-Security-Policy or debug headers): trim them at the origin.',
    edgioStatus: 536,
  },
  http_response_transfer_coding: {
    summary: 'The origin used a transfer coding the sidecar does not decode.',
    hint: 'The origin sent a Transfer-Encoding other than chunked (gzip, deflate...): compress with Content-Encoding instead, which is forwarded as is.',
    edgioStatus: 536,
  },
  http_upgrade_failed: {
    summary: 'The origin answered the protocol upgrade with something the client did not ask for.',
    hint: "The origin answered 101 Switching Protocols without switching to a protocol the client offered (see the Upgrade headers): check the origin's WebSocket or upgrade handling.",
    edgioStatus: 536,
  },
  proxy_loop_detected: {
    summary: 'The request has already passed through this proxy: it loops.',
    hint: 'The request came back to the sidecar (CDN-Loop): check that upstream.host does not point back at the edge Service or its own pods.',
    edgioStatus: 538,
  },
  proxy_internal_error: {
    summary: 'The proxy failed to handle the request.',
    hint: 'An unexpected error inside the sidecar: see its logs for the stack and report it.',
    edgioStatus: 530,
  },
} as const satisfies Record<string, CauseInfo>;

export type Cause = keyof typeof CAUSES;
export const CAUSE_NAMES = Object.keys(CAUSES) as Cause[];

export function isCause(value: string): value is Cause {
  return Object.hasOwn(CAUSES, value);
}
