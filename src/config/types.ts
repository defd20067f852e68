// UserConfig: the shape people write, as schema/sandbox.schema.json accepts it (short and long
// forms side by side). It is generated from the schema at build time (scripts/gen-config-types.mjs),
// so a key exists in the type exactly when the schema has it; model/normalize.ts turns it into the
// SandboxSpec the program uses.
export type { UserConfig } from './generated/config-types';
