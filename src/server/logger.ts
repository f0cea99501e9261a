// One JSON object per line on stdout: what a log shipper (fly.io, journald) ingests without parsing rules.

export const LogLevel = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LogLevel;

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export function isLogLevel(s: string | undefined): s is LogLevel {
  return s !== undefined && Object.hasOwn(LogLevel, s);
}

/**
 * @param level lines below it are dropped; `silent` drops all (tests).
 * @param write the sink; defaults to stdout.
 */
export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const min = LogLevel[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, event: string, fields?: Record<string, unknown>): void => {
    if (LogLevel[lvl] < min) return;
    try {
      write(`${JSON.stringify({ t: new Date().toISOString(), level: lvl, event, ...fields })}\n`);
    } catch {
      // A log line must never take the relay down (e.g. a field with a cycle or a BigInt).
    }
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
  };
}

export const silentLogger: Logger = createLogger('silent');
