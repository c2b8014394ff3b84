// What an Origin declares about the traffic it is sent: how client requests are
// treated before they are forwarded (body buffering, header names, TRACE), and
// whose forwarding headers (X-Forwarded-*, Forwarded) are believed.
import { type Static, Type } from '@sinclair/typebox';
import { withRules } from './rules.ts';

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${OCTET}(\\.${OCTET}){3}`;
const H = '[0-9a-fA-F]{1,4}';
const IPV6 = [
  `(${H}:){7}${H}`,
  `(${H}:){1,7}:`,
  `(${H}:){1,6}:${H}`,
  `(${H}:){1,5}(:${H}){1,2}`,
  `(${H}:){1,4}(:${H}){1,3}`,
  `(${H}:){1,3}(:${H}){1,4}`,
  `(${H}:){1,2}(:${H}){1,5}`,
  `${H}:(:${H}){1,6}`,
  `:((:${H}){1,7}|:)`,
  `::(ffff(:0{1,4})?:)?${IPV4}`,
  `(${H}:){1,4}:${IPV4}`,
].join('|');

/** An IPv4 or IPv6 address, optionally with a prefix length (RE2 and ECMAScript alike). */
export const CIDR_PATTERN = `^(${IPV4}(/(3[0-2]|[12]?[0-9]))?|(${IPV6})(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$`;

export const MAX_BODY_BUFFER_BYTES = 8 * 1024 * 1024;

export const RequestPolicy = Type.Object(
  {
    bodyBufferBytes: Type.Integer({
      description:
        'Request bodies up to this size are received completely before the request is sent to the origin, so a slow client cannot hold one of its connections (nginx does the same). Larger bodies, and any body once the sidecar-wide budget (--request-buffer-memory) is in use, are streamed. 0 streams every body.',
      minimum: 0,
      maximum: MAX_BODY_BUFFER_BYTES,
      default: 65536,
    }),
    underscoresInHeaders: Type.Union([Type.Literal('Drop'), Type.Literal('Allow'), Type.Literal('Reject')], {
      description:
        'Request headers whose name contains an underscore (X_Forwarded_For): Drop removes them (as nginx does), Allow forwards them, Reject answers 400. CGI, WSGI and Rack backends read X_Forwarded_For and X-Forwarded-For as the same variable, so a client could smuggle one past the proxy.',
      default: 'Drop',
    }),
    trace: Type.Union([Type.Literal('Refuse'), Type.Literal('Forward')], {
      description:
        'TRACE requests: Refuse answers 405 without involving the origin; Forward sends them on (an origin that echoes TRACE reflects cookies and credentials to scripts).',
      default: 'Refuse',
    }),
  },
  {
    additionalProperties: false,
    description: 'How client requests are treated before they are forwarded.',
    default: {},
  },
);

const cidr = withRules(
  Type.String({
    description: 'An IP address or CIDR range, such as 203.0.113.0/24 or 2001:db8::/32.',
    pattern: CIDR_PATTERN,
    maxLength: 64,
  }),
  [
    {
      rule: `self.matches(r'${CIDR_PATTERN}')`,
      message: 'must be an IP address or a CIDR range such as 203.0.113.0/24 or 2001:db8::/32',
      check: (self: string) => new RegExp(CIDR_PATTERN).test(self),
    },
  ],
);

export const ForwardedHeaders = Type.Object(
  {
    trustedProxies: Type.Optional(
      Type.Array(cidr, {
        description:
          'Addresses of the proxies in front (a CDN, a load balancer) allowed to tell the origin where a request came from, like nginx set_real_ip_from. From a peer in these ranges, X-Forwarded-*, Forwarded and X-Real-IP are kept and appended to, and the client is the rightmost X-Forwarded-For address outside them.',
        maxItems: 64,
      }),
    ),
    trustedHops: Type.Integer({
      description:
        'Number of proxies in front whose forwarding headers are believed whatever their address, like Envoy xff_num_trusted_hops; the client is that many addresses from the right of X-Forwarded-For. Use it only when nothing else can reach the sidecar. 0: trust no one.',
      minimum: 0,
      maximum: 10,
      default: 0,
    }),
  },
  {
    additionalProperties: false,
    description:
      "Whose X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Forwarded, X-Real-IP and similar headers are believed. Anyone else's are replaced with what the sidecar saw (its peer's address, the scheme, the Host). Default: no one's.",
    default: {},
  },
);
withRules(ForwardedHeaders, [
  {
    rule: '!(has(self.trustedProxies) && size(self.trustedProxies) > 0 && has(self.trustedHops) && self.trustedHops > 0)',
    message: 'set trustedProxies or trustedHops, not both',
    check: (f: { trustedProxies?: string[]; trustedHops?: number }) =>
      !((f.trustedProxies ?? []).length > 0 && (f.trustedHops ?? 0) > 0),
  },
]);

export type RequestPolicy = Static<typeof RequestPolicy>;
export type ForwardedHeaders = Static<typeof ForwardedHeaders>;
