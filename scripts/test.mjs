#!/usr/bin/env node
// `npm test`: every *.test.ts under src/ and e2e/ through Node's own test runner (tsx for TypeScript).
// Extra arguments filter files by substring: `npm test -- relay` runs only files whose path contains "relay".
//
// The Chromium end-to-end scenarios (e2e/scenarios, all but Firefox) run inside a network namespace with
// no way out where the runner can make one (root and `ip netns`): there, a scenario that reached for any
// other host would fail instead of quietly working on a developer's laptop. Elsewhere
// they run on the machine's loopback, and the runner says so. Firefox's data channel does not connect
// inside such a namespace (platform notes), so its scenario runs outside; it too only uses loopback.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const HELP = `usage: npm test [-- <substring>... [--node-test-flag]...]
  <substring>   run only test files whose path contains it (no filter: the type check runs first)
  --<flag>      passed to node --test (e.g. --test-name-pattern=E2E)
environment:
  PEERCHAT_NETNS=0       run the Chromium scenarios on this machine's loopback, not in a namespace
  PEERCHAT_E2E_KEEP=1    keep every scenario's screenshots, console logs and relay log under test-results/
  PEERCHAT_CHROMIUM, PEERCHAT_FIREFOX   browser binaries (default /usr/bin/chromium, /usr/bin/firefox-esr)`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(HELP);
  process.exit(0);
}
const roots = ['src', 'e2e'];
const filters = args.filter((a) => !a.startsWith('-'));
const passthrough = args.filter((a) => a.startsWith('-'));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.test\.tsx?$/.test(name)) out.push(p);
  }
  return out;
}

const files = roots
  .flatMap((r) => walk(r, []))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The whole suite starts with the type check, so a type error fails `npm test` like a failing test.
if (filters.length === 0) {
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json'], {
    stdio: 'inherit',
  });
  if (tsc.status !== 0) {
    console.error('typecheck failed');
    process.exit(1);
  }
}

const isChromiumScenario = (f) => f.startsWith(join('e2e', 'scenarios')) && !/firefox/i.test(f);
const scenarios = files.filter(isChromiumScenario);
const rest = files.filter((f) => !isChromiumScenario(f));
const nodeTest = (list) => [process.execPath, '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=180000', ...passthrough, ...list];

let current = null;
function run([cmd, ...argv], env = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { stdio: 'inherit', env: { ...process.env, ...env } });
    current = p;
    p.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    p.once('error', () => resolve(1));
  });
}

const NS_LINK = 'e2e0';
const NS_ADDR = '192.0.2.1';
const NS_GATEWAY = '192.0.2.2';

/** A namespace with no way out, or null (with why) where this runner cannot make one. */
function makeNamespace() {
  if (process.env.PEERCHAT_NETNS === '0') return { name: null, why: 'PEERCHAT_NETNS=0' };
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { name: null, why: 'not root on Linux' };
  const name = `peerchat-e2e-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return { name: null, why: `ip netns add failed: ${(add.stderr || add.error?.message || '').trim()}` };
  // Chromium gathers no WebRTC candidate at all where loopback is the only interface and there is no
  // default route (with --allow-loopback-in-peer-connection and without mDNS names, tried here): pages
  // never connected. So the namespace also holds a veth pair whose BOTH ends are inside it, one end with
  // a TEST-NET-1 address (RFC 5737) and the default route through it. Nothing leads out of the namespace:
  // a packet for any other address goes to the other end, which has no address, and is dropped.
  const steps = [
    ['ip', 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', NS_LINK, 'type', 'veth', 'peer', 'name', `${NS_LINK}p`],
    ['ip', 'addr', 'add', `${NS_ADDR}/24`, 'dev', NS_LINK],
    ['ip', 'link', 'set', NS_LINK, 'up'],
    ['ip', 'link', 'set', `${NS_LINK}p`, 'up'],
    ['ip', 'route', 'add', 'default', 'via', NS_GATEWAY, 'dev', NS_LINK],
  ];
  for (const step of steps) {
    const r = spawnSync('ip', ['netns', 'exec', name, ...step], { encoding: 'utf8' });
    if (r.status !== 0) {
      spawnSync('ip', ['netns', 'del', name]);
      return { name: null, why: `${step.join(' ')} failed: ${r.stderr.trim()}` };
    }
  }
  return { name, why: '' };
}

let ns = null;
const dropNamespace = () => {
  if (ns) spawnSync('ip', ['netns', 'del', ns]);
  ns = null;
};
// A signal is passed to the running child (Ctrl-C reaches it anyway); the namespace goes once it has ended.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => current?.kill(sig));
process.on('exit', dropNamespace);

let status = 0;
if (rest.length) status = await run(nodeTest(rest));
if (scenarios.length) {
  const made = makeNamespace();
  ns = made.name;
  if (ns) {
    console.log(`[test] ${scenarios.length} Chromium scenario file(s) run in network namespace ${ns} (loopback and a link that leads nowhere: ${NS_LINK} ${NS_ADDR})`);
    const name = ns;
    status = (await run(['ip', 'netns', 'exec', name, ...nodeTest(scenarios)], { PEERCHAT_E2E_NETNS: name, PEERCHAT_E2E_NETNS_LINK: NS_LINK })) || status;
    dropNamespace();
    console.log(`[test] network namespace ${name} removed`);
  } else {
    console.log(`[test] ${scenarios.length} Chromium scenario file(s) run on this machine's loopback, not in a network namespace (${made.why})`);
    status = (await run(nodeTest(scenarios))) || status;
  }
}
process.exit(status);
