// SPEC.md VC9: the relay's supervisor of the virtual-client child process (here with stand-in children).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { superviseVirtualClients } from './superviseVirtualClients';

const node = (code: string) => ({ command: process.execPath, args: ['-e', code] });

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('superviseVirtualClients', () => {
  it('VC9 a child that dies is started again, with backoff, until stop', async () => {
    const events: string[] = [];
    const sup = superviseVirtualClients({
      entry: node('process.exit(3)'),
      cliArgs: [],
      restartBaseMs: 5,
      restartMaxMs: 20,
      log: (event, f) => events.push(`${event}:${f?.code ?? ''}`),
    });
    await until(() => sup.starts >= 3, 'three starts');
    await sup.stop();
    const starts = sup.starts;
    assert.ok(events.includes('virtual_exited:3'), events.join());
    // Nothing restarts after stop (the next start would come within restartMaxMs).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sup.starts, starts);
  });

  it('VC9 stop ends the child with SIGTERM and resolves once it is gone', async () => {
    const sup = superviseVirtualClients({ entry: node("setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0));"), cliArgs: [] });
    await until(() => sup.pid !== undefined, 'a child');
    const pid = sup.pid!;
    await sup.stop();
    assert.equal(isAlive(pid), false);
    assert.equal(sup.starts, 1);
  });

  it('VC9 a child that ignores SIGTERM is killed after the grace period', async () => {
    const ready = join(mkdtempSync(join(tmpdir(), 'peerchat-sup-')), 'ready');
    const sup = superviseVirtualClients({
      // Writes `ready` once its SIGTERM handler is in place, so the test knows SIGTERM will be ignored.
      entry: node(`process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); require('node:fs').writeFileSync(${JSON.stringify(ready)}, '')`),
      cliArgs: [],
      stopTimeoutMs: 300,
    });
    await until(() => existsSync(ready), 'the child to be ready');
    const pid = sup.pid!;
    const t0 = Date.now();
    await sup.stop();
    assert.equal(isAlive(pid), false);
    assert.ok(Date.now() - t0 >= 250, 'it took SIGKILL after the grace');
    rmSync(dirname(ready), { recursive: true, force: true });
  });
});
