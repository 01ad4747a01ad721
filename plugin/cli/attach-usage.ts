// Usage of `podlegs attach` / `podlegs detach` (plugin/cli/attach-cmd.ts), kept apart so the CLI table loads without it.
export const ATTACH_USAGE = `usage: podlegs attach --config FILE --container ID --netns PATH --network NAME
                      [--interface NAME] [--ip CIDR]... [--mac MAC] [--ifname eth0]
  attach one more leg to a running container (static mode): NAME is an entry of the config's
  "networks"; without --interface the leg is the next free netN; without --ip the network's IPAM
  runs. FILE is the conflist the runtime uses (its podlegs entry) or that entry alone. Prints the
  new leg as JSON. The container's DEL removes it with the others.`;

export const DETACH_USAGE = `usage: podlegs detach --config FILE --container ID (--interface NAME | --network NAME) [--netns PATH] [--ifname eth0]
  detach one leg from a running container (static mode), identified as recorded when it was
  attached: its interface, or its network.`;
