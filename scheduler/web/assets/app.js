// Longshore's web page: the queue, running and finished builds, one build's
// steps, timeline and log (live over server-sent events), and the workers.
// Read-only. Every request carries the tab's bearer token, if any, in the
// Authorization header; the page never puts it in a URL. Data is inserted as
// text (textContent), never as HTML.
'use strict';

const TOKEN_KEY = 'longshore-token';
const LOG_LINES_KEPT = 2000;  // the log view keeps this many last lines
let whoami = null;
let pageAbort = null;  // aborts the current page's timers and streams

// --- helpers ---------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function authHeaders() {
  const t = token();
  return t ? {Authorization: 'Bearer ' + t} : {};
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, signal) {
  const res = await fetch(path, {headers: authHeaders(), signal, cache: 'no-store'});
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    throw new HttpError(res.status, (body && body.error) || res.statusText);
  }
  return body;
}

function duration(ms) {
  if (ms === undefined || ms === null || ms < 0) return '';
  if (ms < 1000) return ms + 'ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + 's';
  const m = Math.floor(s / 60), rs = Math.floor(s % 60);
  if (m < 60) return m + 'm ' + String(rs).padStart(2, '0') + 's';
  return Math.floor(m / 60) + 'h ' + String(m % 60).padStart(2, '0') + 'm';
}

function when(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString();
}

function stateBadge(state) {
  return el('span', {class: 'state state-' + state, text: state});
}

function shortDigest(d) { return d ? d.replace(/^sha256:/, '').slice(0, 12) : ''; }

function buildLink(b) {
  return el('a', {href: '/builds/' + b.id, class: 'mono', text: b.id});
}

function tagsText(b) { return (b.tags || []).join(' '); }

function showError(container, err) {
  if (err.name === 'AbortError') return;
  if (err.status === 401) { showSignIn(err.message); return; }
  container.replaceChildren(el('p', {class: 'error', text: err.message}));
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); });
  });
}

function markUpdated() {
  document.getElementById('updated').textContent =
      'updated ' + new Date().toLocaleTimeString();
}

// --- identity --------------------------------------------------------------

function showSignIn(message) {
  const form = document.getElementById('signin');
  form.hidden = false;
  document.getElementById('signin-error').textContent = message || '';
  document.getElementById('app').replaceChildren();
}

function setupSignIn() {
  const form = document.getElementById('signin');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = document.getElementById('token').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    document.getElementById('token').value = '';
    start();
  });
}

function renderWho() {
  const who = document.getElementById('who');
  const parts = [];
  if (whoami.open) {
    parts.push(el('span', {text: 'open scheduler (loopback, no authentication)'}));
  } else {
    parts.push(el('span', {id: 'who-name', text: whoami.describe}));
  }
  if (token()) {
    parts.push(el('button', {type: 'button', text: 'Sign out', onclick: () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    }}));
  }
  who.replaceChildren(...parts);
  const ops = whoami.roles.includes('operator');
  document.getElementById('nav-workers').hidden = !ops;
}

// --- the front page: queue, running, finished ------------------------------

function renderOverview(app, data) {
  const queue = el('table', {id: 'queue'},
      el('tr', {}, ['#', 'Build', 'Submitter', 'Waiting', 'Platform', 'Tags']
          .map((h) => el('th', {text: h}))),
      data.queued.map((b) => el('tr', {class: 'build-row', 'data-id': b.id},
          el('td', {class: 'num', text: b.position > 0 ? b.position : 'merged'}),
          el('td', {}, buildLink(b)),
          el('td', {text: b.submitter}),
          el('td', {class: 'num', text: duration(b.elapsed_ms)}),
          el('td', {text: b.platform || 'any'}),
          el('td', {class: 'mono', text: tagsText(b)}))));
  const running = el('table', {id: 'running'},
      el('tr', {}, ['Build', 'Submitter', 'Worker', 'Attempt', 'Running for', 'Tags']
          .map((h) => el('th', {text: h}))),
      data.running.map((b) => el('tr', {class: 'build-row', 'data-id': b.id},
          el('td', {}, buildLink(b)),
          el('td', {text: b.submitter}),
          el('td', {class: 'mono', text: b.worker}),
          el('td', {class: 'num', text: b.attempts}),
          el('td', {class: 'num', text: duration(b.elapsed_ms)}),
          el('td', {class: 'mono', text: tagsText(b)}))));
  const finished = el('table', {id: 'finished'},
      el('tr', {}, ['Build', 'Result', 'Submitter', 'Finished', 'Took', 'Image', 'Tags']
          .map((h) => el('th', {text: h}))),
      data.finished.map((b) => el('tr', {class: 'build-row', 'data-id': b.id},
          el('td', {}, buildLink(b)),
          el('td', {}, stateBadge(b.state)),
          el('td', {text: b.submitter}),
          el('td', {text: when(b.finished_ms)}),
          el('td', {class: 'num', text: duration(b.elapsed_ms)}),
          el('td', {class: 'mono', text: shortDigest(b.image_digest)}),
          el('td', {class: 'mono', text: tagsText(b)}))));
  const empty = (rows, what) => rows.length ? null : el('p', {class: 'muted', text: 'No ' + what + '.'});
  app.replaceChildren(
      el('h2', {}, 'Queue ', el('span', {class: 'count', text: '(' + data.queued.length + ')'})),
      data.queued.length ? queue : empty(data.queued, 'queued builds'),
      el('h2', {}, 'Running ', el('span', {class: 'count', text: '(' + data.running.length + ')'})),
      data.running.length ? running : empty(data.running, 'running builds'),
      el('h2', {}, 'Finished ', el('span', {class: 'count', text: '(' + data.finished.length + ')'})),
      data.finished.length ? finished : empty(data.finished, 'finished builds'));
}

async function overviewPage(app, signal) {
  while (!signal.aborted) {
    try {
      renderOverview(app, await api('/api/builds', signal));
      markUpdated();
    } catch (err) {
      showError(app, err);
      if (err.status === 401) return;
    }
    await sleep(2000, signal);
  }
}

// --- workers -----------------------------------------------------------------

async function workersPage(app, signal) {
  while (!signal.aborted) {
    try {
      const data = await api('/api/workers', signal);
      app.replaceChildren(
          el('h2', {}, 'Workers ', el('span', {class: 'count', text: '(' + data.workers.length + ')'})),
          data.workers.length ? el('table', {id: 'workers'},
              el('tr', {}, ['Worker', 'State', 'Slots used', 'Platform', 'Labels', 'Running', 'Last heartbeat']
                  .map((h) => el('th', {text: h}))),
              data.workers.map((w) => el('tr', {class: 'worker-row', 'data-id': w.id},
                  el('td', {class: 'mono', text: w.id}),
                  el('td', {}, stateBadge(w.state)),
                  el('td', {class: 'num', text: (w.slots - w.free_slots) + ' / ' + w.slots}),
                  el('td', {text: w.platform}),
                  el('td', {}, w.labels.map((l) => el('span', {class: 'label', text: l.key + '=' + l.value}))),
                  el('td', {}, w.running.map((id) => el('a', {href: '/builds/' + id, class: 'mono label', text: id}))),
                  el('td', {text: w.heartbeat_age_ms >= 0 ? duration(w.heartbeat_age_ms) + ' ago' : ''}))))
            : el('p', {class: 'muted', text: 'No workers have registered.'}));
      markUpdated();
    } catch (err) {
      showError(app, err);
      if (err.status === 401 || err.status === 403) return;
    }
    await sleep(2000, signal);
  }
}

// --- one build -----------------------------------------------------------------

// Reads the build's server-sent events (fetch, so the Authorization header
// goes along; EventSource cannot send it), calling onEvent for each, and
// reconnects from the last sequence until the build has finished.
async function streamEvents(id, onEvent, signal) {
  let after = 0;
  while (!signal.aborted) {
    let res;
    try {
      res = await fetch('/api/builds/' + id + '/events?after=' + after,
          {headers: authHeaders(), signal, cache: 'no-store'});
    } catch (err) {
      if (signal.aborted) return;
      await sleep(1000, signal);
      continue;
    }
    if (!res.ok) {
      let msg = res.statusText;
      try { msg = (await res.json()).error; } catch (e) { /* not JSON */ }
      throw new HttpError(res.status, msg);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const message = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let type = 'message', data = '';
          for (const line of message.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (type === 'failure') throw new HttpError(500, JSON.parse(data));
          if (type !== 'build' || !data) continue;
          const ev = JSON.parse(data);
          after = ev.seq;
          onEvent(ev);
          if (ev.kind === 'build_finished') return;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof HttpError) throw err;
    }
    await sleep(500, signal);
  }
}

// What the events say about the build's steps, log and result.
class BuildView {
  constructor() {
    this.steps = new Map();  // index -> step record
    this.stages = [];        // stage names in order of appearance
    this.logLines = [];      // [{text, stream, step}]
    this.partial = '';       // an unfinished last line
    this.dropped = 0;
    this.finished = null;
    this.errors = [];
    this.warnings = [];
    this.assigned = null;
    this.firstMs = null;
  }

  step(ref) {
    let s = this.steps.get(ref.index);
    if (!s) {
      s = {index: ref.index, stage: ref.stage, instruction: ref.instruction,
           line: ref.line, state: 'pending', start: null, end: null, duration: null};
      this.steps.set(ref.index, s);
    }
    if (s.placeholder) {
      Object.assign(s, {stage: ref.stage, instruction: ref.instruction, line: ref.line});
      delete s.placeholder;
    }
    if (!this.stages.includes(s.stage)) this.stages.push(s.stage);
    return s;
  }

  apply(ev) {
    switch (ev.kind) {
      case 'assigned':
        this.assigned = ev;
        break;
      case 'step_started': {
        const s = this.step(ev.step);
        s.state = 'running';
        s.start = ev.time_ms;
        if (this.firstMs === null) this.firstMs = ev.time_ms;
        for (let i = 1; i <= ev.step.total; i++) if (!this.steps.has(i)) this.stepPlaceholder(i, ev.step.total);
        break;
      }
      case 'step_cached': {
        const s = this.step(ev.step);
        s.state = 'cached';
        if (s.start === null) s.start = ev.time_ms;
        s.end = ev.time_ms;
        s.duration = s.end - s.start;
        if (this.firstMs === null) this.firstMs = ev.time_ms;
        break;
      }
      case 'step_finished': {
        const s = this.step(ev.step);
        s.state = 'done';
        s.end = ev.time_ms;
        s.duration = ev.duration_ms;
        if (s.start === null) s.start = ev.time_ms - ev.duration_ms;
        break;
      }
      case 'log':
        this.addLog(ev.text, ev.stream, ev.step.index);
        break;
      case 'warning':
        this.warnings.push(ev.message);
        break;
      case 'error':
        this.errors.push(ev);
        if (ev.step && ev.step.index) this.step(ev.step).state = 'failed';
        break;
      case 'build_finished':
        this.finished = ev;
        for (const s of this.steps.values()) {
          if (s.state === 'running') { s.state = 'failed'; s.end = ev.time_ms; }
        }
        if (this.partial) { this.pushLine(this.partial, 'stdout', 0); this.partial = ''; }
        break;
    }
  }

  stepPlaceholder(i, total) {
    // Steps planned but not reported yet show as pending (names unknown).
    this.steps.set(i, {index: i, stage: '', instruction: '', line: 0, state: 'pending',
                       start: null, end: null, duration: null, placeholder: true, total});
  }

  addLog(text, stream, step) {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop();
    for (const p of parts) this.pushLine(p, stream, step);
  }

  pushLine(text, stream, step) {
    this.logLines.push({text, stream, step});
    if (this.logLines.length > LOG_LINES_KEPT) {
      this.logLines.splice(0, this.logLines.length - LOG_LINES_KEPT);
      this.dropped++;
    }
  }

  orderedSteps() {
    return [...this.steps.values()].sort((a, b) => a.index - b.index);
  }
}

function stageClass(view, stage) {
  const i = view.stages.indexOf(stage);
  return 'stage-' + ((i < 0 ? 0 : i) % 8);
}

function renderSteps(view) {
  return el('table', {id: 'steps', class: 'steps'},
      el('tr', {}, ['#', 'Stage', 'Instruction', 'State', 'Took'].map((h) => el('th', {text: h}))),
      view.orderedSteps().map((s) => el('tr', {class: 'step', 'data-index': s.index, 'data-state': s.state},
          el('td', {class: 'num', text: s.index}),
          el('td', {text: s.stage || '-'}),
          el('td', {class: 'instr', text: s.instruction}),
          el('td', {}, stateBadge(s.state === 'cached' ? 'cached' : s.state)),
          el('td', {class: 'num', text: s.state === 'running' ? duration(Date.now() - s.start) + '…'
                                       : s.state === 'cached' ? 'CACHED' : duration(s.duration)}))));
}

function renderTimeline(view) {
  const steps = view.orderedSteps().filter((s) => s.start !== null);
  if (!steps.length) return el('p', {class: 'muted', text: 'No step has started yet.'});
  const t0 = Math.min(...steps.map((s) => s.start));
  const t1 = Math.max(...steps.map((s) => (s.end !== null ? s.end : Date.now())), t0 + 1);
  const span = t1 - t0;
  const rows = steps.map((s) => {
    const end = s.end !== null ? s.end : Date.now();
    const bar = el('div', {class: 'tl-bar ' + stageClass(view, s.stage) + ' ' + s.state,
                           title: s.instruction});
    bar.style.left = ((s.start - t0) / span * 100).toFixed(2) + '%';
    bar.style.width = (Math.max(end - s.start, 0) / span * 100).toFixed(2) + '%';
    return el('div', {class: 'tl-row', 'data-index': s.index, 'data-state': s.state},
        el('span', {class: 'num', text: '#' + s.index}),
        el('span', {text: s.stage || '-'}),
        el('span', {class: 'tl-instr mono', text: s.instruction, title: s.instruction}),
        el('div', {class: 'tl-track'}, bar),
        el('span', {class: 'num', text: s.state === 'cached' ? 'CACHED' : duration(end - s.start)}));
  });
  const legend = el('div', {class: 'legend'},
      view.stages.filter((st) => st !== '').map((st) =>
        el('span', {}, el('i', {class: 'chip ' + stageClass(view, st)}), 'stage ' + st)),
      el('span', {}, el('i', {class: 'chip cached stage-0'}), 'cache hit'));
  const axis = el('div', {class: 'tl-row tl-axis-row'}, el('span'), el('span'), el('span'),
      el('div', {class: 'tl-axis'}, el('span', {text: '0s'}), el('span', {text: duration(span)})),
      el('span'));
  return el('div', {id: 'timeline', class: 'timeline'}, legend, axis, rows);
}

function renderLog(view) {
  const pre = el('pre', {id: 'log', class: 'log'});
  if (view.dropped) pre.append(el('span', {class: 'muted', text: '… earlier lines are in the full log\n'}));
  for (const l of view.logLines) {
    pre.append(el('span', {class: l.stream === 'stderr' ? 'stderr' : null, text: l.text + '\n'}));
  }
  if (view.partial) pre.append(el('span', {text: view.partial}));
  return pre;
}

function renderSummary(b, view) {
  const rows = [
    ['Build', el('span', {class: 'mono', id: 'build-id', text: b.id})],
    ['State', el('span', {id: 'build-state'}, stateBadge(b.state))],
    ['Submitter', b.submitter],
    ['Submitted', when(b.created_ms)],
  ];
  if (b.state === 'QUEUED') rows.push(['Queue position', b.position > 0 ? String(b.position) : 'merged with an identical build']);
  if (b.worker) rows.push(['Worker', el('span', {class: 'mono', text: b.worker + ' (attempt ' + b.attempts + ')'})]);
  if (b.finished_ms) rows.push(['Finished', when(b.finished_ms) + ' — took ' + duration(b.elapsed_ms)]);
  else rows.push(['Elapsed', duration(b.elapsed_ms)]);
  rows.push(['Dockerfile', el('span', {class: 'mono', text: b.dockerfile_path + (b.target ? ' --target ' + b.target : '')})]);
  if (b.platform) rows.push(['Platform', b.platform]);
  if (b.tags.length) rows.push(['Tags', el('span', {class: 'mono', text: b.tags.join(' ')})]);
  const digest = (view.finished && view.finished.image_digest) || b.image_digest;
  if (digest) rows.push(['Image', el('span', {class: 'mono', id: 'image-digest', text: digest})]);
  if (view.finished && view.finished.references.length) {
    rows.push(['Pushed', el('span', {class: 'mono', text: view.finished.references.join(' ')})]);
  }
  if (b.outputs.length) {
    rows.push(['Outputs', el('span', {id: 'outputs'}, b.outputs.map((o) => el('div', {class: 'output'},
        el('span', {class: 'mono', text: 'type=' + o.type + (o.dest ? ',dest=' + o.dest : '') +
              o.attrs.map((a) => ',' + a.key + '=' + a.value).join('')}),
        o.type === 'registry' ? null
            : o.ready ? el('button', {type: 'button', class: 'output-download', 'data-index': o.index,
                                      text: 'Download', onclick: () => download(
                                          '/api/builds/' + b.id + '/outputs/' + o.index,
                                          'build-' + b.id + '-output-' + o.index + '.tar')})
            : el('span', {class: 'muted', text: ' (not uploaded)'}))))]);
  }
  if (b.error) rows.push(['Error', el('span', {class: 'error', text: b.error})]);
  for (const w of view.warnings) rows.push(['Warning', el('span', {class: 'error', text: w})]);
  return el('dl', {class: 'summary'}, rows.map(([k, v]) => [el('dt', {text: k}), el('dd', {}, v)]));
}

// Fetches with the token (a plain link would carry none) and saves the body.
async function download(path, name) {
  const res = await fetch(path, {headers: authHeaders(), cache: 'no-store'});
  if (!res.ok) return;
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function buildPage(app, id, signal) {
  let build;
  try {
    build = await api('/api/builds/' + id, signal);
  } catch (err) {
    showError(app, err);
    return;
  }
  const view = new BuildView();
  const summary = el('div', {id: 'summary'});
  const steps = el('div', {id: 'steps-box'});
  const timeline = el('div', {id: 'timeline-box'});
  const log = el('div', {id: 'log-box'});
  const logTitle = el('h2', {}, 'Log ', el('button', {type: 'button', text: 'Download full log',
                                                     onclick: () => download('/api/builds/' + id + '/log', 'build-' + id + '.log')}));
  app.replaceChildren(
      el('h2', {text: 'Build ' + id}), summary,
      el('h2', {text: 'Steps'}), steps,
      el('h2', {text: 'Timeline'}), timeline,
      logTitle, log,
      el('h2', {text: build.dockerfile_path}),
      el('pre', {class: 'dockerfile mono', text: build.dockerfile + (build.dockerfile_cut ? '\n…' : '')}));
  let dirty = true;
  const draw = () => {
    summary.replaceChildren(renderSummary(build, view));
    steps.replaceChildren(renderSteps(view));
    timeline.replaceChildren(renderTimeline(view));
    const old = document.getElementById('log');
    const atBottom = !old || old.scrollTop + old.clientHeight >= old.scrollHeight - 4;
    const pre = renderLog(view);
    log.replaceChildren(pre);
    if (atBottom) pre.scrollTop = pre.scrollHeight;
    markUpdated();
    dirty = false;
  };
  draw();
  // Redraw at most every 250 ms while events pour in, and every second for
  // the running timers.
  const ticker = setInterval(() => {
    if (dirty || (!view.finished && build.state === 'RUNNING')) draw();
  }, 250);
  signal.addEventListener('abort', () => clearInterval(ticker));
  try {
    await streamEvents(id, (ev) => {
      view.apply(ev);
      if (ev.kind === 'assigned' && build.state === 'QUEUED') build.state = 'RUNNING';
      dirty = true;
    }, signal);
    if (!signal.aborted) {
      build = await api('/api/builds/' + id, signal);
      draw();
    }
  } catch (err) {
    showError(log, err);
  }
}

// --- routing -----------------------------------------------------------------

async function start() {
  if (pageAbort) pageAbort.abort();
  pageAbort = new AbortController();
  const signal = pageAbort.signal;
  const app = document.getElementById('app');
  try {
    whoami = await api('/api/whoami', signal);
  } catch (err) {
    if (err.status === 401) { showSignIn(token() ? err.message : ''); return; }
    showError(app, err);
    return;
  }
  document.getElementById('signin').hidden = true;
  renderWho();
  const path = location.pathname;
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === path ||
                                 (path.startsWith('/builds/') && a.id === 'nav-builds'));
  }
  const m = path.match(/^\/builds\/([0-9a-f]+)$/);
  if (m) {
    document.title = 'Build ' + m[1] + ' — Longshore';
    await buildPage(app, m[1], signal);
  } else if (path === '/workers') {
    document.title = 'Workers — Longshore';
    await workersPage(app, signal);
  } else {
    document.title = 'Builds — Longshore';
    await overviewPage(app, signal);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  setupSignIn();
  start();
});
