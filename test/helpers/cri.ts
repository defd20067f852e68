// A small CRI client for the CRI test: the RuntimeService calls of test/fixtures/cri (a subset of
// Kubernetes' runtime.v1) over a containerd's gRPC socket, as the kubelet makes them.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { ROOT } from './load';

export type CriCall = <T = Record<string, any>>(method: string, req: Record<string, unknown>) => Promise<T>;

/** A client of the socket's RuntimeService; `call` rejects with the gRPC error's text. */
export function criClient(socket: string): { call: CriCall; close: () => void } {
  // Enums as their names, 64-bit integers as numbers, absent fields as their defaults.
  const def = loadSync(join(ROOT, 'test/fixtures/cri/runtime-v1.proto'), { keepCase: true, longs: Number, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
  const call: CriCall = (method, req) => new Promise((res, rej) => {
    client[method]!(req, { deadline: Date.now() + 120_000 }, (e: grpc.ServiceError | null, r: any) => (e ? rej(new Error(`${method}: ${e.details || e.message}`)) : res(r)));
  });
  return { call, close: () => client.close() };
}
