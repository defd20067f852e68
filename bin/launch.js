'use strict';
// What the installed commands' Node side runs (bin/sandbox.js; bin/sandbox-runtime.js, which the
// native sandbox-runtime execs): load a bundle of dist/ through a V8 code cache made at build
// time, which saves compiling the bundle on every start (start-up is a requirement: see
// test/bench; each runtime command is a process of its own). Without a cache, or with one from
// another Node, the bundle is compiled from its text.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
// The CommonJS loader's own Module class: its createRequire is the one node:module exports, whose
// public module (source maps, hooks) a start need not load.
const { createRequire } = module.constructor.createRequire ? module.constructor : require('module');

// A reader that went away (`sandbox logs NAME | head -3`, `sandbox schema | head -c1`) makes a
// write to the standard output or error fail with EPIPE, which Node's stream emits as an 'error'
// event: unhandled, Node prints a stack trace. The command ends quietly instead, with 141 (128 +
// SIGPIPE), as a C or Go program that the signal ends (docker's CLI among them). A terminal that
// went away (its window closed, the SSH session dropped: SIGHUP) fails every write with EIO: that
// is ignored, since nobody is left to read it and a foreground `up` or `run` still has to stop its
// sandbox and undo what it set up. Any other error of those streams is thrown as before. The streams are made when first read (process.stdout's own
// getter), so the listener is added then: a command that never makes them pays nothing.
for (const name of ['stdout', 'stderr']) {
  const own = Object.getOwnPropertyDescriptor(process, name);
  if (!own || !own.get || !own.configurable) continue;
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: own.enumerable,
    get() {
      const stream = own.get.call(process);
      Object.defineProperty(process, name, { configurable: true, enumerable: own.enumerable, writable: true, value: stream });
      stream.on('error', (e) => {
        if (e && e.code === 'EPIPE') process.exit(141);
        if (e && e.code === 'EIO' && stream.isTTY) return;
        throw e;
      });
      return stream;
    },
  });
}

module.exports = function launch(bundle) {
  const file = path.join(__dirname, '..', 'dist', bundle);
  const cacheFile = `${file}.cache`;
  const writeCache = process.env.SANDBOX_WRITE_CODE_CACHE === '1';
  let cachedData;
  if (!writeCache) try { cachedData = fs.readFileSync(cacheFile); } catch { /* no cache: compile */ }

  // The build makes the bundle ASCII (scripts/build.mjs), so Latin-1 reads it as it is, without
  // decoding; and writes it already inside Node's CommonJS wrapper, a function of exports, require,
  // module, __filename and __dirname, so that the text read is what is compiled (no joined copy).
  const script = new vm.Script(fs.readFileSync(file, 'latin1'), { filename: file, cachedData });
  const mod = { exports: {}, filename: file, id: file, loaded: false };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  // At build time (SANDBOX_WRITE_CODE_CACHE=1) the commands of SANDBOX_CACHE_ALSO (a JSON list of
  // argument lists) run after this one, so that the cache holds what each of them compiled.
  const also = writeCache && process.env.SANDBOX_CACHE_ALSO ? JSON.parse(process.env.SANDBOX_CACHE_ALSO) : [];
  (async () => {
    let code = await mod.exports.main(process.argv.slice(2));
    for (const argv of also) code = await mod.exports.main(argv);
    if (writeCache) fs.writeFileSync(cacheFile, script.createCachedData());
    process.exitCode = code;
  })();
};
