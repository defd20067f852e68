#!/usr/bin/env node
'use strict';
// The installed OCI runtime: runc's command line over a bundle (src/runtime), for containerd's
// shim, podman and the runtime-tools. It loads the bundle built from the same sources as sandbox.
const path = require('path');
const { main } = require(path.join(__dirname, '..', 'dist', 'sandbox-runtime.js'));
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
