import { constants } from 'os';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, num]) => [num, name]),
);

/** A kernel operation failed; carries the errno so callers can branch on it. */
export class KernelError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly op: string;
  constructor(op: string, errno: number, cause?: unknown) {
    const code = errnoNames.get(errno) ?? `errno ${errno}`;
    super(`${op}: ${code}`, { cause });
    this.name = 'KernelError';
    this.errno = errno;
    this.code = code;
    this.op = op;
  }
  is(...codes: string[]): boolean { return codes.includes(this.code); }
}

/** Normalises whatever node-netlink or the addon threw into a KernelError. */
export function toKernelError(op: string, e: unknown): KernelError {
  if (e instanceof KernelError) return e;
  const err = e as { errno?: number; code?: string; message?: string };
  let errno = typeof err?.errno === 'number' ? Math.abs(err.errno) : 0;
  if (!errno && typeof err?.code === 'string') {
    errno = (constants.errno as Record<string, number>)[err.code] ?? 0;
  }
  if (!errno && typeof err?.message === 'string') {
    const m = /\b(E[A-Z]+)\b/.exec(err.message);
    if (m) errno = (constants.errno as Record<string, number>)[m[1]] ?? 0;
  }
  return new KernelError(op, errno || constants.errno.EIO, e);
}

export const isNotFound = (e: unknown): boolean =>
  e instanceof KernelError && e.is('ENODEV', 'ENOENT', 'ESRCH', 'ENXIO');
export const isExists = (e: unknown): boolean => e instanceof KernelError && e.is('EEXIST');
