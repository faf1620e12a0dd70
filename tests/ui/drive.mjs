// Opens a notebook in a running JupyterLab with Debian's chromium, runs all its cells, waits for
// selectors inside the outputs, prints DOM facts as JSON on stdout and saves a screenshot.
// Driven by tests/ui/labdriver.py; every wait is bounded by --timeout (seconds, whole run).
//
//   node drive.mjs --url http://127.0.0.1:PORT/ --token TOKEN --notebook path/in/root.ipynb \
//     --wait '.my-widget' --wait 'text=done' --screenshot out.png [--timeout 240] \
//     [--step '{"click": ".a-node", "wait": ".its-details"}'] [--shot '{"selector": ".x", "path": "x.png"}'] \
//     [--viewport 1400x900]
//
// --wait takes Playwright selectors (CSS, `text=…`, `:has-text(…)`), looked up inside the
// notebook's output areas. After every wait, each --step (in order) clicks the first match of its
// `click` selector and waits for its `wait` selector (both inside the outputs). Each --shot saves
// a screenshot of the first match of its selector inside the notebook (e.g. one cell's output
// area), scrolled into view, besides the page one.
// For every selector the facts give each match's text, size, data-* attributes, the index of the
// cell holding it and `seq`: the order in which its output appeared during the run (0 first), so
// a test can tell which output came before which without timing anything.
// Exit status: 0 when every wait succeeded, 1 when one did not (facts and screenshot are still
// written, with "error" set), 2 on bad arguments.
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const NOTEBOOK = '.jp-NotebookPanel:not(.lm-mod-hidden)';
const OUTPUTS = `${NOTEBOOK} .jp-OutputArea-output`;
const PROMPTS = `${NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt`;
const TEXTS_PER_SELECTOR = 20;
const TEXT_CHARS = 400;

function parse() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' }, token: { type: 'string' }, notebook: { type: 'string' },
      wait: { type: 'string', multiple: true, default: [] }, screenshot: { type: 'string' },
      step: { type: 'string', multiple: true, default: [] }, shot: { type: 'string', multiple: true, default: [] },
      timeout: { type: 'string', default: '240' }, viewport: { type: 'string', default: '1400x900' },
    },
  });
  for (const name of ['url', 'token', 'notebook', 'screenshot']) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  const steps = values.step.map((text) => jsonWith(text, '--step', ['click', 'wait']));
  const shots = values.shot.map((text) => jsonWith(text, '--shot', ['selector', 'path']));
  const size = /^(\d+)x(\d+)$/.exec(values.viewport);
  if (!size) throw new Error(`--viewport takes WIDTHxHEIGHT, not ${values.viewport}`);
  const viewport = { width: Number(size[1]), height: Number(size[2]) };
  return { ...values, steps, shots, viewport, timeout: Number(values.timeout) * 1000 };
}

function jsonWith(text, option, keys) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${option} takes a JSON object, not ${text}`);
  }
  for (const key of keys) {
    if (typeof value?.[key] !== 'string') throw new Error(`${option} needs a string "${key}": ${text}`);
  }
  return value;
}

// Every selector the facts describe: the waits, then each step's click and wait selectors.
const described = (args) => [...new Set([...args.wait, ...args.steps.flatMap((s) => [s.click, s.wait])])];

// Milliseconds left before the run's deadline (at least 1, so Playwright never reads 0 as "no limit").
const remaining = (deadline) => Math.max(1, deadline - Date.now());

async function openNotebook(page, args, deadline) {
  const path = args.notebook.split('/').map(encodeURIComponent).join('/');
  // ?reset: a fresh workspace, so tabs from an earlier run on the same server do not come back.
  const url = new URL(`lab/tree/${path}?reset&token=${encodeURIComponent(args.token)}`, args.url);
  await page.goto(url.href, { timeout: remaining(deadline) });
  await page.locator(`${NOTEBOOK} .jp-Cell`).first().waitFor({ timeout: remaining(deadline) });
  await waitKernelIdle(page, deadline);
}

// The status bar's kernel item reads "<kernel name> | Idle" once the kernel is connected (the
// toolbar's execution indicator already says idle while there is no kernel yet).
async function waitKernelIdle(page, deadline) {
  await page.locator('#jp-main-statusbar [title^="Change kernel"]', { hasText: /^(?!No Kernel).* \| Idle$/ })
    .waitFor({ timeout: remaining(deadline) });
}

async function menu(page, deadline, name, item) {
  await page.locator('.lm-MenuBar-itemLabel', { hasText: new RegExp(`^${name}$`) }).click({ timeout: remaining(deadline) });
  await page.locator('.lm-Menu-itemLabel', { hasText: new RegExp(`^${item}$`) }).click({ timeout: remaining(deadline) });
}

// Clears saved outputs first, so no wait can be met by an output from an earlier run. Done when
// the first code cell has an execution count and no cell is queued ("[*]"): after a failing cell
// Lab un-queues the rest, so a failure ends the wait too (its traceback lands in the facts).
async function runAllCells(page, deadline) {
  await menu(page, deadline, 'Edit', 'Clear Outputs of All Cells');
  await numberOutputs(page);
  await menu(page, deadline, 'Run', 'Run All Cells');
  await page.waitForFunction((selector) => {
    const prompts = [...document.querySelectorAll(selector)].map((p) => p.textContent);
    return prompts.length > 0 && /\[\d+\]/.test(prompts[0]) && !prompts.some((p) => p.includes('*'));
  }, PROMPTS, { timeout: remaining(deadline), polling: 250 });
  await waitKernelIdle(page, deadline);
}

// Stamps each output element with data-drive-seq as it is added (0, 1, …), so the facts can say
// which output appeared first. An output Lab redraws (a display update) gets a new number.
async function numberOutputs(page) {
  await page.evaluate((outputClass) => {
    let next = 0;
    const stamp = (node) => {
      if (!(node instanceof Element)) return;
      const found = node.classList.contains(outputClass) ? [node] : node.getElementsByClassName(outputClass);
      for (const output of found) if (!output.dataset.driveSeq) output.dataset.driveSeq = String(next++);
    };
    new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach(stamp)))
      .observe(document.body, { childList: true, subtree: true });
  }, 'jp-OutputArea-output');
}

async function describe(page, selector) {
  const found = page.locator(OUTPUTS).locator(selector);
  const count = await found.count();
  const shown = [];
  for (let i = 0; i < Math.min(count, TEXTS_PER_SELECTOR); i++) {
    const node = found.nth(i);
    const box = await node.boundingBox();
    const where = await node.evaluate((element, { cells, chars }) => {
      const output = element.closest('.jp-OutputArea-output');
      const cell = element.closest('.jp-Cell');
      // SVG elements have no innerText: their text is their textContent (a node's <title> first).
      const text = element instanceof HTMLElement ? element.innerText : element.textContent;
      return {
        text: text.slice(0, chars),
        data: { ...(element.dataset || {}) },
        cell: cell ? [...document.querySelectorAll(cells)].indexOf(cell) : null,
        seq: output && output.dataset.driveSeq !== undefined ? Number(output.dataset.driveSeq) : null,
      };
    }, { cells: `${NOTEBOOK} .jp-Cell`, chars: TEXT_CHARS });
    shown.push({
      width: box ? Math.round(box.width) : 0,
      height: box ? Math.round(box.height) : 0,
      visible: await node.isVisible(),
      ...where,
    });
  }
  return { count, shown };
}

// Each --step: click, then wait for what the click should show (`progress.step` names a failing one).
async function clickSteps(page, args, deadline, progress) {
  for (const { click, wait } of args.steps) {
    progress.step = `click ${click}`;
    await page.locator(OUTPUTS).locator(click).first().click({ timeout: remaining(deadline) });
    progress.step = `wait for ${wait} after clicking ${click}`;
    await page.locator(OUTPUTS).locator(wait).first().waitFor({ timeout: remaining(deadline) });
  }
}

// Element screenshots (best effort: a missing element is reported in the facts, not fatal).
async function elementShots(page, args) {
  const saved = {};
  for (const { selector, path } of args.shots) {
    try {
      const node = page.locator(NOTEBOOK).locator(selector).first();
      await node.scrollIntoViewIfNeeded({ timeout: 10000 });
      await node.screenshot({ path, timeout: 30000 });
      saved[selector] = path;
    } catch (err) {
      saved[selector] = `failed: ${err.message.split('\n')[0]}`;
    }
  }
  return saved;
}

async function facts(page, args) {
  const notebook = await page.evaluate(({ outputs, prompts }) => {
    const texts = (selector, chars) => [...document.querySelectorAll(selector)].map((e) => e.innerText.slice(0, chars));
    return {
      title: document.title,
      kernel: document.querySelector('#jp-main-statusbar [title^="Change kernel"]')?.textContent ?? null,
      prompts: texts(prompts, 20).map((p) => p.trim()),
      outputs: document.querySelectorAll(outputs).length,
      stderr: texts(`${outputs}[data-mime-type="application/vnd.jupyter.stderr"]`, 2000),
      dialogs: texts('.jp-Dialog', 400), // e.g. Lab's "Server Connection Error", covering the screenshot
    };
  }, { outputs: OUTPUTS, prompts: PROMPTS });
  const selectors = {};
  for (const selector of described(args)) selectors[selector] = await describe(page, selector);
  return { ...notebook, selectors };
}

async function main() {
  let args;
  try {
    args = parse();
  } catch (err) {
    console.error(`drive.mjs: ${err.message}`);
    return 2;
  }
  const deadline = Date.now() + args.timeout;
  const report = { notebook: args.notebook, screenshot: args.screenshot, error: null, consoleErrors: [], pageErrors: [] };
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: remaining(deadline),
  });
  try {
    const page = await browser.newPage({ viewport: args.viewport });
    page.setDefaultTimeout(30000); // bounds the fact-gathering after the waits, which pass their own
    page.on('console', (msg) => { if (msg.type() === 'error') report.consoleErrors.push(msg.text()); });
    // The error and where it was thrown (the stack's first frames), to find it without a debugger.
    page.on('pageerror', (err) => {
      report.pageErrors.push((err.stack || String(err)).split('\n').slice(0, 4).join('\n'));
    });
    const progress = { step: 'open the notebook' };
    try {
      await openNotebook(page, args, deadline);
      progress.step = 'run all cells';
      await runAllCells(page, deadline);
      for (const selector of args.wait) {
        progress.step = `wait for ${selector}`;
        await page.locator(OUTPUTS).locator(selector).first().waitFor({ timeout: remaining(deadline) });
      }
      await clickSteps(page, args, deadline, progress);
    } catch (err) {
      report.error = `${progress.step}: ${err.message.split('\n')[0]}`;
    }
    Object.assign(report, await facts(page, args));
    report.shots = await elementShots(page, args);
    await page.screenshot({ path: args.screenshot, fullPage: true, timeout: 30000 });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
  return report.error ? 1 : 0;
}

process.exitCode = await main();
