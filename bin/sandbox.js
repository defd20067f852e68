#!/usr/bin/env node
'use strict';
// The installed command: the bundled CLI (src/cli), loaded by bin/launch.js. `validate` and `plan`,
// and `up`, have bundles of their own, made of what they alone need (scripts/build.mjs).
// bin/sandbox (native/src/cli.c) started this Node without NODE_EXTRA_CA_CERTS, which Node parses
// at every start: it is put back for what this process reads and starts, and the process is marked
// so that a run that must reach a registry over TLS restarts itself with it first
// (src/engine/extra-ca.ts).
if (process.env.SANDBOX_NODE_EXTRA_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.SANDBOX_NODE_EXTRA_CA_CERTS;
  delete process.env.SANDBOX_NODE_EXTRA_CA_CERTS;
  Object.defineProperty(process, Symbol.for('sandbox.extraCaDeferred'), { value: true });
}
const command = process.argv[2];
const bundle = command === 'plan' || command === 'validate' ? 'sandbox-plan.js' : command === 'up' ? 'sandbox-up.js' : 'sandbox.js';
require('./launch.js')(bundle);
