// k6 load test of the REST API: POST /v1/generations, then wait for the PNG (GET …/image?wait=…).
//   k6 run -e BASE=http://localhost:8080 -e RATE=2 -e DURATION=60s load-tests/rest-generate.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const BASE = __ENV.BASE || 'http://localhost:8080';
const endToEnd = new Trend('sdserve_end_to_end', true);
const refused = new Counter('sdserve_refused');

export const options = {
  scenarios: {
    open_loop: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 2),
      timeUnit: '1s',
      duration: __ENV.DURATION || '60s',
      preAllocatedVUs: 16,
      maxVUs: 256,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.05'],
  },
};

export default () => {
  const start = Date.now();
  const body = JSON.stringify({ prompt: `k6 rest ${__VU}-${__ITER}`, steps: 8, width: 64, height: 64 });
  const res = http.post(`${BASE}/v1/generations`, body, { headers: { 'content-type': 'application/json' } });
  if (res.status === 429 || res.status === 503) {
    refused.add(1, { status: String(res.status) });
    return;
  }
  check(res, { 'accepted (202)': (r) => r.status === 202 });
  if (res.status !== 202) return;
  const id = res.json('id');
  const img = http.get(`${BASE}/v1/generations/${id}/image?wait=120`, { timeout: '130s' });
  if (check(img, { 'PNG (200)': (r) => r.status === 200 && r.headers['Content-Type'] === 'image/png' })) {
    endToEnd.add(Date.now() - start);
  }
};
