#!/usr/bin/env node
// Compiles contracts/*.sol with the npm-pinned solc (soljson, no compiler download). Deterministic: same
// solc, same settings, same bytes. Each artifact goes where it is read: CheckpointAnchor.json into the
// Python package (src/ailedger/anchoring/contracts/, package data: a wheel install finds it), the benchmark's
// RecordRegistry.json into contracts/build/.
// Usage: node contracts/compile.js [outdir]   (with outdir: every artifact there; tests compare them)
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const EVM_VERSION = 'cancun';
const here = __dirname;
const outArg = process.argv[2] ? path.resolve(process.argv[2]) : null;
const DEST = { CheckpointAnchor: path.join(here, '..', 'src', 'ailedger', 'anchoring', 'contracts') };
const outFor = (name) => outArg || DEST[name] || path.join(here, 'build');
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
for (const file of Object.keys(out.contracts).sort()) {
  for (const name of Object.keys(out.contracts[file]).sort()) {
    const c = out.contracts[file][name];
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { name: 'solc', version: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    const outDir = outFor(name);
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, name + '.json'), JSON.stringify(artifact, null, 2) + '\n');
    process.stdout.write(`compiled ${file}:${name} -> ${path.relative(process.cwd(), path.join(outDir, name + '.json'))}\n`);
  }
}
