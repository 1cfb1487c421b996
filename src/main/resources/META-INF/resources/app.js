'use strict';
// sd-serve web page: talks to the REST API (/v1/…) and follows a job through its Server-Sent Events.

const $ = (id) => document.getElementById(id);
const HISTORY_KEY = 'sdserve.history.v1';
const HISTORY_MAX = 40;

/** Page state; exposed as window.sdServe so tests (and curious users) can look in. */
const state = {
  job: null,          // id of the job in flight
  events: null,       // its event stream ({done, close}, see readEvents)
  frames: 0,          // preview frames shown for the current job
  totalFrames: 0,     // preview frames shown since the page loaded
  startedAt: 0,       // performance.now() at the first step of the job
  firstStep: 0,       // index of the first step seen (a late joiner may start mid-way)
  finished: false,
  completed: 0,       // jobs completed since the page loaded
  last: null,         // the last shown result {id, params, infotext, seed}
};
window.sdServe = state;
const samplerNames = {}; // sampler id → A1111 display name
const modelInfo = {}; // model name → its listing (description, recommended settings)

// ------------------------------------------------------------------ API

// The API key (servers with auth on) lives in this browser's localStorage and travels only as the x-api-key
// header: never in a URL, so it stays out of access logs, history and Referer headers. That is also why the event
// stream is read with fetch() and a streaming reader (readEvents) rather than EventSource, which cannot send headers.
const KEY_STORE = 'sdserve.apiKey';

function storedKey() {
  try { return localStorage.getItem(KEY_STORE) || ''; } catch (e) { return ''; }
}

function apiKey() {
  return $('api-key').value.trim();
}

function authHeaders() {
  const key = apiKey();
  return key ? { 'x-api-key': key } : {};
}

/** fetch() with the API key; a 401 or 403 points at the key field. */
async function authFetch(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (res.status === 401 || res.status === 403) $('api-key').classList.add('invalid');
  return res;
}

async function api(path, options = {}) {
  const res = await authFetch(path, {
    ...options,
    headers: { 'accept': 'application/json', ...(options.body ? { 'content-type': 'application/json' } : {}) },
  });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: { message: text } }; }
  if (!res.ok) {
    const message = (body && body.error && body.error.message) || `${res.status} ${res.statusText}`;
    const err = new Error(res.status === 401
      ? `${message} — enter the server's API key in the field at the top right` : message);
    err.status = res.status;
    err.field = body && body.error && body.error.field;
    err.retryAfter = res.headers.get('retry-after');
    throw err;
  }
  return body;
}

// ------------------------------------------------------------------ form setup

function option(value, text, selected) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  if (selected) o.selected = true;
  return o;
}

async function loadCatalog() {
  const orEmpty = (empty) => (err) => { if (err.status === 401) throw err; return empty; };
  const [models, samplers, loras] = await Promise.all([
    api('/v1/models').catch(orEmpty({ models: [] })),
    api('/v1/samplers').catch(orEmpty({ samplers: [] })),
    api('/v1/loras').catch(orEmpty({ loras: [] })),
  ]);
  const modelSel = $('model');
  modelSel.replaceChildren(option('', 'server default'));
  for (const m of models.models || []) {
    const isDefault = m.is_default ?? m.isDefault ?? m.default ?? false;
    const hash = m.short_hash ?? m.shortHash ?? '';
    const o = option(m.name, m.name + (hash ? ` [${hash}]` : ''), isDefault);
    o.title = (isDefault ? 'the server default. ' : '') + (m.description || '');
    modelInfo[m.name] = m;
    modelSel.append(o);
  }
  const samplerSel = $('sampler');
  samplerSel.replaceChildren(option('', 'server default'));
  for (const s of samplers.samplers || []) {
    const name = s.display_name ?? s.displayName ?? s.id;
    samplerNames[s.id] = name;
    samplerSel.append(option(s.id, name));
  }
  applyRecommended();
  const loraSel = $('lora-select');
  const list = loras.loras || [];
  loraSel.replaceChildren(...(list.length ? list.map((l) => option(l.name, l.name)) : [option('', '(none available)')]));
  $('lora-add').disabled = list.length === 0;
  $('server-status').textContent =
    `${(models.models || []).length} models · ${(samplers.samplers || []).length} samplers · ${list.length} LoRAs`;
}

// A model's recommended settings (from its listing) become the form's values when it is chosen; the user can
// still change them, and whatever the form sends is explicit.
function applyRecommended() {
  const chosen = $('model').value
    || Object.values(modelInfo).find((m) => m.is_default ?? m.isDefault ?? false)?.name;
  const m = modelInfo[chosen] || {};
  const rec = m.recommended || {};
  if (rec.sampler && [...$('sampler').options].some((o) => o.value === rec.sampler)) $('sampler').value = rec.sampler;
  if (rec.steps) $('steps').value = rec.steps;
  if (rec.guidance_scale !== undefined) $('guidance_scale').value = rec.guidance_scale;
  for (const id of ['steps', 'guidance_scale']) $(id).dispatchEvent(new Event('input'));
  $('model-hint').textContent = m.description || '';
}

function addLora(name, weight = 1) {
  if (!name || [...document.querySelectorAll('#lora-list li')].some((li) => li.dataset.name === name)) return;
  const li = document.createElement('li');
  li.dataset.name = name;
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = name;
  label.title = name;
  const range = document.createElement('input');
  Object.assign(range, { type: 'range', min: -1, max: 2, step: 0.05, value: weight });
  const out = document.createElement('output');
  out.textContent = Number(weight).toFixed(2);
  range.addEventListener('input', () => { out.textContent = Number(range.value).toFixed(2); });
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = '✕';
  remove.title = 'Remove';
  remove.addEventListener('click', () => li.remove());
  li.append(label, range, out, remove);
  $('lora-list').append(li);
}

function bindOutputs() {
  const pairs = [['steps', 'steps-out', (v) => v], ['guidance_scale', 'guidance-out', (v) => Number(v).toFixed(1)],
    ['strength', 'strength-out', (v) => Number(v).toFixed(2)], ['brush', 'brush-out', (v) => `${v} px`],
    ['mask_blur', 'mask-blur-out', (v) => v]];
  for (const [input, output, fmt] of pairs) {
    const update = () => { $(output).textContent = fmt($(input).value); };
    $(input).addEventListener('input', update);
    update();
  }
}

function formRequest() {
  const body = {
    prompt: $('prompt').value.trim(),
    negative_prompt: $('negative_prompt').value.trim(),
    steps: Number($('steps').value),
    guidance_scale: Number($('guidance_scale').value),
    preview: { every_steps: 1 },
  };
  if ($('model').value) body.model = $('model').value;
  if ($('sampler').value) body.sampler = $('sampler').value;
  if ($('width').value) body.width = Number($('width').value);
  if ($('height').value) body.height = Number($('height').value);
  const seed = $('seed').value.trim();
  if (seed !== '' && Number(seed) >= 0) body.seed = Number(seed);
  const loras = [...document.querySelectorAll('#lora-list li')].map((li) => ({
    name: li.dataset.name, weight: Number(li.querySelector('input').value),
  }));
  if (loras.length) body.loras = loras;
  Object.assign(body, imageRequest());
  return body;
}

// ------------------------------------------------------------------ img2img and inpainting

/** The init image (its file's bytes, base64) and whether a mask was painted. */
const initImage = { base64: null, painted: false, drawing: false, last: null };
state.initImage = initImage;

/** The image fields of a request: the file as sent, the painted mask as a PNG (white = repaint), the options. */
function imageRequest() {
  if (!initImage.base64) return {};
  const body = {
    init_image: initImage.base64,
    strength: Number($('strength').value),
    resize_mode: Number($('resize_mode').value),
  };
  if (initImage.painted) {
    body.mask_image = maskPng();
    body.mask_blur = Number($('mask_blur').value);
    body.inpainting_fill = Number($('inpainting_fill').value);
    body.inpainting_mask_invert = $('inpainting_mask_invert').checked;
  }
  return body;
}

/** The painted strokes as a black-and-white PNG of the image's size, base64. */
function maskPng() {
  const m = $('mask-canvas');
  const out = document.createElement('canvas');
  out.width = m.width;
  out.height = m.height;
  const ctx = out.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.filter = 'brightness(0) invert(1)'; // every painted pixel white, fully opaque strokes
  ctx.drawImage(m, 0, 0);
  return out.toDataURL('image/png').split(',')[1];
}

function loadInitImage(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = reader.result;
    const img = new Image();
    img.onload = () => {
      initImage.base64 = String(url).split(',')[1];
      const c = $('init-canvas');
      const m = $('mask-canvas');
      c.width = m.width = img.naturalWidth;
      c.height = m.height = img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0);
      clearMask();
      $('mask-editor').hidden = false;
      $('init-clear').disabled = false;
      $('img-panel').open = true;
      if (!$('width').value) $('width').placeholder = String(img.naturalWidth - img.naturalWidth % 8);
      if (!$('height').value) $('height').placeholder = String(img.naturalHeight - img.naturalHeight % 8);
    };
    img.onerror = () => showError(new Error('the browser cannot read this image'));
    img.src = url;
  };
  reader.readAsDataURL(file);
}

function clearInitImage() {
  initImage.base64 = null;
  clearMask();
  $('init-file').value = '';
  $('mask-editor').hidden = true;
  $('init-clear').disabled = true;
  $('width').placeholder = 'auto';
  $('height').placeholder = 'auto';
}

function clearMask() {
  const m = $('mask-canvas');
  m.getContext('2d').clearRect(0, 0, m.width, m.height);
  initImage.painted = false;
}

/** Pointer position in the image's pixels. */
function maskPoint(ev) {
  const m = $('mask-canvas');
  const r = m.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * m.width / r.width, y: (ev.clientY - r.top) * m.height / r.height };
}

function paint(ev) {
  const m = $('mask-canvas');
  const ctx = m.getContext('2d');
  const p = maskPoint(ev);
  const scale = m.width / m.getBoundingClientRect().width;
  ctx.strokeStyle = ctx.fillStyle = '#ff3355';
  ctx.lineWidth = Number($('brush').value) * scale;
  ctx.lineCap = ctx.lineJoin = 'round';
  ctx.beginPath();
  const from = initImage.last || p;
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(p.x, p.y);
  ctx.stroke();
  initImage.last = p;
  initImage.painted = true;
}

function bindMaskEditor() {
  const m = $('mask-canvas');
  m.addEventListener('pointerdown', (ev) => {
    initImage.drawing = true;
    initImage.last = null;
    m.setPointerCapture?.(ev.pointerId);
    paint(ev);
  });
  m.addEventListener('pointermove', (ev) => { if (initImage.drawing) paint(ev); });
  const stop = () => { initImage.drawing = false; initImage.last = null; };
  m.addEventListener('pointerup', stop);
  m.addEventListener('pointerleave', stop);
  $('init-file').addEventListener('change', (ev) => loadInitImage(ev.target.files[0]));
  $('init-clear').addEventListener('click', clearInitImage);
  $('mask-clear').addEventListener('click', clearMask);
}

function fillForm(p) {
  if (!p) return;
  $('prompt').value = p.prompt ?? '';
  $('negative_prompt').value = p.negative_prompt ?? '';
  if (p.model && [...$('model').options].some((o) => o.value === p.model)) $('model').value = p.model;
  if (p.sampler && [...$('sampler').options].some((o) => o.value === p.sampler)) $('sampler').value = p.sampler;
  if (p.steps) $('steps').value = p.steps;
  if (p.guidance_scale !== undefined) $('guidance_scale').value = p.guidance_scale;
  if (p.width) $('width').value = p.width;
  if (p.height) $('height').value = p.height;
  if (p.seed !== undefined) $('seed').value = p.seed;
  $('lora-list').replaceChildren();
  for (const l of p.loras || []) addLora(l.name, l.weight);
  for (const id of ['steps', 'guidance_scale']) $(id).dispatchEvent(new Event('input'));
}

// ------------------------------------------------------------------ status display

function setStatus(text, kind = '') {
  $('status').textContent = text;
  $('status').className = 'status' + (kind ? ' ' + kind : '');
}

function setEta(seconds, extra = '') {
  $('eta').textContent = (seconds != null && isFinite(seconds) ? `ETA ${fmtTime(seconds)}` : '') + extra;
}

function fmtTime(s) {
  s = Math.max(0, s);
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

function setBusy(busy) {
  $('generate').disabled = busy;
  $('cancel').disabled = !busy;
}

function showError(err) {
  $('form-error').textContent = err.message + (err.retryAfter ? ` (retry in ${err.retryAfter}s)` : '');
  $('form-error').hidden = false;
  if (err.field) {
    const el = $(err.field) || $(err.field.replace(/\[.*$/, '')) ||
      (err.field.startsWith('loras') ? $('lora-select') : null);
    if (el) el.classList.add('invalid');
  }
}

function clearError() {
  $('form-error').hidden = true;
  document.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
}

// ------------------------------------------------------------------ a job

async function generate(ev) {
  if (ev) ev.preventDefault();
  if (state.job) return;
  clearError();
  const body = formRequest();
  if (!body.prompt) {
    showError({ message: 'Write a prompt first.', field: 'prompt' });
    return;
  }
  setBusy(true);
  setStatus('Submitting…');
  setEta(null);
  $('bar').style.width = '0';
  let job;
  try {
    job = await api('/v1/generations', { method: 'POST', body: JSON.stringify(body) });
  } catch (err) {
    setBusy(false);
    setStatus('Refused', 'bad');
    showError(err);
    return;
  }
  follow(job.id);
}

/**
 * Reads a Server-Sent Events stream with fetch() (so the API key goes in a header) and calls
 * handlers[eventName]({data}) for each event. Resolves when the stream ends, rejects when it breaks; close() aborts.
 */
function readEvents(url, handlers) {
  const abort = new AbortController();
  const done = (async () => {
    const res = await authFetch(url, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
    if (!res.ok || !res.body) throw new Error(`event stream: ${res.status} ${res.statusText}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let event = { name: 'message', data: [] };
    const line = (l) => {
      if (l === '') { // blank line: dispatch
        if (event.data.length && handlers[event.name]) handlers[event.name]({ data: event.data.join('\n') });
        event = { name: 'message', data: [] };
        return;
      }
      if (l.startsWith(':')) return; // comment
      const c = l.indexOf(':');
      const field = c < 0 ? l : l.slice(0, c);
      const value = c < 0 ? '' : l.slice(c + 1).replace(/^ /, '');
      if (field === 'event') event.name = value;
      else if (field === 'data') event.data.push(value);
    };
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += value;
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const eol = buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1;
        line(buf.slice(0, nl));
        buf = buf.slice(nl + eol);
      }
    }
    if (buf) line(buf);
    line('');
  })();
  return { done, close: () => abort.abort() };
}

function follow(id) {
  state.job = id;
  state.frames = 0;
  state.startedAt = 0;
  state.firstStep = 0;
  state.finished = false;
  $('preview').dataset.frames = '0';
  setStatus('Queued');
  const handlers = {};
  const es = { addEventListener: (name, fn) => { handlers[name] = fn; } };
  const data = (e) => JSON.parse(e.data);

  es.addEventListener('queued', (e) => {
    const d = data(e);
    setStatus(d.position === 0 ? 'Queued — next' : `Queued — position ${d.position + 1}`);
    const startsIn = d.estimated_start_ms ? (d.estimated_start_ms - Date.now()) / 1000 : null;
    setEta(null, startsIn != null && startsIn > 0 ? `starts in ~${fmtTime(startsIn)}` : '');
  });
  es.addEventListener('started', () => setStatus('Encoding prompt…'));
  es.addEventListener('step', (e) => onStep(data(e)));
  es.addEventListener('completed', (e) => { finish(); onCompleted(id, data(e)); });
  es.addEventListener('ended', (e) => {
    const d = data(e);
    finish();
    setStatus(d.state === 'cancelled' ? 'Cancelled' : `Ended: ${d.state}${d.error ? ' — ' + d.error : ''}`,
      d.state === 'cancelled' ? '' : 'bad');
    setEta(null);
  });
  const stream = readEvents(`/v1/generations/${encodeURIComponent(id)}/events`, handlers);
  state.events = stream;
  const onBroken = async () => {
    if (state.finished || state.job !== id) return;
    // The stream ended or broke before the job did: ask the job itself.
    stream.close();
    try {
      const j = await api(`/v1/generations/${encodeURIComponent(id)}`);
      if (j.state === 'completed') { finish(); onCompleted(id, { seeds: j.seeds, image_url: j.links.image }); return; }
      if (['queued', 'encoding', 'denoising', 'decoding'].includes(j.state)) { setTimeout(() => follow(id), 500); return; }
      finish();
      setStatus(`Ended: ${j.state}${j.error ? ' — ' + j.error : ''}`, 'bad');
    } catch (err) {
      finish();
      setStatus(err.status === 401 ? err.message : 'Lost the connection to the server', 'bad');
    }
  };
  stream.done.then(onBroken, onBroken);
}

function onStep(d) {
  const now = performance.now();
  if (!state.startedAt) { state.startedAt = now; state.firstStep = d.index - 1; }
  const done = d.index - state.firstStep;
  const elapsed = (now - state.startedAt) / 1000;
  const perStep = done > 0 && elapsed > 0 ? elapsed / done : (d.step_ms || 0) / 1000;
  $('bar').style.width = `${(100 * d.index / d.total).toFixed(1)}%`;
  setStatus(`Step ${d.index} / ${d.total}`);
  setEta((d.total - d.index) * perStep, perStep > 0 ? ` · ${(1 / perStep).toFixed(2)} it/s` : '');
  if (d.preview) {
    const img = $('preview');
    img.src = `data:image/${d.preview_format === 'jpeg' ? 'jpeg' : 'png'};base64,${d.preview}`;
    img.hidden = false;
    $('result').hidden = true;
    $('placeholder').hidden = true;
    state.frames++;
    state.totalFrames++;
    img.dataset.frames = String(state.frames);
  }
}

function finish() {
  state.finished = true;
  if (state.events) state.events.close();
  state.events = null;
  state.job = null;
  setBusy(false);
}

async function cancel() {
  const id = state.job;
  if (!id) return;
  $('cancel').disabled = true;
  setStatus('Cancelling…');
  try {
    await api(`/v1/generations/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch (err) {
    showError(err);
  }
}

async function onCompleted(id, d) {
  $('bar').style.width = '100%';
  setStatus('Done', 'ok');
  const total = d.timings_ms && d.timings_ms.total;
  setEta(null, total ? `took ${fmtTime(total / 1000)}` : '');
  const url = d.image_url || `/v1/generations/${encodeURIComponent(id)}/image`;
  let job = null;
  try { job = await api(`/v1/generations/${encodeURIComponent(id)}`); } catch (e) { /* shown without parameters */ }
  const res = await authFetch(url);
  if (!res.ok) { setStatus(`Could not fetch the image (${res.status})`, 'bad'); return; }
  const buf = await res.arrayBuffer();
  const blobUrl = URL.createObjectURL(new Blob([buf], { type: 'image/png' }));
  const infotext = pngText(buf).parameters || '';
  const params = job ? job.parameters : null;
  const seed = (d.seeds && d.seeds[0]) ?? (params && params.seed);
  showResult({ id, src: blobUrl, params, infotext, seed });
  state.completed++;
  const img = $('result');
  await (img.complete && img.naturalWidth ? Promise.resolve() : new Promise((r) => { img.onload = r; img.onerror = r; }));
  saveHistory({ id, thumb: thumbnail(img), params, infotext, seed, time: Date.now() });
}

function showResult({ id, src, params, infotext, seed }) {
  const img = $('result');
  img.src = src;
  img.hidden = false;
  img.dataset.jobId = id;
  $('preview').hidden = true;
  $('placeholder').hidden = true;
  state.last = { id, params, infotext, seed };
  const dl = $('params');
  dl.replaceChildren();
  const rows = params ? [
    ['Seed', seed ?? params.seed],
    ['Model', params.model],
    ['Sampler', samplerNames[params.sampler] || params.sampler],
    ['Steps', params.steps],
    ['Guidance', params.guidance_scale],
    ['Size', `${params.width} × ${params.height}`],
    ['LoRAs', (params.loras || []).map((l) => `${l.name} (${l.weight})`).join(', ') || '—'],
  ] : [['Seed', seed ?? '—']];
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v ?? '—';
    dl.append(dt, dd);
  }
  $('infotext').textContent = infotext;
  $('infotext').hidden = !infotext;
  $('copy-info').hidden = !infotext;
  $('download').href = src;
  $('download').download = `sd-serve-${seed ?? id}.png`;
  $('details').hidden = false;
}

/** Text chunks of a PNG (tEXt, uncompressed iTXt): what A1111's "PNG Info" reads. */
function pngText(buf) {
  const b = new Uint8Array(buf);
  const dv = new DataView(buf);
  const out = {};
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let p = 8;
  while (p + 12 <= b.length) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
    const data = b.subarray(p + 8, p + 8 + len);
    const z = data.indexOf(0);
    if (type === 'tEXt' && z > 0) {
      out[latin1.decode(data.subarray(0, z))] = latin1.decode(data.subarray(z + 1));
    } else if (type === 'iTXt' && z > 0 && data[z + 1] === 0) {
      const lang = data.indexOf(0, z + 3);
      const trans = lang < 0 ? -1 : data.indexOf(0, lang + 1);
      if (trans > 0) out[latin1.decode(data.subarray(0, z))] = utf8.decode(data.subarray(trans + 1));
    }
    if (type === 'IEND') break;
    p += 12 + len;
  }
  return out;
}

// ------------------------------------------------------------------ history (localStorage)

function thumbnail(img, edge = 192) {
  try {
    const scale = edge / Math.max(img.naturalWidth, img.naturalHeight);
    const c = document.createElement('canvas');
    c.width = Math.max(1, Math.round(img.naturalWidth * Math.min(1, scale)));
    c.height = Math.max(1, Math.round(img.naturalHeight * Math.min(1, scale)));
    c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
    return c.toDataURL('image/jpeg', 0.85);
  } catch (e) {
    return '';
  }
}

function loadHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch (e) { return []; }
}

function saveHistory(entry) {
  let items = [entry, ...loadHistory().filter((h) => h.id !== entry.id)].slice(0, HISTORY_MAX);
  for (;;) {
    try {
      localStorage.setItem(HISTORY_KEY, JSON.stringify(items));
      break;
    } catch (e) { // quota: drop the oldest
      if (items.length <= 1) break;
      items = items.slice(0, items.length - 1);
    }
  }
  renderHistory();
}

function renderHistory() {
  const items = loadHistory();
  const grid = $('history');
  grid.replaceChildren();
  for (const h of items) {
    const fig = document.createElement('figure');
    fig.title = h.params ? h.params.prompt : '';
    const img = document.createElement('img');
    img.src = h.thumb;
    img.alt = h.params ? h.params.prompt : 'history image';
    img.loading = 'lazy';
    const cap = document.createElement('figcaption');
    cap.textContent = (h.params && h.params.prompt) || `seed ${h.seed}`;
    fig.append(img, cap);
    fig.addEventListener('click', () => openHistory(h));
    grid.append(fig);
  }
  $('history-empty').hidden = items.length > 0;
}

async function openHistory(h) {
  // The server keeps finished jobs for a while; fall back to the stored thumbnail when it no longer has it.
  let src = h.thumb;
  try {
    const res = await authFetch(`/v1/generations/${encodeURIComponent(h.id)}/image`);
    if (res.ok) src = URL.createObjectURL(await res.blob());
  } catch (e) { /* thumbnail */ }
  showResult({ id: h.id, src, params: h.params, infotext: h.infotext, seed: h.seed });
  setStatus('From history');
  setEta(null);
}

// ------------------------------------------------------------------ wiring

function bindKey() {
  const input = $('api-key');
  input.value = storedKey();
  input.addEventListener('change', () => {
    try {
      if (input.value.trim()) localStorage.setItem(KEY_STORE, input.value.trim());
      else localStorage.removeItem(KEY_STORE);
    } catch (e) { /* storage off: the key lasts until the page is closed */ }
    input.classList.remove('invalid');
    clearError();
    loadCatalog().catch((err) => { $('server-status').textContent = ''; showError(err); });
  });
}

function init() {
  bindKey();
  bindOutputs();
  $('form').addEventListener('submit', generate);
  bindMaskEditor();
  $('cancel').addEventListener('click', cancel);
  $('seed-random').addEventListener('click', () => { $('seed').value = Math.floor(Math.random() * 4294967294); });
  $('lora-add').addEventListener('click', () => addLora($('lora-select').value));
  $('history-clear').addEventListener('click', () => { localStorage.removeItem(HISTORY_KEY); renderHistory(); });
  $('reuse').addEventListener('click', () => {
    if (state.last && state.last.params) fillForm({ ...state.last.params, seed: state.last.seed });
  });
  $('copy-info').addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText($('infotext').textContent));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) generate(e);
  });
  for (const el of document.querySelectorAll('input, textarea, select')) {
    el.addEventListener('input', () => el.classList.remove('invalid'));
  }
  renderHistory();
  $('model').addEventListener('change', applyRecommended);
  loadCatalog().catch((err) => { $('server-status').textContent = 'server unreachable'; showError(err); });
}

init();
