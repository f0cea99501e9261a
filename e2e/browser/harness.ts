// Runs test cases inside headless Chromium and reports each as its own node:test case, so a failure
// names the case. A page entry (a TS file) is bundled by esbuild for the browser, served from a tiny
// static server on 127.0.0.1 (a secure context: WebCrypto and IndexedDB work there, not on data: URLs),
// and opened in Debian's Chromium through playwright-core. The entry registers its cases with
// `registerCases` (pageCases.ts); Node lists them and runs them one by one with `page.evaluate`.
//
// Chromium: e2e/fixtures/chromium.ts (`PEERCHAT_CHROMIUM` or /usr/bin/chromium, platform-facts flags).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../fixtures/chromium';

export interface BundleOptions {
  /**
   * Imports to replace in the browser build: an exact import path (as written) -> a file. Lets a suite
   * written for Node (node:test, node:assert) run unchanged in a page; see shims/.
   */
  replace?: Record<string, string>;
}

/** Bundles one TS entry into a single browser ES module. */
export async function bundle(entry: string, opts: BundleOptions = {}): Promise<string> {
  const replace = opts.replace ?? {};
  const replacer: Plugin = {
    name: 'replace-imports',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const to = replace[args.path];
        return to ? { path: to } : undefined;
      });
    },
  };
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: 'inline',
    logLevel: 'silent',
    plugins: [replacer],
  });
  return out.outputFiles[0]!.text;
}

/** A file beside this one (for shims and page entries). */
export const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));

export interface ServedPage {
  /** http://127.0.0.1:<port>/ : an empty document that loads the bundle as a module. */
  url: string;
  close(): Promise<void>;
}

/** Serves `script` as /app.js under an HTML page on an ephemeral loopback port. */
export async function serve(script: string): Promise<ServedPage> {
  const html = '<!doctype html><meta charset="utf-8"><title>peerchat browser test</title><script type="module" src="/app.js"></script>';
  const server: Server = createServer((req, res) => {
    if (req.url === '/app.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    else if (req.url === '/' || req.url?.startsWith('/?')) res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface CaseResult {
  ok: boolean;
  error?: string;
}

/** One Chromium with one context; pages opened on served bundles. */
export class BrowserHarness {
  private constructor(
    readonly browser: Browser,
    readonly context: BrowserContext,
  ) {}

  static async launch(): Promise<BrowserHarness> {
    const browser = await launchChromium();
    const context = await browser.newContext();
    return new BrowserHarness(browser, context);
  }

  /** Opens `url` and waits until its entry has registered its cases. Page errors go to `onConsole`. */
  async open(url: string, onConsole: (line: string) => void = () => {}): Promise<Page> {
    const page = await this.context.newPage();
    page.on('pageerror', (err) => onConsole(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') onConsole(`${msg.type()}: ${msg.text()}`);
    });
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as { peerchatCases?: unknown }).peerchatCases !== undefined, undefined, { timeout: 30_000 });
    return page;
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => {});
    await this.browser.close();
  }
}

/** The names of the cases a page registered. */
export function caseNames(page: Page): Promise<string[]> {
  return page.evaluate(() => (globalThis as unknown as PageGlobal).peerchatCases.names());
}

/** Runs one case in the page; rejects with the page's error text (and stack) when it failed. */
export async function runCase(page: Page, name: string, input?: unknown): Promise<void> {
  const r = await page.evaluate(([n, i]) => (globalThis as unknown as PageGlobal).peerchatCases.run(n as string, i), [name, input] as const);
  if (!r.ok) throw new Error(r.error);
}

interface PageGlobal {
  peerchatCases: { names(): string[]; run(name: string, input?: unknown): Promise<CaseResult> };
}

export interface PageSuiteOptions extends BundleOptions {
  /** What each case gets as its argument (by case name), e.g. data made in Node. */
  inputFor?: (name: string) => unknown;
}

/**
 * Bundles `entry`, opens it in Chromium and registers each case the page lists as one node:test case
 * under `title`. Awaited at the top of a test file (node:test takes tests registered after a top-level
 * await). Everything it started is closed after the suite.
 */
export async function describePage(title: string, entry: string, opts: PageSuiteOptions = {}): Promise<void> {
  const { describe, it, after } = await import('node:test');
  const script = await bundle(entry, opts);
  const served = await serve(script);
  const harness = await BrowserHarness.launch();
  const log: string[] = [];
  let names: string[];
  let page: Page;
  try {
    page = await harness.open(served.url, (line) => log.push(line));
    names = await caseNames(page);
  } catch (err) {
    await harness.close();
    await served.close();
    throw new Error(`${title}: the page did not load (${String(err)}); console: ${log.join('\n')}`);
  }
  describe(title, () => {
    after(async () => {
      await harness.close();
      await served.close();
    });
    for (const name of names) {
      it(name, async () => {
        const before = log.length;
        try {
          await runCase(page, name, opts.inputFor?.(name));
        } catch (err) {
          const console = log.slice(before);
          throw console.length > 0 ? new Error(`${(err as Error).message}\npage console:\n${console.join('\n')}`) : err;
        }
      });
    }
  });
}
