// Build everything a fresh clone needs, in order: the precompiled schema validator and the config
// type generated from the same schema, the public suffix module, the ABI mirror, the typed build
// used by the tests (tsc), the bundled CLI (esbuild) and the native library.
// Run by `npm install` (prepare) and `npm run build`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from './gen-abi.mjs';
import { generate as generateConfigTypes } from './gen-config-types.mjs';
import { generate as generatePublicSuffixes, OUTPUT as PUBLIC_SUFFIXES } from './gen-public-suffixes.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const step = (what) => process.stderr.write(`build: ${what}\n`);
const run = (cmd, args, what) => {
  try { execFileSync(cmd, args, { stdio: 'inherit' }); } catch { process.stderr.write(`build: ${what} failed (see above)\n`); process.exit(1); }
};

// 1. ajv standalone: the schema is compiled here, once, so that start-up only loads plain code.
// The type of a file as written (UserConfig) is generated from the same schema, and the validator
// is declared as the type guard of it: the schema is the one definition of a key.
step('schema validator');
const Ajv2020 = require('ajv/dist/2020').default;
const standalone = require('ajv/dist/standalone').default;
const schema = JSON.parse(readFileSync(join(root, 'schema/sandbox.schema.json'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true, code: { source: true, lines: false } });
ajv.addVocabulary(['x-message']);
const code = standalone(ajv, ajv.compile(schema));
const gen = join(root, 'src/config/generated');
mkdirSync(gen, { recursive: true });
writeFileSync(join(gen, 'validate-schema.js'), code);
try { writeFileSync(join(gen, 'config-types.ts'), generateConfigTypes(schema)); } catch (e) { process.stderr.write(`build: config types failed: ${e.message}\n`); process.exit(1); }
writeFileSync(join(gen, 'validate-schema.d.ts'),
  "import type { ErrorObject } from 'ajv';\n" +
  "import type { UserConfig } from './config-types';\n" +
  'declare const validate: ((data: unknown) => data is UserConfig) & { errors?: ErrorObject[] | null };\n' +
  'export = validate;\n');

// The Public Suffix List (data/public_suffix_list.dat, vendored) as a module, for the egress rules'
// check of wildcards: src/model/generated/public-suffixes.ts.
step('public suffixes');
try { mkdirSync(dirname(PUBLIC_SUFFIXES), { recursive: true }); writeFileSync(PUBLIC_SUFFIXES, generatePublicSuffixes()); } catch (e) { process.stderr.write(`build: public suffixes failed: ${e.message}\n`); process.exit(1); }

// The TypeScript mirror of native/include/sbx.h (op numbers, flags, event phases, struct layouts),
// from the header and the C compiler: src/ffi/generated/abi.ts.
step('abi');
try { generate(); } catch (e) { process.stderr.write(`build: abi failed: ${e.message}\n`); process.exit(1); }

// 2. Type-check and emit build/ (src and tests) for the test runner.
step('tsc');
run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', root], 'tsc');

// 3. One bundle for the CLI. Modules only some commands need stay outside and are required lazily.
step('bundle');
const esbuild = require('esbuild');
// commander requires node:child_process (with net, stream, dgram behind it: ~5 ms of every start)
// only to run executable subcommands, which sandbox has none of: in the bundle, its require is
// made when first used.
const lazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(build) {
    build.onLoad({ filter: /commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const from = "const childProcess = require('node:child_process');";
      if (!text.includes(from)) throw new Error(`commander's ${args.path} no longer requires child_process as the build expects; update scripts/build.mjs`);
      return { contents: text.replace(from, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};
// Node's heavier built-in modules (crypto, child_process, net, zlib, dgram, tty: 2-4 ms each to load,
// sharing node:stream) are imported at the top of files that use them in one function: in the
// bundle every such import is an object whose properties load the module when first read, so
// that a command pays only for the modules it calls (`plan` none of them). A property is read at
// the call (esbuild compiles `spawn(…)` to `(0, import_x.spawn)(…)`), so what runs is unchanged.
const LAZY_BUILTINS = ['crypto', 'child_process', 'net', 'zlib', 'dgram', 'tty', 'stream', 'readline', 'http', 'https'];
// Each importing file gets an object of the names it imports alone (`crypto?createHash`): the bundle
// copies the object's properties once per importing file (esbuild's __toESM), and crypto has ~70
// (about 0.4 ms of every start for the seven files that import createHash). A file whose import
// of the module is not a list of names (a namespace, a default, a re-export) gets every name.
const importNames = (file, mod) => {
  const text = readFileSync(file, 'utf8');
  const from = String.raw`\s*from\s*['"](?:node:)?${mod}['"]`;
  if (new RegExp(String.raw`(?:import|export)\s+(?!(?:type\s+)?\{)[^;'"]*${from}|export\s*\{[^}]*\}${from}`).test(text)) return undefined;
  const names = new Set();
  for (const m of text.matchAll(new RegExp(String.raw`import\s+(?:type\s+)?\{([^}]*)\}${from}`, 'g'))) {
    for (const part of m[1].split(',')) { const n = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0].trim(); if (n) names.add(n); }
  }
  return names.size ? [...names].sort() : undefined;
};
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter }, (args) => {
      if (args.kind !== 'import-statement' || args.namespace !== 'file') return { path: args.path, external: true };
      const mod = args.path.replace(/^node:/, '');
      const names = importNames(args.importer, mod);
      return { path: names ? `${mod}?${names.join(',')}` : mod, namespace: 'lazy-builtin' };
    });
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const [mod, list] = args.path.split('?');
      const all = Object.keys(require(mod)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
      const names = list ? list.split(',').filter((k) => all.includes(k)) : all;
      const getters = names.map((k) => `  get ${k}() { return load().${k}; },`).join('\n');
      return { contents: `let m;\nconst load = () => m ??= require('node:${mod}');\nmodule.exports = {\n${getters}\n};\n`, loader: 'js' };
    });
  },
};
// The two bins from the same sources: the CLI, and sandbox-runtime (runc's command line over a bundle).
// The CLI is three bundles, which bin/sandbox.js chooses between by the command: `validate` and
// `plan`, and `up` (whose starts are measured against Node's own), load one made of what they
// reach alone (SANDBOX_BUNDLE: see buildProgram), smaller by a quarter and a tenth; every other
// command, the whole CLI.
// What bin/launch.js expects around a bundle: the parameters of Node's own CommonJS wrapper.
const BUNDLE_WRAPPER = ['(function (exports, require, module, __filename, __dirname) { ', '\n});'];
const BUNDLES = [['src/cli/main.ts', 'dist/sandbox.js'], ['src/cli/entry.ts', 'dist/sandbox-plan.js', 'plan'], ['src/cli/entry.ts', 'dist/sandbox-up.js', 'up'], ['src/runtime/argv.ts', 'dist/sandbox-runtime.js']];
for (const [entry, out, only] of BUNDLES) {
  await esbuild.build({
    plugins: [lazyChildProcess, lazyBuiltins],
    entryPoints: [join(root, entry)],
    outfile: join(root, out),
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true, legalComments: 'none',
    external: ['listr2', 'cosmiconfig', 'koffi'],
    define: { 'process.env.SANDBOX_BUNDLE': only ? JSON.stringify(only) : 'undefined' },
    logLevel: 'warning',
  });
  // bin/launch.js reads a bundle as Latin-1, which makes V8's one-byte string without decoding
  // UTF-8 (~1 ms of each start): the bundle must be ASCII. esbuild escapes strings, but not regular
  // expression literals; what it leaves is escaped here as \uXXXX, which means the same character
  // in a string, a template, a regular expression or a name.
  // The file is written inside the function that Node wraps a CommonJS module in (BUNDLE_WRAPPER),
  // so that bin/launch.js compiles the text as read: wrapping it at each start made a second copy of
  // the whole bundle in V8's young heap (the joined string flattened), ~1 ms of every start.
  const text = readFileSync(join(root, out), 'utf8').replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  writeFileSync(join(root, out), `${BUNDLE_WRAPPER[0]}${text}${BUNDLE_WRAPPER[1]}`);
}

// The library (src/api, package.json `exports`): the same sources bundled as CommonJS, an ES
// module over it naming each export, and its declarations, emitted by tsc from src/api/index.ts.
step('library');
await esbuild.build({
  plugins: [lazyChildProcess], entryPoints: [join(root, 'src/api/index.ts')], outfile: join(root, 'dist/api.js'), define: { 'process.env.SANDBOX_BUNDLE': 'undefined' },
  bundle: true, platform: 'node', target: 'node20', format: 'cjs', legalComments: 'none', external: ['listr2', 'cosmiconfig', 'koffi'], logLevel: 'warning',
});
const names = Object.keys(require(join(root, 'dist/api.js'))).filter((n) => n !== 'default' && n !== '__esModule').sort();
writeFileSync(join(root, 'dist/api.mjs'), `// The ES module face of dist/api.js (made by scripts/build.mjs).\nimport { createRequire } from 'node:module';\nconst api = createRequire(import.meta.url)('./api.js');\nexport const { ${names.join(', ')} } = api;\nexport default api;\n`);
rmSync(join(root, 'dist/types'), { recursive: true, force: true });
run(process.execPath, [require.resolve('typescript/bin/tsc'), join(root, 'src/api/index.ts'), '--declaration', '--emitDeclarationOnly', '--outDir', join(root, 'dist/types'), '--rootDir', join(root, 'src'),
  '--target', 'ES2022', '--module', 'commonjs', '--moduleResolution', 'node', '--lib', 'ES2022', '--types', 'node', '--strict', '--esModuleInterop', '--resolveJsonModule', '--skipLibCheck', '--stripInternal'], 'declarations');

// The busybox root filesystem used by samples/busybox.yml, when busybox-static is installed.
if (!existsSync(join(root, 'samples/rootfs/busybox/bin/busybox'))) run(process.execPath, [join(root, 'scripts/busybox-rootfs.mjs')], 'busybox root');

// 4. The native engine, when the native sources exist.
if (existsSync(join(root, 'native/Makefile'))) {
  step('native');
  run('make', ['-s', '-C', join(root, 'native'), `NODE=${process.execPath}`], 'make -C native');
}

// 5. The V8 code cache of each bundle (bin/sandbox.js), made by running a typical command once, so
// that what it ran is compiled already at the next start: for `up`'s and the whole CLI's,
// `sandbox up` of /bin/true with no network and two limits, which runs the engine too (about 20 ms
// of every later `up`, measured); for the plan bundle, `plan` of a sample, then `validate` of another.
// `up` applies a real sandbox for a fraction of a second and leaves nothing; without root, or
// without the native engine, it stops at its first refusal and the cache holds what ran until then.
step('code cache');
const cacheDir = mkdtempSync(join(tmpdir(), 'sandbox-build-'));
try {
  const cfg = join(cacheDir, 'cache.yml');
  writeFileSync(cfg, 'version: 1\ncommand: [/bin/true]\nnetwork: none\nresources: {memory: 64m, pids: 16}\n');
  const up = ['up', '-q', '--name', `sandbox-build-${process.pid}`, cfg];
  const env = { ...process.env, SANDBOX_WRITE_CODE_CACHE: '1' };
  spawnSync(process.execPath, [join(root, 'bin/sandbox.js'), ...up], { stdio: 'ignore', env });
  // The whole CLI's, from the same `up` (its engine is that of `run`, `exec`, `down`...): through
  // bin/launch.js itself, as bin/sandbox.js would load it for another command.
  spawnSync(process.execPath, ['-e', `process.argv.splice(1, 0, '-');require(${JSON.stringify(join(root, 'bin/launch.js'))})('sandbox.js')`, ...up], { stdio: 'ignore', env });
} finally { rmSync(cacheDir, { recursive: true, force: true }); }
const also = JSON.stringify([['validate', join(root, 'samples/web.yml')]]);
spawnSync(process.execPath, [join(root, 'bin/sandbox.js'), 'plan', join(root, 'samples/jenkins.yml')], { stdio: 'ignore', env: { ...process.env, SANDBOX_WRITE_CODE_CACHE: '1', SANDBOX_CACHE_ALSO: also } });
// sandbox-runtime's: what `create` of a bundle (the config.json `runc spec` writes, over the
// busybox root) compiles, then its `delete --force`, which the native front-end serves in every
// later call but which is cheap to keep here (start, state and kill never reach Node now).
// Without root or the busybox root, create stops at its first refusal and the cache holds that.
const rtDir = mkdtempSync(join(tmpdir(), 'sandbox-build-rt-'));
try {
  const spec = JSON.parse(readFileSync(join(root, 'test/unit/fixtures/oci/runc-spec.json'), 'utf8'));
  spec.root = { path: join(root, 'samples/rootfs/busybox'), readonly: true };
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  mkdirSync(join(rtDir, 'bundle'));
  writeFileSync(join(rtDir, 'bundle/config.json'), JSON.stringify(spec));
  const id = `sandbox-build-rt-${process.pid}`;
  const rtRoot = ['--root', join(rtDir, 'root')];
  const also = JSON.stringify([[...rtRoot, 'delete', '--force', id], [...rtRoot, 'state', 'none']]);
  spawnSync(process.execPath, [join(root, 'bin/sandbox-runtime.js'), ...rtRoot, 'create', '--bundle', join(rtDir, 'bundle'), id], { stdio: 'ignore', env: { ...process.env, SANDBOX_WRITE_CODE_CACHE: '1', SANDBOX_CACHE_ALSO: also } });
} finally { rmSync(rtDir, { recursive: true, force: true }); }
