#!/usr/bin/env node
'use strict';
// The installed command: the bundled CLI (src/cli), loaded by bin/launch.js. `validate` and `plan`,
// and `up`, have bundles of their own, made of what they alone need (scripts/build.mjs).
const command = process.argv[2];
const bundle = command === 'plan' || command === 'validate' ? 'sandbox-plan.js' : command === 'up' ? 'sandbox-up.js' : 'sandbox.js';
require('./launch.js')(bundle);
