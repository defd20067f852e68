import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, ReferenceError } from '../../src/image/reference';

test('image references are normalised as Docker does', () => {
  const c = (s: string) => parseReference(s).canonical;
  assert.equal(c('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(c('ubuntu:24.04'), 'docker.io/library/ubuntu:24.04');
  assert.equal(c('jenkins/jenkins:lts'), 'docker.io/jenkins/jenkins:lts');
  assert.equal(c('host:5000/name:tag'), 'host:5000/name:tag');
  assert.equal(c('127.0.0.1:5000/a/b'), '127.0.0.1:5000/a/b:latest');
  assert.equal(c('localhost/x'), 'localhost/x:latest');
  assert.equal(c('index.docker.io/library/busybox'), 'docker.io/library/busybox:latest');
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parseReference(`busybox@${d}`), { registry: 'docker.io', repository: 'library/busybox', tag: undefined, digest: d, canonical: `docker.io/library/busybox@${d}` });
  assert.equal(c(`quay.io/org/app:1.2@${d}`), `quay.io/org/app:1.2@${d}`);
});

test('bad references are refused with the part that is wrong', () => {
  for (const [s, why] of [['Busybox', /"Busybox" is not a valid repository/], ['busybox@sha256:12', /digest must be sha256/], ['busybox:', /"" is not a valid tag/], ['a//b', /"" is not a valid repository/], ['', /empty/]] as const) {
    assert.throws(() => parseReference(s), (e: unknown) => e instanceof ReferenceError && why.test((e as Error).message), s);
  }
});

test('loopback registries are localhost, 127.0.0.0/8 and [::1], with or without a port; nothing else', async () => {
  const { isLoopbackRegistry, plainHttp } = await import('../../src/image/reference');
  for (const r of ['127.0.0.1:5000', '127.5.6.7', '127.5.6.7:5000', '[::1]:5000', '[::1]', 'localhost:5000', 'localhost', 'LOCALHOST:5000', '[0:0::1]:5000']) assert.equal(isLoopbackRegistry(r), true, r);
  for (const r of ['127.0.0.1.example.com', '127.0.0.1.example.com:5000', 'localhost.example.com', '128.0.0.1:5000', '10.0.0.1:5000', '[::2]:5000', 'docker.io', 'registry.test:5000', '']) assert.equal(isLoopbackRegistry(r), false, r);
  assert.equal(plainHttp('127.0.0.1:5000', []), 'loopback');
  assert.equal(plainHttp('reg.test:5000', ['reg.test:5000']), 'insecure');
  assert.equal(plainHttp('reg.test:5000', []), undefined);
});
