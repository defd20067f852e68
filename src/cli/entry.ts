// The entry of the bundles of one command (dist/sandbox-plan.js, dist/sandbox-up.js), which
// bin/sandbox.js loads for those commands: main() alone, so that esbuild keeps only what the
// commands buildProgram registers there reach.
export { main } from './main';
