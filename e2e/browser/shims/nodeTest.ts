// Stands in for `node:test` in browser bundles (harness.ts `replace`): a suite written for Node
// registers its cases here, and the page entry hands them to registerCases. Only what our suites use.
import type { PageCase } from '../pageCases';

export const collected: PageCase[] = [];
const prefix: string[] = [];

type Body = () => void | Promise<void>;

export function describe(name: string, fn: () => void): void {
  prefix.push(name);
  try {
    fn();
  } finally {
    prefix.pop();
  }
}

export function it(name: string, fn: Body): void {
  collected.push({ name: [...prefix, name].join(' > '), run: async () => void (await fn()) });
}

export const test = it;
