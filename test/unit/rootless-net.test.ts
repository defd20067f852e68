// The pure parts of the rootless network module: pasta's port options, the warnings each tool's
// port maps carry, and the search of PATH for the tools.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pastaPortArgs, portWarnings, type UserNetPort } from '../../src/host/rootless-net';
import { onPath } from '../../src/engine/probe';

const port = (hostIp: string, hostPort: number, containerPort: number, protocol: 'tcp' | 'udp'): UserNetPort => ({ hostIp, hostPort, containerPort, protocol });

test('pasta gets one -t/-u per port, each with its own address, and "none" for a protocol with no port (pasta forwards every bound port by default)', () => {
  assert.deepEqual(pastaPortArgs([]), ['-t', 'none', '-u', 'none']);
  assert.deepEqual(pastaPortArgs([port('127.0.0.1', 8080, 80, 'tcp'), port('', 9090, 90, 'tcp'), port('::1', 53, 5353, 'udp')]),
    ['-t', '127.0.0.1/8080:80', '-t', '9090:90', '-u', '::1/53:5353']);
});

test('a UDP port map that a tool cannot answer on the host\'s loopback carries a warning; others do not', () => {
  const ports = [port('', 53, 53, 'udp'), port('', 5300, 53, 'udp'), port('192.0.2.1', 5301, 53, 'udp'), port('127.0.0.1', 8080, 80, 'tcp')];
  assert.deepEqual(portWarnings('pasta', ports).map((w) => w.split(':')[0]), ['UDP port 5300→53']);
  assert.deepEqual(portWarnings('slirp4netns', ports).map((w) => w.split(':')[0]), ['UDP port 53→53', 'UDP port 5300→53']);
});

test('the tools are found on PATH as absolute paths, the first of each name, and relative PATH entries are skipped', () => {
  const a = mkdtempSync(join(tmpdir(), 'rlnet-a-')), b = mkdtempSync(join(tmpdir(), 'rlnet-b-'));
  try {
    for (const [dir, name, mode] of [[a, 'pasta', 0o755], [b, 'pasta', 0o755], [b, 'slirp4netns', 0o755], [a, 'slirp4netns', 0o644]] as const) {
      writeFileSync(join(dir, name), '#!/bin/sh\n');
      chmodSync(join(dir, name), mode);
    }
    assert.deepEqual([onPath('pasta', `relative:${a}:${b}`), onPath('slirp4netns', `relative:${a}:${b}`)], [join(a, 'pasta'), join(b, 'slirp4netns')]);
    assert.equal(onPath('pasta', '/nonexistent'), undefined);
  } finally { rmSync(a, { recursive: true }); rmSync(b, { recursive: true }); }
});
