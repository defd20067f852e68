#!/usr/bin/env node
'use strict';
// The installed command: loads the bundled CLI and sets the exit status it returns.
require('../dist/sandbox.js').main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
