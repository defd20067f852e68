#!/usr/bin/env node
'use strict';
// The installed command: the bundled CLI (src/cli), loaded by bin/launch.js.
require('./launch.js')('sandbox.js');
