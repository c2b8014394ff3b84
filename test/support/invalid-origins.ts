// One table of invalid Origins, each a small change to examples/shop.yaml, used
// by the unit tests (validateOrigin) and the cluster tests (the API server with
// the generated CRD). Both must refuse each with a message that names the field
// and the fix; a rule added to only one of them shows up here.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

// biome-ignore lint/suspicious/noExplicitAny: mutations reach into an untyped manifest on purpose
export type Manifest = Record<string, any>;

export interface InvalidOrigin {
  /** What is wrong, as a test name reads it. */
  name: string;
  /** Turns the valid example into this invalid Origin. */
  mutate: (origin: Manifest) => void;
  /** Fragments kubectl's error (from the API server) must contain. */
  apiServer: readonly string[];
  /** The message validateOrigin gives, exactly. */
  validate: string;
}

export const EXAMPLE_PATH = new URL('../../examples/shop.yaml', import.meta.url);

/** The Origin of examples/shop.yaml, parsed afresh. */
export function exampleOrigin(): Manifest {
  return parse(readFileSync(EXAMPLE_PATH, 'utf8')) as Manifest;
}

/** The example with `entry`'s mutation applied. */
export function invalidOrigin(entry: InvalidOrigin): Manifest {
  const origin = exampleOrigin();
  entry.mutate(origin);
  return origin;
}

export const INVALID_ORIGINS: readonly InvalidOrigin[] = [
  {
    name: 'an upstream port above 65535',
    mutate: (o) => {
      o.spec.upstream.port = 70000;
    },
    apiServer: ['spec.upstream.port', 'should be less than or equal to 65535'],
    validate: 'spec.upstream.port: must be 1-65535, got 70000',
  },
  {
    name: 'a listen port of 0',
    mutate: (o) => {
      o.spec.listen.port = 0;
    },
    apiServer: ['spec.listen.port', 'should be greater than or equal to 1'],
    validate: 'spec.listen.port: must be 1-65535, got 0',
  },
  {
    name: 'a connect timeout that is not a duration',
    mutate: (o) => {
      o.spec.timeouts.connect = '5 seconds';
    },
    apiServer: ['spec.timeouts.connect', 'must be a duration such as 250ms, 5s or 1m30s'],
    validate: 'spec.timeouts.connect: must be a duration such as 250ms, 5s or 1m30s, got "5 seconds"',
  },
  {
    // The API server prunes unknown fields silently unless the client asks for
    // strict field validation; kubectl does by default (--validate=strict).
    name: 'an unknown field (a misspelt port)',
    mutate: (o) => {
      o.spec.upstream.portt = 8080;
    },
    apiServer: ['unknown field "spec.upstream.portt"'],
    validate: 'spec.upstream.portt: unknown field',
  },
  {
    name: 'an upstream without host',
    mutate: (o) => {
      delete o.spec.upstream.host;
    },
    apiServer: ['spec.upstream.host', 'Required value'],
    validate: 'spec.upstream.host: required',
  },
  {
    name: 'both caBundle and caFile',
    mutate: (o) => {
      o.spec.upstream.tls = { enabled: true, caBundle: 'PEM', caFile: '/etc/origin-ca/ca.crt' };
    },
    apiServer: ['spec.upstream.tls', 'set caBundle or caFile, not both'],
    validate: 'spec.upstream.tls: set caBundle or caFile, not both',
  },
  {
    name: 'TLS settings without tls.enabled',
    mutate: (o) => {
      o.spec.upstream.tls = { serverName: 'shop.example.re' };
    },
    apiServer: ['spec.upstream.tls', 'serverName, caBundle and caFile need enabled: true'],
    validate: 'spec.upstream.tls: serverName, caBundle and caFile need enabled: true',
  },
  {
    name: 'the same host twice',
    mutate: (o) => {
      o.spec.hosts = ['www.example.re', 'shop.example.re', 'www.example.re'];
    },
    apiServer: ['spec.hosts', 'hosts must be unique: remove the repeated host'],
    validate: 'spec.hosts: hosts must be unique: remove the repeated host',
  },
  {
    name: 'an empty selector',
    mutate: (o) => {
      o.spec.selector = {};
    },
    apiServer: ['spec.selector', 'must set matchLabels or matchExpressions'],
    validate:
      'spec.selector: must set matchLabels or matchExpressions: an empty selector would select every pod in the namespace',
  },
  {
    name: 'an unknown statusProfile',
    mutate: (o) => {
      o.spec.errorResponse = { statusProfile: 'Akamai' };
    },
    apiServer: ['spec.errorResponse.statusProfile', 'Unsupported value: "Akamai"', '"Uniform"', '"Edgio"'],
    validate: 'spec.errorResponse.statusProfile: must be one of Uniform, Edgio, got "Akamai"',
  },
  {
    name: 'a connect timeout above 5m',
    mutate: (o) => {
      o.spec.timeouts.connect = '10m';
    },
    apiServer: ['spec.timeouts.connect', 'must be between 1ms and 5m'],
    validate: 'spec.timeouts.connect: must be between 1ms and 5m',
  },
  {
    name: 'a baseEjectionTime above maxEjectionTime',
    mutate: (o) => {
      o.spec.outlierDetection = { baseEjectionTime: '1m', maxEjectionTime: '30s' };
    },
    apiServer: ['spec.outlierDetection.baseEjectionTime', 'baseEjectionTime must not exceed maxEjectionTime'],
    validate: 'spec.outlierDetection.baseEjectionTime: baseEjectionTime must not exceed maxEjectionTime',
  },
  {
    name: 'a trusted proxy that is not an address or CIDR range',
    mutate: (o) => {
      o.spec.forwardedHeaders = { trustedProxies: ['10.0.0.0/8', '10.0.0.0/33'] };
    },
    apiServer: [
      'spec.forwardedHeaders.trustedProxies[1]',
      'must be an IP address or a CIDR range such as 203.0.113.0/24 or 2001:db8::/32',
    ],
    validate:
      'spec.forwardedHeaders.trustedProxies[1]: must be an IP address or a CIDR range such as 203.0.113.0/24 or 2001:db8::/32, got "10.0.0.0/33"',
  },
  {
    name: 'both trustedProxies and trustedHops',
    mutate: (o) => {
      o.spec.forwardedHeaders = { trustedProxies: ['10.0.0.0/8'], trustedHops: 1 };
    },
    apiServer: ['spec.forwardedHeaders', 'set trustedProxies or trustedHops, not both'],
    validate: 'spec.forwardedHeaders: set trustedProxies or trustedHops, not both',
  },
  {
    name: 'a body buffer above 8 MiB',
    mutate: (o) => {
      o.spec.request = { bodyBufferBytes: 16777216 };
    },
    apiServer: ['spec.request.bodyBufferBytes', 'should be less than or equal to 8388608'],
    validate: 'spec.request.bodyBufferBytes: must be 0-8388608, got 16777216',
  },
];
