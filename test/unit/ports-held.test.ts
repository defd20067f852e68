// Ports follow the command: a sandbox holds its published host ports while it runs (a restart
// keeps them) and none once its command has ended for good; the preflight of another sandbox
// refuses a port that a running one holds, naming it. Pure functions of engine/state.ts and
// engine/preflight.ts; the behaviour with real clients is in test/integration/restart.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heldPorts, type SandboxState } from '../../src/host/state';
import { portHolder } from '../../src/engine/preflight';

const state = (ports: SandboxState['ports']): SandboxState => ({ name: 'web', pid: 42, command: ['x'], file: '', digest: '', startedAt: '', ports, stopSignal: 15, stopGraceMs: 10_000 });
const p8080 = { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' };

test('a sandbox holds its ports while it runs, none once it has ended or before its state is written', () => {
  assert.deepEqual(heldPorts({ running: true, state: state([p8080]) }), [p8080]);
  assert.deepEqual(heldPorts({ running: false, state: state([p8080]) }), []);
  assert.deepEqual(heldPorts({ running: true, state: undefined }), []);
});

test('a port held by another sandbox is found on the same address, on a wildcard either side, and not on another port, protocol or address', () => {
  const others = [{ name: 'jenkins', ports: [p8080] }, { name: 'any', ports: [{ hostIp: '', hostPort: 9000, protocol: 'udp' }] }];
  assert.deepEqual(portHolder({ hostIp: '127.0.0.1', hostPort: 8080, protocol: 'tcp' }, others), { name: 'jenkins', shown: '127.0.0.1:8080/tcp' });
  assert.equal(portHolder({ hostIp: '0.0.0.0', hostPort: 8080, protocol: 'tcp' }, others)?.name, 'jenkins');
  assert.equal(portHolder({ hostIp: '', hostPort: 8080, protocol: 'tcp' }, others)?.name, 'jenkins');
  assert.equal(portHolder({ hostIp: '127.0.0.2', hostPort: 8080, protocol: 'tcp' }, others), undefined);
  assert.equal(portHolder({ hostIp: '127.0.0.1', hostPort: 8080, protocol: 'udp' }, others), undefined);
  assert.equal(portHolder({ hostIp: '127.0.0.1', hostPort: 8081, protocol: 'tcp' }, others), undefined);
  assert.deepEqual(portHolder({ hostIp: '10.1.2.3', hostPort: 9000, protocol: 'udp' }, others), { name: 'any', shown: '*:9000/udp' });
  // A free port (0: the kernel picks one) never conflicts; an exited sandbox lists none (heldPorts).
  assert.equal(portHolder({ hostIp: '', hostPort: 0, protocol: 'tcp' }, [{ name: 'x', ports: [{ hostIp: '', hostPort: 0, protocol: 'tcp' }] }]), undefined);
  assert.equal(portHolder({ hostIp: '127.0.0.1', hostPort: 8080, protocol: 'tcp' }, [{ name: 'done', ports: heldPorts({ running: false, state: state([p8080]) }) }]), undefined);
});
