// The entry of dist/sandbox-plan.js, the bundle bin/sandbox.js loads for `validate` and `plan`:
// main() alone, so that esbuild keeps only what those two commands reach (see buildProgram).
export { main } from './main';
