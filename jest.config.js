// jest projects: unit (pure, any machine), kernel and lab (root, network namespaces, run
// serially by test/run-all.sh), vm (inside the full-kernel VM only, see test/vm/).
const base = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json', diagnostics: false }] },
};
module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...base, displayName: 'kernel', testMatch: ['<rootDir>/test/kernel/**/*.test.ts'] },
    { ...base, displayName: 'lab', testMatch: ['<rootDir>/test/lab/**/*.test.ts'] },
    // Needs 8021q, clsact and cls_bpf: test/vm/run-trunk-suite.sh runs it natively or in a
    // QEMU VM; run-all.sh selects unit/kernel/lab explicitly so a host run never includes it.
    { ...base, displayName: 'vm', testMatch: ['<rootDir>/test/vm/**/*.test.ts'] },
  ],
};
