// The schema is a document people read in their editor: every property has words and an example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';

const schema = JSON.parse(readFileSync(join(ROOT, 'schema/sandbox.schema.json'), 'utf8'));

function* properties(node: unknown, path: string): Generator<[string, Record<string, unknown>]> {
  if (!node || typeof node !== 'object') return;
  const n = node as Record<string, unknown>;
  for (const [k, v] of Object.entries((n.properties as Record<string, unknown>) ?? {})) {
    yield [`${path}.${k}`, v as Record<string, unknown>];
    yield* properties(v, `${path}.${k}`);
  }
  for (const key of ['items', 'additionalProperties', 'then']) if (n[key] && typeof n[key] === 'object') yield* properties(n[key], `${path}${key === 'items' ? '[]' : ''}`);
  for (const key of ['allOf', 'anyOf', 'oneOf']) for (const sub of (n[key] as unknown[]) ?? []) yield* properties(sub, path);
}

test('the schema is JSON Schema 2020-12 and rejects unknown keys', () => {
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(schema.additionalProperties, false);
  assert.ok(schema.patternProperties['^x-']);
});

test('every property has a description and an example', () => {
  const all = [...properties(schema, '')];
  assert.ok(all.length > 90, `${all.length} properties`);
  for (const [path, p] of all) {
    assert.equal(typeof p.description, 'string', `${path} has no description`);
    assert.ok(Array.isArray(p.examples) && p.examples.length, `${path} has no example`);
  }
});

test('it covers the keys the issue lists', () => {
  const keys = Object.keys(schema.properties);
  for (const k of ['version', 'name', 'image', 'rootfs', 'command', 'entrypoint', 'env', 'env_file', 'workdir', 'user', 'group_add', 'hostname', 'detach', 'tty', 'stdin_open', 'init', 'stop_signal', 'stop_grace_period', 'ports', 'volumes', 'network', 'dns', 'extra_hosts', 'namespaces', 'resources', 'cap_add', 'cap_drop', 'security', 'ulimits', 'sysctls', 'devices']) assert.ok(keys.includes(k), k);
  assert.deepEqual(Object.keys(schema.properties.resources.properties).sort(), ['cgroup_parent', 'cgroup_path', 'cpu_shares', 'cpus', 'cpuset', 'cpuset_mems', 'device_cgroup_rules', 'device_read_bps', 'device_read_iops', 'device_write_bps', 'device_write_iops', 'io_weight', 'memory', 'memory_reservation', 'memory_swap', 'pids']);
});
