#!/usr/bin/env node
// Compiles src/ailedger/defi/contracts/*.sol with the solc pinned in contracts/package.json
// (contracts/node_modules/solc, no compiler download) and the same settings as contracts/compile.js, into
// <Name>.json beside the sources (package data: a wheel install finds them).
// Usage: node src/ailedger/defi/contracts/compile.js [outdir]
'use strict';
const fs = require('fs');
const path = require('path');
const here = __dirname;
const solc = require(path.join(here, '..', '..', '..', '..', 'contracts', 'node_modules', 'solc'));

const EVM_VERSION = 'cancun';
const outDir = path.resolve(process.argv[2] || here);
const sources = {};
for (const f of fs.readdirSync(here).sort()) {
  if (f.endsWith('.sol')) sources[f] = { content: fs.readFileSync(path.join(here, f), 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of out.errors || []) {
  process.stderr.write(e.formattedMessage + '\n');
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);
fs.mkdirSync(outDir, { recursive: true });
for (const file of Object.keys(out.contracts).sort()) {
  for (const name of Object.keys(out.contracts[file]).sort()) {
    const c = out.contracts[file][name];
    if (!c.evm.bytecode.object) continue;  // interfaces
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { name: 'solc', version: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, name + '.json'), JSON.stringify(artifact, null, 2) + '\n');
    process.stdout.write(`compiled ${file}:${name}\n`);
  }
}
