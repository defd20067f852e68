#!/usr/bin/env node
'use strict';
// The installed OCI runtime: runc's command line over a bundle (src/runtime), for containerd's
// shim, podman and the runtime-tools. As bin/sandbox.js, it loads its bundle through a V8 code
// cache made at build time (each runtime command is a process of its own: start-up counts), and
// without a cache, or with one from another Node, as any module.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const Module = require('module');

const file = path.join(__dirname, '..', 'dist', 'sandbox-runtime.js');
const cacheFile = `${file}.cache`;
const writeCache = process.env.SANDBOX_WRITE_CODE_CACHE === '1';
let cachedData;
if (!writeCache) try { cachedData = fs.readFileSync(cacheFile); } catch { /* no cache: compile */ }

const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
const mod = { exports: {}, filename: file, id: file, loaded: false };
script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
mod.exports.main(process.argv.slice(2)).then((code) => {
  if (writeCache) fs.writeFileSync(cacheFile, script.createCachedData());
  process.exitCode = code;
});
