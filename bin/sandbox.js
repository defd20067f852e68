#!/usr/bin/env node
'use strict';
// The installed command: the bundled CLI (src/cli), loaded by bin/launch.js. `validate` and `plan`
// have a bundle of their own, made of what they alone need (scripts/build.mjs).
const command = process.argv[2];
require('./launch.js')(command === 'plan' || command === 'validate' ? 'sandbox-plan.js' : 'sandbox.js');
