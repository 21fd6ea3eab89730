// The live page: one event stream from the server (/api/events) keeps the runs' state; the
// charts, gallery, confusion matrix and filters are drawn from it. No polling.
'use strict';

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const state = { runs: [], classes: [], shown: 0 };
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...kids);
  return node;
};

// A float of the run's settings (an f32 widened to f64) as it was typed.
const num = (v) => Number(Number(v).toPrecision(6));

function seconds(s) {
  if (s == null || !isFinite(s)) return '–';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + (s % 60) + ' s';
}

// ---- run cards: progress, hyper-parameters, technique plan -------------------------------
// The last epoch's figure of `key` (validation after every epoch, test after the last), or –.
function lastOf(run, key) {
  const e = run.epochs.filter((e) => e[key] != null).pop();
  return e ? (100 * e[key]).toFixed(2) + '%' : '–';
}

function runCard(run, i) {
  const st = run.status, c = run.config;
  const card = el('article', { className: 'run', id: 'run-' + i });
  card.style.setProperty('--colour', COLOURS[i % COLOURS.length]);
  const rows = [
    ['state', el('span', { className: 'state' }, st.state)],
    ['epochs done', `${st.epoch} of ${st.epochs}`],
    ['step', `${st.step} of ${st.steps}`],
    ['examples/s', st.examples_per_second == null ? '–' : Math.round(st.examples_per_second)],
    ['time left', seconds(st.seconds_left)],
    ['validation accuracy', lastOf(run, 'validation_accuracy')],
    ['test accuracy', lastOf(run, 'test_accuracy')],
    ['hyper-parameters', `batch ${c.batch_size}, lr ${num(c.lr)} ${c.schedule}, momentum ${num(c.momentum)}, decay ${num(c.weight_decay)}, ${c.augment ? 'augmented' : 'no augmentation'}, seed ${c.seed}, ${c.threads} threads, init ${c.init}`],
    ['data', run.data],
    ['techniques', planText(run)],
  ];
  card.append(el('h3', {}, `${run.key} `, el('small', {}, run.dir)),
    el('table', {}, ...rows.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, v)))));
  return card;
}

function planText(run) {
  const layers = run.arch.filter((l) => l.type !== 'input' && l.type !== 'softmax');
  const parts = layers.map((l, k) => `${l.type} ${run.plan.forward[k]}/${run.plan.backward[k]}`);
  return parts.join(', ') + `, softmax ${run.plan.softmax} (forward/backward)`;
}

// Writes into `box` what `fresh` holds, touching only the nodes that differ: the cards and the
// legend change a few figures per update, and rebuilding them would make the browser lay out and
// repaint the whole page each time, which costs the training beside it (see scripts/page_cost.py).
function patch(box, fresh) {
  const old = [...box.childNodes];
  if (old.length !== fresh.length) return box.replaceChildren(...fresh);
  old.forEach((node, k) => {
    const next = fresh[k];
    if (node.nodeType === Node.TEXT_NODE && next.nodeType === Node.TEXT_NODE) {
      if (node.nodeValue !== next.nodeValue) node.nodeValue = next.nodeValue;
    } else if (node.nodeName !== next.nodeName || node.nodeType !== Node.ELEMENT_NODE
      || node.cloneNode(false).outerHTML !== next.cloneNode(false).outerHTML) {
      node.replaceWith(next);
    } else if (node.outerHTML !== next.outerHTML) {
      patch(node, [...next.childNodes]);
    }
  });
}

function drawRuns() {
  patch($('runs'), state.runs.map(runCard));
  const select = $('run');
  if (select.options.length !== state.runs.length) {
    select.replaceChildren(...state.runs.map((r, i) => el('option', { value: i }, r.key)));
    select.value = state.shown;
  }
  patch($('legend'), state.runs.map((r, i) =>
    el('div', {}, el('span', { style: `background:${COLOURS[i % COLOURS.length]}` }), `${r.key} (${r.points.length} points)`)));
}

// ---- charts ------------------------------------------------------------------------------
function drawChart(canvas, series, yMax, yLabel) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, L = 48, R = 10, T = 10, B = 30;
  ctx.clearRect(0, 0, W, H);
  const xMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const x = (v) => L + (W - L - R) * v / xMax;
  const y = (v) => H - B - (H - T - B) * Math.min(v, yMax) / yMax;
  ctx.strokeStyle = '#999'; ctx.fillStyle = '#444'; ctx.font = '11px sans-serif'; ctx.lineWidth = 1;
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  for (let k = 0; k <= 4; k++) {
    const v = yMax * k / 4;
    ctx.fillText(v.toFixed(2), 4, y(v) + 4);
  }
  const step = Math.max(1, Math.ceil(xMax / 10));
  for (let e = 0; e <= xMax; e += step) ctx.fillText(String(e), x(e) - 3, H - B + 14);
  ctx.fillText('epochs', W / 2, H - 4);
  ctx.save(); ctx.translate(12, T + 60); ctx.rotate(-Math.PI / 2); ctx.restore();
  let count = 0;
  for (const s of series) {
    count += s.points.length;
    ctx.strokeStyle = ctx.fillStyle = s.colour; ctx.lineWidth = s.width;
    if (s.dots) {
      for (const p of s.points) { ctx.beginPath(); ctx.arc(x(p[0]), y(p[1]), 3.5, 0, 7); ctx.fill(); }
    }
    if (s.width > 0) { // a canvas ignores a width of 0: dots alone draw no line
      ctx.beginPath();
      s.points.forEach((p, k) => (k ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
      ctx.stroke();
    }
  }
  canvas.dataset.points = count;
  canvas.setAttribute('aria-label', `${yLabel}: ${count} points`);
}

function drawCharts() {
  const loss = [], accuracy = [];
  let top = 0.5;
  state.runs.forEach((r, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = r.points.map((p) => [p[0], p[1]]);
    pts.forEach((p) => { if (isFinite(p[1])) top = Math.max(top, p[1]); });
    loss.push({ colour, width: 1.5, points: pts });
    accuracy.push({ colour, width: 0.8, points: r.points.map((p) => [p[0], p[2]]) });
    const held = (key) => r.epochs.filter((e) => e[key] != null).map((e) => [e.epoch, e[key]]);
    accuracy.push({ colour, width: 2, dots: true, points: held('validation_accuracy') });
    accuracy.push({ colour, width: 0, dots: true, points: held('test_accuracy') });
  });
  drawChart($('loss'), loss, Math.ceil(top * 2) / 2, 'loss');
  drawChart($('accuracy'), accuracy, 1, 'accuracy');
}

// ---- the shown run: gallery, filters, confusion -------------------------------------------
const shown = () => state.runs[state.shown];
const api = (path) => `/api/runs/${encodeURIComponent(shown().key)}/${path}`;

function drawGallery() {
  const run = shown();
  $('model-step').textContent = run.model_step == null ? 'no checkpoint loaded yet' : `predictions of the checkpoint at step ${run.model_step}`;
  const items = (run.gallery || []).map((g) => {
    const right = g.top[0][0] === g.label;
    const fig = el('figure', { className: 'shot', tabIndex: 0, title: 'show its maps and layers' },
      el('img', { src: api(`test/${g.index}.png`), alt: `test image ${g.index}` }),
      el('div', { className: right ? 'right' : 'wrong' }, `#${g.index} ${state.classes[g.label]}`),
      el('ol', {}, ...g.top.map(([c, p]) => el('li', {}, `${state.classes[c]} ${(100 * p).toFixed(0)}%`))));
    fig.dataset.index = g.index;
    fig.onclick = fig.onkeydown = (ev) => { if (!ev.key || ev.key === 'Enter') inspect(api(`inspect/${g.index}`), {}, `test image ${g.index}`); };
    return fig;
  });
  $('gallery').replaceChildren(...items);
  if (run.model_step != null) {
    $('filters').src = api(`filters.png?step=${run.model_step}`);
    $('filters-step').textContent = `at step ${run.model_step}`;
  }
}

function drawConfusion() {
  const m = shown().confusion;
  if (!m) { $('confusion').textContent = 'after the first epoch'; return; }
  const head = el('tr', {}, el('th'), ...state.classes.map((c) => el('th', {}, c.slice(0, 5))));
  const rows = m.map((row, t) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return el('tr', {}, el('th', {}, state.classes[t]), ...row.map((v, p) => {
      const cell = el('td', {}, String(v));
      const f = v / total;
      cell.style.background = t === p ? `rgba(46,125,50,${f})` : `rgba(198,40,40,${Math.min(1, 2 * f)})`;
      return cell;
    }));
  });
  $('confusion').replaceChildren(el('table', {}, head, ...rows));
}

// ---- clicks and uploads -------------------------------------------------------------------
async function inspect(url, init, what) {
  $('note').textContent = `working out the maps of ${what}…`;
  try {
    const res = await fetch(url, init);
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    $('inspect').hidden = false;
    $('inspect-title').textContent = `${what}: ${body.truth == null ? '' : 'true class ' + state.classes[body.truth] + ', '}maps of ${state.classes[body.target]} (checkpoint at step ${body.step})`;
    $('inspect-image').src = body.image;
    $('inspect-top').replaceChildren(...body.top.map((t) => el('li', {}, `${t.name} ${(100 * t.p).toFixed(1)}%`)));
    $('inspect-maps').src = body.maps;
    $('inspect-layers').src = body.layers;
    $('note').textContent = '';
    $('inspect').scrollIntoView({ behavior: 'smooth' });
  } catch (e) {
    $('note').textContent = `${what}: ${e.message}`;
  }
}

function upload(file) {
  if (!file) return;
  inspect(api('upload'), { method: 'POST', headers: { 'Content-Type': file.type || 'application/octet-stream' }, body: file }, file.name);
}

const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); upload(e.dataTransfer.files[0]); };
$('file').onchange = (e) => upload(e.target.files[0]);
$('run').onchange = (e) => { state.shown = Number(e.target.value); drawGallery(); drawConfusion(); };

// ---- the stream ---------------------------------------------------------------------------
// Cards and charts are drawn at most every five seconds, whatever the rate of events (TensorBoard
// refreshes every 30 s): each drawing costs the browser some 30 ms of CPU across its processes
// and a pass over a frame's worth of memory, taken from a training that wants every core and its
// caches (measured by scripts/page_cost.py).
const EVERY_MS = 5000;
let pending = false, drawn = -EVERY_MS;
function redraw() {
  if (pending) return;
  pending = true;
  const wait = Math.max(0, drawn + EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    pending = false; drawn = performance.now(); drawRuns(); drawCharts();
  }), wait);
}

const events = new EventSource('/api/events');
const on = (name, f) => events.addEventListener(name, (e) => f(JSON.parse(e.data)));
on('snapshot', (d) => {
  state.runs = d.runs; state.classes = d.classes;
  state.shown = Math.min(state.shown, state.runs.length - 1);
  $('run').replaceChildren();
  redraw(); drawGallery(); drawConfusion();
});
on('points', (d) => { const r = state.runs[d.run]; r.points.push(...d.points); r.status = d.status; redraw(); });
on('status', (d) => { state.runs[d.run].status = d.status; redraw(); });
on('epoch', (d) => {
  const r = state.runs[d.run];
  r.epochs = r.epochs.filter((e) => e.epoch < d.record.epoch).concat([d.record]);
  r.confusion = d.confusion; r.status = d.status;
  redraw();
  if (d.run === state.shown) drawConfusion();
});
on('model', (d) => {
  const r = state.runs[d.run];
  r.gallery = d.gallery; r.model_step = d.step; r.confusion = d.confusion || r.confusion;
  if (d.run === state.shown) { drawGallery(); drawConfusion(); }
});
on('note', (d) => { $('note').textContent = `${state.runs[d.run].key}: ${d.note}`; });
events.onopen = () => { $('link').textContent = 'live'; };
events.onerror = () => { $('link').textContent = 'connection lost, retrying…'; };
