// Where and how to reach the API server: what a kubeconfig resolves to, whoever read it.
export interface ApiTarget {
  server: string;            // https://host:port or http://host:port
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecureSkipTLSVerify?: boolean;
}
