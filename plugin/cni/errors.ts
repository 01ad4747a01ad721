// CNI error codes (spec section "Error") plus podlegs' own, 100 and up.
export const Code = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  // podlegs-specific
  KernelFailure: 100,
  InterfaceExists: 101,
  IpamFailure: 102,
  RegistryFailure: 103,
  CheckFailed: 104,
} as const;
export type CniCode = (typeof Code)[keyof typeof Code];

/** An error that reaches the runtime as a CNI error object. */
export class CniError extends Error {
  constructor(readonly code: CniCode, msg: string, readonly details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = 'CniError';
  }
  toJSON(cniVersion: string): Record<string, unknown> {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export const invalidConfig = (msg: string): CniError => new CniError(Code.InvalidConfig, msg);
