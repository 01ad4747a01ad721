// The files the agent keeps for the plugin's Kubernetes mode (the plugin/agent contract): the
// agent writes them, plugin/k8s/pod-legs.ts reads them, so an ADD costs one GET and one PATCH.
import * as path from 'path';

/** The node's ASN as a node label; the agent mirrors it to nodeAsnPath for the plugin. */
export const NODE_ASN_LABEL = 'podlegs.io/bgp-asn';
/** {"asn": N}, or absent when the node has no valid label. */
export const nodeAsnPath = (stateDir: string): string => path.join(stateDir, 'node-asn.json');

/** NADs as the agent caches them (stateDir/nads/<ns>/<name>.json); saves an API call per network. */
export const nadCachePath = (stateDir: string, ns: string, name: string): string => path.join(stateDir, 'nads', ns, `${name}.json`);
