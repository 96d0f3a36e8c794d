// Drives Debian's chromium (headless, through playwright-core) against the
// scheduler's web page while a farm builds: the running build's steps and log
// update live, a finished build's timeline shows its stages and cache hits,
// and another submitter's build is neither listed nor readable. Screenshots
// of each page go to OUT_DIR. Run by tests/e2e/web_page_test.sh, which sets:
//   WEB_URL, ALICE_TOKEN, OPS_TOKEN, RUNNING_ID, QUEUED_ID, FINISHED_ID, BOB_ID,
//   LIVE_MARKER, OUT_DIR
'use strict';

const {chromium} = require('playwright-core');
const assert = require('assert');
const path = require('path');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error('web_page_test.js: ' + name + ' is not set');
  return v;
};
const WEB_URL = env('WEB_URL');
const RUNNING_ID = env('RUNNING_ID');
const QUEUED_ID = env('QUEUED_ID');
const FINISHED_ID = env('FINISHED_ID');
const BOB_ID = env('BOB_ID');
const LIVE_MARKER = env('LIVE_MARKER');
const OUT_DIR = env('OUT_DIR');

function log(msg) { console.log('web_page_test: ' + msg); }

async function shot(page, name) {
  const file = path.join(OUT_DIR, name + '.png');
  await page.screenshot({path: file, fullPage: true});
  log('screenshot ' + file);
}

// Signs in through the page's own form, as a person would.
async function signIn(context, token) {
  const page = await context.newPage();
  page.on('pageerror', (err) => { throw new Error('page error: ' + err.message); });
  await page.goto(WEB_URL + '/');
  await page.waitForSelector('#signin:not([hidden])');
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#who-name');
  return page;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // As root in a test: chromium's own sandbox needs a user namespace it
    // may not get here; the page is our own, served from loopback.
    chromiumSandbox: false,
    // The machine has no network beyond loopback: nothing in the background.
    args: ['--disable-gpu', '--disable-quic', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const alice = await browser.newContext({viewport: {width: 1400, height: 900}});
    const page = await signIn(alice, env('ALICE_TOKEN'));
    assert.match(await page.textContent('#who-name'), /alice/);

    // The front page lists the running build (and only alice's builds).
    await page.waitForSelector(`#running tr[data-id="${RUNNING_ID}"]`, {timeout: 30000});
    await page.waitForSelector(`#finished tr[data-id="${FINISHED_ID}"]`);
    // The queued build, first in the queue, with how long it has waited.
    const queued = page.locator(`#queue tr[data-id="${QUEUED_ID}"] td`);
    await queued.first().waitFor({timeout: 30000});
    assert.strictEqual((await queued.nth(0).textContent()).trim(), '1');
    assert.match(await queued.nth(3).textContent(), /^\d+(\.\d)?(ms|s)$|m /);
    const front = await page.textContent('main');
    assert.ok(!front.includes(BOB_ID), 'alice sees bob\'s build ' + BOB_ID + ' on the front page');
    assert.ok(!front.includes('bob'), 'alice sees bob\'s name on the front page');
    assert.ok(await page.isHidden('#nav-workers'), 'a submitter is offered the workers page');
    await shot(page, 'builds-submitter');

    // The running build: its long step runs, then prints the marker, then ends.
    await page.click(`#running a[href="/builds/${RUNNING_ID}"]`);
    await page.waitForURL('**/builds/' + RUNNING_ID);
    const longStep = page.locator('#steps tr.step', {hasText: LIVE_MARKER});
    await longStep.waitFor({timeout: 30000});
    await page.waitForSelector(`#steps tr.step[data-state="running"]:has-text("${LIVE_MARKER}")`,
                               {timeout: 30000});
    const before = await page.textContent('#log');
    assert.ok(!before.includes(LIVE_MARKER + '-printed'),
              'the marker was in the log before its step printed it: ' + before);
    log('long step is running; waiting for its output to arrive');
    await page.waitForFunction(
        (m) => document.getElementById('log').textContent.includes(m),
        LIVE_MARKER + '-printed', {timeout: 30000});
    log('the log line appeared live');
    assert.strictEqual(await longStep.getAttribute('data-state'), 'running',
                       'the step had ended before its output was shown');
    await shot(page, 'build-running');
    await page.waitForSelector(`#steps tr.step[data-state="done"]:has-text("${LIVE_MARKER}")`,
                               {timeout: 30000});
    log('the step became done live');
    await page.waitForSelector('#build-state .state-SUCCEEDED', {timeout: 30000});
    await shot(page, 'build-finished-live');

    // A finished build's timeline: both stages, cache hits, durations.
    await page.goto(WEB_URL + '/builds/' + FINISHED_ID);
    await page.waitForSelector('#timeline .tl-row');
    await page.waitForSelector('#build-state .state-SUCCEEDED');
    const rows = page.locator('#timeline .tl-row');
    const n = await rows.count();
    assert.ok(n >= 3, 'timeline has ' + n + ' rows');
    const cached = await page.locator('#timeline .tl-row[data-state="cached"]').count();
    const ran = await page.locator('#timeline .tl-row[data-state="done"]').count();
    assert.ok(cached >= 1, 'no cache hit on the timeline');
    assert.ok(ran >= 1, 'no executed step on the timeline');
    const timeline = await page.textContent('#timeline');
    assert.match(timeline, /stage tools/);
    assert.match(timeline, /stage app/);
    assert.match(timeline, /CACHED/);
    assert.match(await page.textContent('#log'), /app-step-ran/);
    assert.match(await page.textContent('#summary'), /sha256:[0-9a-f]{64}/);
    // Its OCI output, ready to download (the shell compares the bytes).
    await page.waitForSelector('#outputs button.output-download[data-index="0"]');
    assert.match(await page.textContent('#outputs'), /type=oci,dest=.*app\.tar/);
    await shot(page, 'build-timeline');

    // Bob's build, by its address: refused.
    await page.goto(WEB_URL + '/builds/' + BOB_ID);
    await page.waitForSelector('main .error');
    const refusal = await page.textContent('main');
    assert.match(refusal, /another submitter owns/);
    assert.ok(!refusal.includes('bob-secret-step'), 'bob\'s Dockerfile leaked');
    await shot(page, 'build-of-another-submitter');

    // An operator sees every build and the workers.
    const ops = await browser.newContext({viewport: {width: 1400, height: 900}});
    const opsPage = await signIn(ops, env('OPS_TOKEN'));
    await opsPage.waitForSelector(`#finished tr[data-id="${BOB_ID}"]`);
    await opsPage.waitForSelector(`#finished tr[data-id="${RUNNING_ID}"]`);
    await shot(opsPage, 'builds-operator');
    await opsPage.click('#nav-workers');
    await opsPage.waitForSelector('#workers tr.worker-row[data-id="w1"]');
    const worker = await opsPage.textContent('#workers tr.worker-row[data-id="w1"]');
    assert.match(worker, /idle|busy/);
    assert.match(worker, /linux\//);
    assert.match(worker, /0 \/ 1|1 \/ 1/);
    assert.match(worker, /team=web/);
    await shot(opsPage, 'workers');
    log('all checks passed');
  } catch (err) {
    // What each open page showed when it failed, for the test's outputs.
    let i = 0;
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        await page.screenshot({path: path.join(OUT_DIR, 'failure-' + (i++) + '.png'), fullPage: true})
            .catch(() => {});
      }
    }
    throw err;
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error('web_page_test: FAIL: ' + (err && err.stack || err));
  process.exit(1);
});
