// A person in Firefox (puppeteer-core over WebDriver BiDi), driven like kit.ts's Chromium Person: by
// accessible names and what is on screen. Only what the Firefox scenario needs.
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { launchFirefox } from '../fixtures/firefox';
import { type Actor, KEEP_NAMES_SHIM, LINE, MESSAGES, type Relay, readLines, seesConfirmed, type Stage, until, WAIT } from './kit';

export class FirefoxPerson implements Actor {
  page!: Page;
  errors: string[] = [];
  private closed = false;
  private constructor(
    private readonly stage: Stage,
    readonly name: string,
    readonly relay: Relay,
    private readonly browser: Browser,
  ) {}

  static async open(stage: Stage, name: string, relay: Relay): Promise<FirefoxPerson> {
    const p = stage.own(new FirefoxPerson(stage, name, relay, await launchFirefox()));
    p.page = await p.browser.newPage();
    // The scenario's generous deadline for every implicit wait, as for the Chromium people (kit.ts).
    p.page.setDefaultTimeout(WAIT);
    await p.page.setViewport({ width: 1280, height: 800 });
    await p.page.evaluateOnNewDocument(KEEP_NAMES_SHIM);
    const log = `${name}-console.log`;
    stage.log(log, `--- ${name} (Firefox ${await p.browser.version()}) opens ${relay.url}`);
    p.page.on('console', (m) => stage.log(log, `[${m.type()}] ${m.text()}`));
    p.page.on('pageerror', (e) => {
      p.errors.push(String(e));
      stage.log(log, `[pageerror] ${String(e)}`);
    });
    await p.page.goto(relay.url);
    return p;
  }

  /** `::-p-aria(...)`: Puppeteer's ARIA query (role and accessible name), as getByRole in Playwright. */
  byRole(role: string, name: string) {
    return this.page.locator(`::-p-aria([role="${role}"][name="${name}"])`).setTimeout(WAIT);
  }

  async createIdentity(): Promise<void> {
    await this.byRole('textbox', 'What should people call you?').fill(this.name);
    await this.byRole('button', 'Start chatting').click();
    await until(`${this.name} in #general`, () => this.page.url().endsWith('/c/general'));
    await this.online();
  }

  async online(): Promise<void> {
    await until(`${this.name} online`, () => this.page.$eval('[data-testid=connection]', (e) => e.getAttribute('data-state') === 'online').catch(() => false));
  }

  async send(text: string): Promise<void> {
    const box = await this.page.waitForSelector('[data-testid=composer]', { timeout: WAIT });
    await box!.evaluate((e) => (e as HTMLTextAreaElement).focus());
    await this.page.keyboard.type(text);
    await this.page.keyboard.press('Enter');
  }

  async peopleOnline(): Promise<number> {
    return this.page.$$eval('[data-testid=member][data-kind=browser]', (els) => els.length);
  }

  lines(): Promise<{ text: string; state: string }[]> {
    return this.page.$$eval(MESSAGES, readLines, LINE.source);
  }

  seesConfirmed(expected: string[]): Promise<string[]> {
    return seesConfirmed(this, expected);
  }

  async screenshot(tag: string): Promise<string> {
    const path = join(this.stage.dir, `${this.name}-${tag}.png`) as `${string}.png`;
    await this.page.screenshot({ path });
    return path;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.browser.close().catch(() => {});
  }
}
