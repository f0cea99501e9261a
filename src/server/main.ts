// Relay entry point: configuration from the environment (config.ts), the relay (with its PeerJS signalling
// endpoint, createRelay.ts), and graceful shutdown on SIGTERM/SIGINT (SPEC.md R12, R14).
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config';
import { createRelay } from './createRelay';
import { createLogger } from './logger';
import { boundHttpParserPool } from './httpParserPool';
import { startIdleGc } from './idleGc';
import { startMallocTrim } from './mallocTrim';
import { warnOnProxiedClients } from './proxyWarning';
import { superviseVirtualClients, virtualEntry } from '../virtual/superviseVirtualClients';

async function main(): Promise<void> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // Both streams: a JSON line for log shippers, plain text for whoever runs it by hand.
      process.stdout.write(`${JSON.stringify({ t: new Date().toISOString(), level: 'error', event: 'config_error', code: err.code, message: err.message })}\n`);
      process.stderr.write(`peerchat: refusing to start: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { config } = loaded;
  const log = createLogger(loaded.logLevel);
  log.info('relay_key', { source: loaded.keyNote });

  process.on('unhandledRejection', (reason) => log.error('unhandled_rejection', { err: String(reason) }));
  process.on('uncaughtException', (err) => {
    // State may be corrupt; exit and let the supervisor restart us (clients reconnect with jitter).
    log.error('uncaught_exception', { err: String(err), stack: err.stack });
    process.exit(1);
  });

  const relay = await createRelay({
    ...config,
    port: loaded.port,
    host: loaded.host,
    logger: log,
    staticDir: loaded.staticDir,
    defaultMetrics: true,
    clientIpHeader: loaded.clientIpHeader,
  });
  warnOnProxiedClients(relay.server, { mode: config.mode, clientIpHeader: loaded.clientIpHeader, warn: (event, fields) => log.warn(event, fields) });

  // Free C-heap pages go back to the OS after major GCs (mallocTrim.ts): a login storm otherwise leaves
  // ~5 MB of freed socket and frame buffers resident at 1,000 clients.
  const trimmer = startMallocTrim();
  // And the garbage a storm leaves in V8's old space is collected once the relay is idle (idleGc.ts).
  const idleGc = startIdleGc();
  // Idle HTTP parsers, ~10 KiB each, that Node would keep up to 1,000 of after a storm of upgrades.
  const parserPool = boundHttpParserPool();
  log.info('memory_bounds', { mallocTrim: trimmer.active, idleGc: idleGc.active, httpParserPool: parserPool });
  relay.addShutdownHook(() => {
    trimmer.stop();
    idleGc.stop();
  });

  // PEERCHAT_VIRTUAL_CLIENTS=N: N virtual clients in ONE child process (SPEC.md VC9), so a wrtc crash
  // cannot take the relay down; restarted with backoff if it dies, stopped on shutdown.
  if (loaded.virtualClients > 0) {
    const entry = virtualEntry(import.meta.url);
    if (!entry) {
      log.error('virtual_clients_unavailable', { reason: 'virtual client entry point not found next to the relay' });
    } else {
      const cliArgs = ['--relay', relay.url, '--count', String(loaded.virtualClients), '--key-dir', join(loaded.dataDir, 'virtual'), '--json', '--status-every', '60s'];
      const virtuals = superviseVirtualClients({ entry, cliArgs, log: (event, fields) => (event === 'virtual_exited' ? log.warn : log.info)(event, fields) });
      relay.addShutdownHook(() => virtuals.stop());
    }
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting_down', { signal });
    // A stuck close must not keep a supervisor waiting forever.
    setTimeout(() => {
      log.error('shutdown_timeout', {});
      process.exit(1);
    }, 10_000).unref();
    relay.close().then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown_error', { err: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`peerchat: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
