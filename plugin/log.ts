// winston, JSON lines, to a file: stdout belongs to the CNI result. winston is
// loaded on the first log call so that a quiet invocation does not pay for it.
import * as fs from 'fs';
import * as path from 'path';

/** The plugin config's `log` key (parsed by plugin/cni/config). */
export interface LogConf { file?: string; level: string }

export interface Log {
  debug(msg: string, meta?: Record<string, unknown>): void;
  info(msg: string, meta?: Record<string, unknown>): void;
  warn(msg: string, meta?: Record<string, unknown>): void;
  error(msg: string, meta?: Record<string, unknown>): void;
}

type Level = keyof Log;
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export function createLog(conf: LogConf, base: Record<string, unknown>, toStderr = false): Log {
  let logger: { log(level: string, msg: string, meta?: Record<string, unknown>): void } | undefined;
  const open = (): NonNullable<typeof logger> => {
    if (logger) return logger;
    /* eslint-disable @typescript-eslint/no-require-imports */
    const winston = require('winston') as typeof import('winston');
    const Transport = require('winston-transport') as typeof import('winston-transport');
    const { MESSAGE } = require('triple-beam') as { MESSAGE: symbol };
    /* eslint-enable */
    const file = conf.file;
    // Synchronous appends: a CNI process exits right after its answer and must not lose lines.
    class SyncFile extends Transport {
      override log(info: Record<string | symbol, unknown>, next: () => void): void {
        if (file) {
          try {
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.appendFileSync(file, `${String(info[MESSAGE])}\n`);
          } catch { /* a broken log must never break the network */ }
        }
        if (toStderr) process.stderr.write(`${String(info[MESSAGE])}\n`);
        next();
      }
    }
    logger = winston.createLogger({
      level: conf.level,
      defaultMeta: base,
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      transports: [new SyncFile()],
    });
    return logger;
  };
  const at = (level: Level) => (msg: string, meta?: Record<string, unknown>): void => {
    if (RANK[level] > RANK[(conf.level as Level) ?? 'info']) return;
    if (!conf.file && !toStderr) return;
    open().log(level, msg, meta);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
