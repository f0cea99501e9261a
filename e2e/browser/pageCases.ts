// The page side of harness.ts: a page entry registers named async cases here; Node lists them and runs
// each one with `page.evaluate`. Imported only by browser bundles.

export interface PageCase {
  name: string;
  run(input?: unknown): Promise<void>;
}

/** Makes `cases` runnable from Node. Call once, after every case is known. */
export function registerCases(cases: readonly PageCase[]): void {
  const byName = new Map(cases.map((c) => [c.name, c]));
  if (byName.size !== cases.length) throw new Error('two page cases share a name');
  (globalThis as Record<string, unknown>).peerchatCases = {
    names: () => cases.map((c) => c.name),
    async run(name: string, input?: unknown): Promise<{ ok: boolean; error?: string }> {
      const c = byName.get(name);
      if (!c) return { ok: false, error: `no page case named ${name}` };
      try {
        await c.run(input);
        return { ok: true };
      } catch (err) {
        return { ok: false, error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) };
      }
    },
  };
}
