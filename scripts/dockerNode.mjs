// The Node.js that production runs: the major version of the Dockerfile's `FROM node:<major>` line, and a
// binary of that major for tests and benches on machines whose own Node is another version.
//
// The binary comes from the npm registry (the `node` package installs a prebuilt Node) into a cache outside
// the repository, reused while it reports the right major. It is never a dependency of the project: that
// would put it first on the PATH of every npm script, while only the production-build test (and bench:relay's
// relay) should run under it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The runtime stage's ENV and CMD, read from the Dockerfile itself, so the production-build test and
 * bench:relay start the relay exactly as the image does and cannot drift from it.
 * @returns {{ env: Record<string, string>, cmd: string[] }}
 */
export function dockerRuntime(repo) {
  const text = readFileSync(join(repo, 'Dockerfile'), 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const env = {};
  for (const m of runtime.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of m[1].trim().split(/\s+/)) {
      const [k, v] = pair.split('=');
      env[k] = v;
    }
  }
  return { env, cmd: JSON.parse(/^CMD\s+(\[.*\])\s*$/m.exec(runtime)[1]) };
}

/** The one major version every `FROM node:<major>...` line of the Dockerfile names. Throws if they differ. */
export function dockerNodeMajor(repo) {
  const text = readFileSync(join(repo, 'Dockerfile'), 'utf8');
  const majors = [...text.matchAll(/^FROM\s+node:(\d+)\b/gm)].map((m) => Number(m[1]));
  if (majors.length === 0 || majors.some((m) => m !== majors[0])) throw new Error(`Dockerfile FROM lines name node majors ${JSON.stringify(majors)}`);
  return majors[0];
}

/** The major version of the Node binary at `bin`, or null if it does not run. */
export function majorOf(bin) {
  try {
    return Number(execFileSync(bin, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
  } catch {
    return null;
  }
}

/**
 * Path of a Node binary of `major`: this process's own if it is that major, else one installed from the
 * registry with `npm install node@<major>` into `$PEERCHAT_NODE_CACHE` (default ~/.cache/peerchat-node).
 */
export function nodeForMajor(major) {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  const dir = join(process.env.PEERCHAT_NODE_CACHE || join(homedir(), '.cache', 'peerchat-node'), `node-${major}`);
  const bin = join(dir, 'node_modules', '.bin', 'node');
  if (existsSync(bin) && majorOf(bin) === major) return bin;
  mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `node@${major}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const got = majorOf(bin);
  if (got !== major) throw new Error(`npm install node@${major} gave ${bin} major ${got}`);
  return bin;
}
