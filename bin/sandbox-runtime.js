#!/usr/bin/env node
'use strict';
// sandbox-runtime's Node side (src/runtime): runc's command line over a bundle. The installed
// command is bin/sandbox-runtime (native/src/runtime.c), which serves start, state, kill, delete
// and ps itself and execs Node with this file for everything else; loaded by bin/launch.js.
require('./launch.js')('sandbox-runtime.js');
