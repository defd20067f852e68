#!/usr/bin/env node
'use strict';
// The installed OCI runtime: runc's command line over a bundle (src/runtime), for containerd's
// shim, podman and the runtime-tools; loaded by bin/launch.js.
require('./launch.js')('sandbox-runtime.js');
