// k6 load test of the gRPC streaming API (Generate). Needs k6 >= 0.49 (k6/net/grpc streams).
//   k6 run -e TARGET=localhost:9000 -e RATE=4 -e DURATION=60s load-tests/grpc-generate.js
// Open loop: constant arrival rate (k6 spaces arrivals evenly; the JVM `loadgen` command does Poisson arrivals).
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const client = new grpc.Client();
client.load(['../src/main/proto'], 'sdserve.proto');

const TARGET = __ENV.TARGET || 'localhost:9000';
const firstPreview = new Trend('sdserve_time_to_first_preview', true);
const endToEnd = new Trend('sdserve_end_to_end', true);
const completed = new Counter('sdserve_completed');
const refused = new Counter('sdserve_refused');
const failed = new Counter('sdserve_failed');

export const options = {
  scenarios: {
    open_loop: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 4),
      timeUnit: '1s',
      duration: __ENV.DURATION || '60s',
      preAllocatedVUs: 16,
      maxVUs: 256,
    },
  },
  thresholds: {
    sdserve_end_to_end: ['p(99)<30000'],
  },
};

const SHAPES = [
  { slo_class: 'SLO_CLASS_INTERACTIVE', width: 64, height: 64, steps: 4, weight: 5 },
  { slo_class: 'SLO_CLASS_STANDARD', width: 64, height: 64, steps: 8, weight: 3 },
  { slo_class: 'SLO_CLASS_BATCH', width: 64, height: 64, steps: 12, images: 2, weight: 2 },
];

function pick() {
  const total = SHAPES.reduce((a, s) => a + s.weight, 0);
  let x = Math.random() * total;
  for (const s of SHAPES) {
    x -= s.weight;
    if (x < 0) return s;
  }
  return SHAPES[0];
}

export default () => {
  if (__ITER === 0) {
    client.connect(TARGET, { plaintext: true });
  }
  const s = pick();
  const req = {
    prompt: `k6 ${__VU}-${__ITER}`,
    width: s.width, height: s.height, steps: s.steps, images: s.images || 1,
    slo_class: s.slo_class,
    preview: { every_steps: 1, max_edge: 64 },
  };
  const start = Date.now();
  let accepted = false;
  let gotPreview = false;
  const stream = new grpc.Stream(client, 'sdserve.v1.Generation/Generate');
  stream.on('data', (ev) => {
    accepted = true;
    if (ev.step && ev.step.preview && ev.step.preview.length > 0 && !gotPreview) {
      gotPreview = true;
      firstPreview.add(Date.now() - start);
    }
    if (ev.completed) {
      endToEnd.add(Date.now() - start);
      completed.add(1);
      check(ev.completed, { 'has images': (c) => c.images && c.images.length === req.images });
    }
  });
  stream.on('error', (err) => {
    (accepted ? failed : refused).add(1, { code: String(err.code) });
  });
  stream.write(req);
  stream.end();
};
