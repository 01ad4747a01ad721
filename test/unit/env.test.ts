import { parseCniArgs, readEnv } from '../../plugin/cni/env';
import { CniError } from '../../plugin/cni/errors';

const codeOf = (fn: () => unknown): number | undefined => {
  try { fn(); } catch (e) { if (e instanceof CniError) return e.code; throw e; }
  return undefined;
};
const env = (over: Record<string, string | undefined>): NodeJS.ProcessEnv => ({
  CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', ...over,
});

describe('CNI_ARGS as libcni reads it', () => {
  it('reads kubelet\'s arguments', () => {
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=nf;K8S_POD_NAME=pa;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u-1'))
      .toEqual(new Map([['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', 'nf'], ['K8S_POD_NAME', 'pa'], ['K8S_POD_INFRA_CONTAINER_ID', 'c1'], ['K8S_POD_UID', 'u-1']]));
    expect(parseCniArgs('K=')).toEqual(new Map([['K', '']]));
  });
  it.each(['K8S_POD_NAME=a=b', 'A=1;B==2', 'foo', '=x', 'A B=1'])('refuses %p with code 4', (raw) => {
    expect(codeOf(() => parseCniArgs(raw))).toBe(4);
  });
});

describe('DEL needs only what finds its state', () => {
  it('ignores a malformed CNI_ARGS or CNI_NETNS on DEL (they name nothing DEL uses)', () => {
    const e = readEnv(env({ CNI_COMMAND: 'DEL', CNI_ARGS: 'K8S_POD_NAME=a=b', CNI_NETNS: 'relative/ns' }));
    expect(e.args.size).toBe(0);
    expect(e.containerId).toBe('c1');
  });
  it('still refuses them for ADD', () => {
    expect(codeOf(() => readEnv(env({ CNI_ARGS: 'K8S_POD_NAME=a=b' })))).toBe(4);
    expect(codeOf(() => readEnv(env({ CNI_NETNS: 'relative/ns' })))).toBe(4);
  });
  it.each([{ CNI_CONTAINERID: '../x' }, { CNI_IFNAME: 'a/b' }, { CNI_CONTAINERID: undefined }])('refuses %p on DEL (it names the state file)', (over) => {
    expect(codeOf(() => readEnv(env({ CNI_COMMAND: 'DEL', ...over })))).toBe(4);
  });
});
