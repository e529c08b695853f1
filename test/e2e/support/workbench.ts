/**
 * Drives a VS Code workbench in Chromium with playwright-core: open a folder, open a file, run a
 * command by its title, find a webview's content frame, take screenshots.
 */
import * as fs from 'fs';
import * as path from 'path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { REPO_ROOT } from './codeServer';

/** Where screenshots and collected logs go (gitignored). */
export const OUTPUT_DIR = path.join(REPO_ROOT, '.test-output', 'e2e');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Workbench {
  readonly browser: Browser;
  readonly page: Page;
  /** Requests the page tried to make to a host other than 127.0.0.1 (all were blocked). */
  readonly blockedRequests: string[];
  close(): Promise<void>;
}

export async function openWorkbench(url: string): Promise<Workbench> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: install the Debian package "chromium" or set CHROMIUM_PATH`,
    );
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const blockedRequests: string[] = [];
    // Tests talk only to loopback; anything else is a bug worth seeing, and is never sent.
    await context.route(
      (url) =>
        !['127.0.0.1', 'localhost'].includes(url.hostname) && url.protocol.startsWith('http'),
      (route) => {
        blockedRequests.push(route.request().url());
        return route.abort();
      },
    );
    const page = await context.newPage();
    await page.goto(url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The status bar fills in once the extension host has connected.
    await page.locator('.statusbar').waitFor({ timeout: 60_000 });
    return { browser, page, blockedRequests, close: () => browser.close() };
  } catch (error) {
    await browser.close();
    throw error;
  }
}

/** Runs a command through the command palette (F1), by the title shown there. */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.locator('.monaco-workbench').click({ position: { x: 5, y: 300 } });
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: title }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.click();
  // The palette is gone when its input hides, or when a command's own quick pick (Select
  // adapter's list) takes the same widget over at once: then the input no longer holds the
  // palette's ">" text. Waiting for "hidden" alone raced with such a pick.
  await page.waitForFunction(() => {
    const field = document.querySelector<HTMLInputElement>('.quick-input-widget input');
    return !field || field.offsetParent === null || !field.value.startsWith('>');
  });
}

/** Opens a workspace file through Quick Open (Ctrl+P) and waits for its editor tab. */
export async function openFile(page: Page, relativePath: string): Promise<void> {
  await page.locator('.monaco-workbench').click({ position: { x: 5, y: 300 } });
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(relativePath);
  const name = path.basename(relativePath);
  const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: name }).first();
  await row.waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  await page.locator(`.tabs-container .tab[data-resource-name="${name}"]`).waitFor();
  await page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor();
}

/**
 * Finds the frame that holds a webview's content: a webview is an iframe (cross-origin) that
 * contains another iframe with the extension's HTML. Scans all frames until one has `selector`.
 */
export async function findFrameWith(
  page: Page,
  selector: string,
  timeoutMs = 30_000,
): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of page.frames()) {
      try {
        if ((await frame.locator(selector).count()) > 0) return frame;
      } catch {
        // the frame navigated or was detached while we looked
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`no frame contains ${selector} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Saves a full-window screenshot as `<OUTPUT_DIR>/<name>.png` and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = path.join(OUTPUT_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Polls `check` until it returns a value other than undefined; on timeout throws with the text
 * of `describe()` (which may be async, e.g. to read the page's current state).
 */
export async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  describe: () => string | Promise<string>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
