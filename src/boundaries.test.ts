// STYLE rule 3: boundaries you can see. src/shared imports nothing from server, client or virtual and no
// node: module outside the Node-only files; client and virtual take only *types* from server.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { it } from 'node:test';

const root = new URL('.', import.meta.url).pathname;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (/\.tsx?$/.test(name) && !/\.test\.tsx?$/.test(name)) out.push(p);
  }
  return out;
}

const importRe = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
function imports(file: string): { spec: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const out: { spec: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(importRe)) out.push({ spec: (m[3] ?? m[4])!, typeOnly: Boolean(m[2]) });
  return out;
}

/** Files in src/shared that only Node entry points import (they may use node: modules). */
const NODE_ONLY_SHARED = /(nodeBackend|Conformance|\.node)\.ts$|\/testing\//;

/** The top-level folder of src a relative import lands in ('shared', 'server', ...), or null for a package. */
function landsIn(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  return relative(root, resolve(dirname(file), spec)).split(sep)[0] ?? null;
}

it('B1 src/shared imports nothing from server, client or virtual (the client core: only the router type)', () => {
  const bad: string[] = [];
  for (const f of sources(join(root, 'shared'))) {
    for (const { spec, typeOnly } of imports(f)) {
      const dir = landsIn(f, spec);
      // The shared client core is client code: like client and virtual, it may take the router's TYPE (B2).
      const routerType = typeOnly && /(^|\/)server\/router$/.test(spec) && relative(root, f).startsWith(join('shared', 'client'));
      if ((dir === 'server' || dir === 'client' || dir === 'virtual') && !routerType) {
        bad.push(`${relative(root, f)} -> ${spec}`);
      }
      if (spec.startsWith('node:') && !NODE_ONLY_SHARED.test(f)) bad.push(`${relative(root, f)} -> ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
});

it('B2 client and virtual import only types from server', () => {
  const bad: string[] = [];
  for (const dir of ['client', 'virtual']) {
    for (const f of sources(join(root, dir))) {
      for (const { spec, typeOnly } of imports(f)) {
        if (spec.startsWith('.') && /(^|\/)server\//.test(spec) && !typeOnly) bad.push(`${relative(root, f)} -> ${spec}`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

it('B3 the shared client core runs in a browser: no Buffer, no process, no require', () => {
  const bad: string[] = [];
  for (const f of sources(join(root, 'shared', 'client'))) {
    const text = readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '');
    for (const word of ['Buffer', 'process.', 'require(', '__dirname']) if (text.includes(word)) bad.push(`${relative(root, f)}: ${word}`);
  }
  assert.deepEqual(bad, []);
});
