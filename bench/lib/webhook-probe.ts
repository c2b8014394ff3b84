// A client of the operator's webhook, run as its own process during the
// benchmark's burst so its timing does not share the bench's event loop: one
// kept-alive TLS connection, one AdmissionReview every interval (a pod an
// Origin selects, so the answer carries the injection patch), each timed from
// the write to the full answer. This includes what the operator's own histogram
// cannot see: time the request waits in the operator before its handler runs
// (event-loop lag, garbage collection). Runs until stdin closes, then prints the
// times (ms) as JSON.
//
//   node bench/lib/webhook-probe.ts <port> <interval ms> <namespace> <origin label value>
import { Client } from 'undici';

const [port, intervalMs, namespace, selected] = process.argv.slice(2);
const client = new Client(`https://127.0.0.1:${port}`, {
  connect: { rejectUnauthorized: false },
  pipelining: 1,
});
const review = (i: number) =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `probe-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: 'probe-', namespace, labels: { edge: selected, app: 'probe' } },
        spec: { containers: [{ name: 'app', image: 'registry.example.test/app:1' }] },
      },
    },
  });

const times: number[] = [];
let running = true;
process.stdin.on('end', () => {
  running = false;
});
process.stdin.resume();
for (let i = 0; running; i++) {
  const t0 = performance.now();
  const res = await client.request({
    path: '/mutate-pods',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: review(i),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes('"patch"')) {
    process.stderr.write(`webhook probe: unexpected answer ${res.statusCode}: ${text.slice(0, 200)}\n`);
    process.exit(1);
  }
  const ms = performance.now() - t0;
  times.push(ms);
  await new Promise((r) => setTimeout(r, Math.max(0, Number(intervalMs) - ms)));
}
await client.close();
process.stdout.write(JSON.stringify(times));
