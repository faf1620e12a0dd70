// Drives the envd side panel in a running JupyterLab with Debian's chromium: opens a notebook, runs
// all its cells, opens the panel, waits for selectors inside it, clicks through steps, prints DOM
// facts as JSON and saves screenshots (light and dark themes). Driven by tests/ui/labdriver.py
// (drive_panel) and bench/bench_panel.py; every wait is bounded by --timeout (seconds, whole run).
//
//   node panel.mjs --url URL --token TOKEN --notebook path/in/root.ipynb --screenshot end.png \
//     [--wait SELECTOR]... [--step '{"click": SEL, "focus": SEL, "key": KEY, "wait": SEL, "gone": SEL, "theme": "dark", "shot": PATH,
//     "describe": [SEL, ...]}']... [--describe SELECTOR]... [--watch-name NAME]... [--timeout 240] [--viewport 1400x900]
//
// Selectors are Playwright selectors looked up inside the panel (#envd-jupyter-panel); one starting
// with "!" is looked up in the whole page instead (e.g. the notebook's active cell). Each step does,
// in order, what it has: click, focus, press a key (on whatever has the focus), wait (for a match to
// show), gone (wait until nothing matches), switch Lab's theme (light/dark), screenshot, describe.
// The facts give, per selector, each match's text, size, visibility, data-* attributes and
// aria-label (`selectors` at the end, `steps[i]` for a step's describe); and `timings`:
// `openToRowsMs`, from the click on the panel's tab to its first history row drawn, and
// `historyRequestsMs`, each history request's duration as the page's resource timing saw it.
// --time-refresh: after the waits, click the panel's refresh button and report
// `timings.refreshToRowsMs`, from the click to the history list redrawn with the server's answer.
// --watch-name: after the steps, print "ready" on stderr, then wait until a finished ("ok") history
// row of each name is drawn and report `timings.rowShownAt[name]` (epoch ms, taken in the page by a
// MutationObserver), for a caller that starts those builds once it reads "ready".
// Exit status: 0 when every wait succeeded, 1 when one did not (facts still written), 2 on bad arguments.
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const NOTEBOOK = '.jp-NotebookPanel:not(.lm-mod-hidden)';
const PROMPTS = `${NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt`;
const PANEL = '#envd-jupyter-panel';
const PANEL_TAB = '.jp-SideBar.jp-mod-left [data-id="envd-jupyter-panel"]';
const TEXTS_PER_SELECTOR = 60;
const TEXT_CHARS = 600;

function parse() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' }, token: { type: 'string' }, notebook: { type: 'string' },
      screenshot: { type: 'string' },
      wait: { type: 'string', multiple: true, default: [] }, step: { type: 'string', multiple: true, default: [] },
      describe: { type: 'string', multiple: true, default: [] },
      'watch-name': { type: 'string', multiple: true, default: [] }, 'time-refresh': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '240' }, viewport: { type: 'string', default: '1400x900' },
    },
  });
  for (const name of ['url', 'token', 'notebook', 'screenshot']) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  const steps = values.step.map((text) => {
    const step = JSON.parse(text);
    if (typeof step !== 'object' || !['click', 'focus', 'key', 'wait', 'gone', 'theme', 'shot'].some((key) => typeof step[key] === 'string')) {
      throw new Error(`bad --step ${text}`);
    }
    return step;
  });
  const size = /^(\d+)x(\d+)$/.exec(values.viewport);
  if (!size) throw new Error(`--viewport takes WIDTHxHEIGHT, not ${values.viewport}`);
  return { ...values, steps, viewport: { width: Number(size[1]), height: Number(size[2]) },
    timeout: Number(values.timeout) * 1000 };
}

const remaining = (deadline) => Math.max(1, deadline - Date.now());

async function waitKernelIdle(page, deadline) {
  await page.locator('#jp-main-statusbar [title^="Change kernel"]', { hasText: /^(?!No Kernel).* \| Idle$/ })
    .waitFor({ timeout: remaining(deadline) });
}

async function menu(page, deadline, ...path) {
  await page.locator('.lm-MenuBar-itemLabel', { hasText: new RegExp(`^${path[0]}$`) }).click({ timeout: remaining(deadline) });
  for (const item of path.slice(1)) {
    await page.locator('.lm-Menu-itemLabel', { hasText: new RegExp(`^${item}$`) }).click({ timeout: remaining(deadline) });
  }
}

// Chromium drops loads in flight when the host's network changes (net::ERR_NETWORK_CHANGED: other
// daemons adding bridges), and Lab then stops at "Error Loading Theme": such a load is tried once more.
async function openAndRun(page, args, deadline) {
  const path = args.notebook.split('/').map(encodeURIComponent).join('/');
  const url = new URL(`lab/tree/${path}?reset&token=${encodeURIComponent(args.token)}`, args.url);
  for (let attempt = 1; ; attempt++) {
    await page.goto(url.href, { timeout: remaining(deadline) });
    const outcome = await (await page.waitForFunction((cell) => {
      if (document.querySelector(cell)) return 'loaded';
      const failed = [...document.querySelectorAll('.jp-Dialog')].find((d) => /Error Loading/.test(d.innerText));
      return failed ? failed.innerText.slice(0, 300) : false;
    }, `${NOTEBOOK} .jp-Cell`, { timeout: remaining(deadline), polling: 250 })).jsonValue();
    if (outcome === 'loaded') break;
    if (attempt === 2) throw new Error(`Lab did not load twice: ${outcome}`);
  }
  await waitKernelIdle(page, deadline);
  await menu(page, deadline, 'Run', 'Run All Cells');
  await page.waitForFunction((selector) => {
    const prompts = [...document.querySelectorAll(selector)].map((p) => p.textContent);
    return prompts.length > 0 && /\[\d+\]/.test(prompts[0]) && !prompts.some((p) => p.includes('*'));
  }, PROMPTS, { timeout: remaining(deadline), polling: 250 });
  await waitKernelIdle(page, deadline);
}

// Clicks the panel's tab (a real click: Lumino tab bars listen to pointer events) and times, in the
// page, how long from just before the click until the panel's first history row is drawn.
async function openPanel(page, deadline) {
  await page.locator(PANEL_TAB).waitFor({ timeout: remaining(deadline) });
  await page.evaluate((panel) => {
    const started = performance.now();
    window.__envdTimings = {};
    const observer = new MutationObserver(() => {
      const row = document.querySelector(`${panel} .envd-lab-history-row`);
      if (row && row.offsetParent !== null) {
        window.__envdTimings.openToRowsMs = performance.now() - started;
        observer.disconnect();
      }
    });
    observer.observe(document.body, { childList: true, subtree: true, attributes: true });
  }, PANEL);
  await page.locator(PANEL_TAB).click({ timeout: remaining(deadline) });
  await page.locator(PANEL).waitFor({ state: 'visible', timeout: remaining(deadline) });
}

async function timeRefresh(page, deadline) {
  await page.evaluate((panel) => {
    const timings = window.__envdTimings;
    const started = performance.now();
    const observer = new MutationObserver(() => {
      timings.refreshToRowsMs = performance.now() - started;
      observer.disconnect();
    });
    observer.observe(document.querySelector(`${panel} .envd-lab-history-list`), { childList: true });
    document.querySelector(`${panel} .envd-lab-refresh`).click();
  }, PANEL);
  await page.waitForFunction(() => window.__envdTimings.refreshToRowsMs !== undefined, null,
    { timeout: remaining(deadline), polling: 'raf' });
}

async function watchRows(page, names, deadline) {
  await page.evaluate(({ panel, names }) => {
    const shown = (window.__envdTimings.rowShownAt = {});
    const check = () => {
      for (const node of document.querySelectorAll(`${panel} .envd-lab-history-row[data-status="ok"] .envd-lab-row-name`)) {
        if (names.includes(node.textContent) && shown[node.textContent] === undefined) shown[node.textContent] = Date.now();
      }
      if (Object.keys(shown).length === names.length) observer.disconnect();
    };
    const observer = new MutationObserver(check);
    observer.observe(document.querySelector(panel), { childList: true, subtree: true, characterData: true, attributes: true });
  }, { panel: PANEL, names });
  process.stderr.write('ready\n');
  await page.waitForFunction((count) => Object.keys(window.__envdTimings.rowShownAt).length === count, names.length,
    { timeout: remaining(deadline), polling: 'raf' });
}

const locate = (page, selector) => page.locator(selector.startsWith('!') ? selector.slice(1) : `${PANEL} >> ${selector}`);

async function describe(page, selector) {
  const found = locate(page, selector);
  const count = await found.count();
  const shown = [];
  for (let i = 0; i < Math.min(count, TEXTS_PER_SELECTOR); i++) {
    const node = found.nth(i);
    const box = await node.boundingBox();
    shown.push({
      width: box ? Math.round(box.width) : 0, height: box ? Math.round(box.height) : 0,
      visible: await node.isVisible(),
      ...(await node.evaluate((element, chars) => ({
        text: (element instanceof HTMLElement ? element.innerText : element.textContent).slice(0, chars),
        data: { ...(element.dataset || {}) },
        label: element.getAttribute('aria-label'),
      }), TEXT_CHARS)),
    });
  }
  return { count, shown };
}

async function facts(page, args) {
  const selectors = {};
  const all = [...new Set([...args.wait, ...args.describe])];
  for (const selector of all) selectors[selector] = await describe(page, selector);
  const page_ = await page.evaluate(() => ({
    theme: document.body.dataset.jpThemeName ?? null,
    dialogs: [...document.querySelectorAll('.jp-Dialog')].map((d) => d.innerText.slice(0, 400)),
    timings: {
      ...(window.__envdTimings ?? {}),
      historyRequestsMs: performance.getEntriesByType('resource')
        .filter((entry) => entry.name.includes('/envd/api/history?')).map((entry) => entry.duration),
    },
    activeCellSource: document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content')?.innerText ?? null,
  }));
  return { ...page_, selectors };
}

async function theme(page, name, deadline) {
  const light = name === 'light';
  await menu(page, deadline, 'Settings', 'Theme', light ? 'JupyterLab Light' : 'JupyterLab Dark');
  await page.waitForFunction((wanted) => document.body.dataset.jpThemeLight === wanted, String(light),
    { timeout: remaining(deadline) });
  await page.waitForTimeout(500); // the theme's stylesheet swaps in after the attribute
}

async function runSteps(page, args, deadline, progress, report) {
  report.steps = [];
  for (const step of args.steps) {
    const done = {};
    if (step.click) {
      progress.step = `click ${step.click}`;
      await locate(page, step.click).first().click({ timeout: remaining(deadline) });
    }
    if (step.focus) {
      progress.step = `focus ${step.focus}`;
      await locate(page, step.focus).first().focus({ timeout: remaining(deadline) });
    }
    if (step.key) {
      progress.step = `press ${step.key}`;
      await page.keyboard.press(step.key);
    }
    if (step.wait) {
      progress.step = `wait for ${step.wait}${step.click ? ` after clicking ${step.click}` : ''}`;
      await locate(page, step.wait).first().waitFor({ timeout: remaining(deadline) });
    }
    if (step.gone) {
      progress.step = `wait until nothing matches ${step.gone}`;
      await locate(page, step.gone).first().waitFor({ state: 'detached', timeout: remaining(deadline) });
    }
    if (step.theme) {
      progress.step = `switch to the ${step.theme} theme`;
      await theme(page, step.theme, deadline);
    }
    if (step.shot) await page.screenshot({ path: step.shot, timeout: 30000 });
    for (const selector of step.describe ?? []) done[selector] = await describe(page, selector);
    report.steps.push(done);
  }
}

async function main() {
  let args;
  try {
    args = parse();
  } catch (err) {
    console.error(`panel.mjs: ${err.message}`);
    return 2;
  }
  const deadline = Date.now() + args.timeout;
  // `changes`: the server's answers to the panel's pins and deletes (method, path, status, JSON body).
  const report = { error: null, consoleErrors: [], pageErrors: [], changes: [] };
  const answers = [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS,
    timeout: remaining(deadline) });
  try {
    const page = await browser.newPage({ viewport: args.viewport });
    page.setDefaultTimeout(30000);
    page.on('console', (msg) => { if (msg.type() === 'error') report.consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => report.pageErrors.push((err.stack || String(err)).split('\n').slice(0, 4).join('\n')));
    page.on('response', (response) => {
      const method = response.request().method();
      const path = new URL(response.url()).pathname;
      if ((method === 'POST' || method === 'DELETE') && path.includes('/envd/api/history/')) {
        answers.push(response.json().catch(() => null).then((body) =>
          report.changes.push({ method, path, status: response.status(), body })));
      }
    });
    const progress = { step: 'open the notebook and run it' };
    try {
      await openAndRun(page, args, deadline);
      progress.step = 'open the panel';
      await openPanel(page, deadline);
      for (const selector of args.wait) {
        progress.step = `wait for ${selector}`;
        await page.locator(PANEL).locator(selector).first().waitFor({ timeout: remaining(deadline) });
      }
      if (args['time-refresh']) {
        progress.step = 'time a refresh of the history list';
        await timeRefresh(page, deadline);
      }
      await runSteps(page, args, deadline, progress, report);
      if (args['watch-name'].length) {
        progress.step = `wait for finished history rows named ${args['watch-name'].join(', ')}`;
        await watchRows(page, args['watch-name'], deadline);
      }
    } catch (err) {
      report.error = `${progress.step}: ${err.message.split('\n')[0]}`;
    }
    await Promise.all(answers);
    Object.assign(report, await facts(page, args));
    await page.screenshot({ path: args.screenshot, timeout: 30000 });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
  return report.error ? 1 : 0;
}

process.exitCode = await main();
