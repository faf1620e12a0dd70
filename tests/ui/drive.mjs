// Opens a notebook in a running JupyterLab with Debian's chromium, runs all its cells, waits for
// selectors inside the outputs, prints DOM facts as JSON on stdout and saves a screenshot.
// Driven by tests/ui/labdriver.py; every wait is bounded by --timeout (seconds, whole run).
//
//   node drive.mjs --url http://127.0.0.1:PORT/ --token TOKEN --notebook path/in/root.ipynb \
//     --wait '.my-widget' --wait 'text=done' --screenshot out.png [--timeout 240]
//
// --wait takes Playwright selectors (CSS, `text=…`, `:has-text(…)`), looked up inside the
// notebook's output areas. Exit status: 0 when every wait succeeded, 1 when one did not (facts
// and screenshot are still written, with "error" set), 2 on bad arguments.
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const VIEWPORT = { width: 1400, height: 900 };
const NOTEBOOK = '.jp-NotebookPanel:not(.lm-mod-hidden)';
const OUTPUTS = `${NOTEBOOK} .jp-OutputArea-output`;
const PROMPTS = `${NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt`;
const TEXTS_PER_SELECTOR = 5;
const TEXT_CHARS = 400;

function parse() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' }, token: { type: 'string' }, notebook: { type: 'string' },
      wait: { type: 'string', multiple: true, default: [] }, screenshot: { type: 'string' },
      timeout: { type: 'string', default: '240' },
    },
  });
  for (const name of ['url', 'token', 'notebook', 'screenshot']) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  return { ...values, timeout: Number(values.timeout) * 1000 };
}

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
  await menu(page, deadline, 'Run', 'Run All Cells');
  await page.waitForFunction((selector) => {
    const prompts = [...document.querySelectorAll(selector)].map((p) => p.textContent);
    return prompts.length > 0 && /\[\d+\]/.test(prompts[0]) && !prompts.some((p) => p.includes('*'));
  }, PROMPTS, { timeout: remaining(deadline), polling: 250 });
  await waitKernelIdle(page, deadline);
}

async function describe(page, selector) {
  const found = page.locator(OUTPUTS).locator(selector);
  const count = await found.count();
  const shown = [];
  for (let i = 0; i < Math.min(count, TEXTS_PER_SELECTOR); i++) {
    const node = found.nth(i);
    const box = await node.boundingBox();
    shown.push({
      text: (await node.innerText()).slice(0, TEXT_CHARS),
      width: box ? Math.round(box.width) : 0,
      height: box ? Math.round(box.height) : 0,
      visible: await node.isVisible(),
    });
  }
  return { count, shown };
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
    };
  }, { outputs: OUTPUTS, prompts: PROMPTS });
  const selectors = {};
  for (const selector of args.wait) selectors[selector] = await describe(page, selector);
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
    const page = await browser.newPage({ viewport: VIEWPORT });
    page.setDefaultTimeout(30000); // bounds the fact-gathering after the waits, which pass their own
    page.on('console', (msg) => { if (msg.type() === 'error') report.consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => report.pageErrors.push(String(err)));
    let step = 'open the notebook';
    try {
      await openNotebook(page, args, deadline);
      step = 'run all cells';
      await runAllCells(page, deadline);
      for (const selector of args.wait) {
        step = `wait for ${selector}`;
        await page.locator(OUTPUTS).locator(selector).first().waitFor({ timeout: remaining(deadline) });
      }
    } catch (err) {
      report.error = `${step}: ${err.message.split('\n')[0]}`;
    }
    Object.assign(report, await facts(page, args));
    await page.screenshot({ path: args.screenshot, fullPage: true, timeout: 30000 });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
  return report.error ? 1 : 0;
}

process.exitCode = await main();
