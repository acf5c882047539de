#!/usr/bin/env node
// The one Solidity compile script: compiles every *.sol of one folder with the npm-pinned solc
// (contracts/package.json, soljson: no compiler download). Deterministic: same solc, same settings, same bytes.
// An artifact <Name>.json is written for each contract with bytecode defined in the folder's own files
// (interfaces and imported files get none).
//
// Usage: node contracts/compile.js [--src DIR] [--out DIR] [--imports DIR] [--openzeppelin] [OUTDIR]
//   --src DIR       the folder of *.sol sources (default: contracts/)
//   --out DIR       where every artifact goes (OUTDIR is the same). Default: beside the sources when --src is
//                   given; for contracts/ itself, each artifact where it is read: CheckpointAnchor.json into
//                   the Python package (src/ailedger/anchoring/contracts/, package data: a wheel install finds
//                   it), the benchmark's RecordRegistry.json into contracts/build/.
//   --imports DIR   resolve `import "pkg/..."` from this node_modules folder (e.g. contracts/governance/node_modules)
//   --openzeppelin  record the @openzeppelin/contracts version found in --imports in each artifact
// The per-folder calls are scripts/compile-{contracts,compute-contracts,defi-contracts,governance-contracts}.sh.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const EVM_VERSION = 'cancun';
const here = __dirname;

function parseArgs(argv) {
  const opts = { src: null, out: null, imports: null, openzeppelin: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--openzeppelin') opts.openzeppelin = true;
    else if (a === '--src' || a === '--out' || a === '--imports') {
      if (i + 1 >= argv.length) usage(`${a} needs a folder`);
      opts[a.slice(2)] = path.resolve(argv[++i]);
    } else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length > 1 || (rest.length === 1 && opts.out)) usage('give one output folder (--out DIR or OUTDIR)');
  if (rest.length === 1) opts.out = path.resolve(rest[0]);
  if (opts.openzeppelin && !opts.imports) usage('--openzeppelin needs --imports DIR');
  return opts;
}

function usage(msg) {
  process.stderr.write(`error: ${msg}\nusage: node contracts/compile.js [--src DIR] [--out DIR] [--imports DIR] [--openzeppelin] [OUTDIR]\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const srcDir = opts.src || here;
// contracts/ itself with no output folder: each artifact where it is read
const DEST = { CheckpointAnchor: path.join(here, '..', 'src', 'ailedger', 'anchoring', 'contracts') };
const outFor = opts.out ? () => opts.out
  : opts.src ? () => srcDir
    : (name) => DEST[name] || path.join(here, 'build');

if (!fs.existsSync(srcDir) || !fs.statSync(srcDir).isDirectory()) usage(`--src ${srcDir}: not a folder`);
if (opts.imports && !fs.existsSync(opts.imports)) usage(`--imports ${opts.imports}: not found (npm ci there?)`);
const sources = {};
for (const f of fs.readdirSync(srcDir).sort()) {
  if (f.endsWith('.sol')) sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
}
if (Object.keys(sources).length === 0) usage(`no *.sol in ${srcDir}`);

function findImports(p) {
  const root = opts.imports;
  const full = root && path.join(root, p);
  if (!root || !full.startsWith(root + path.sep) || !fs.existsSync(full)) return { error: 'not found: ' + p };
  return { contents: fs.readFileSync(full, 'utf8') };
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
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
let failed = false;
for (const e of out.errors || []) {
  process.stderr.write(e.formattedMessage + '\n');
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);
const ozVersion = opts.openzeppelin
  ? JSON.parse(fs.readFileSync(path.join(opts.imports, '@openzeppelin', 'contracts', 'package.json'))).version
  : null;
for (const file of Object.keys(sources)) {
  for (const name of Object.keys(out.contracts[file] || {}).sort()) {
    const c = out.contracts[file][name];
    if (!c.evm.bytecode.object) continue;  // interfaces (and abstract contracts)
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { name: 'solc', version: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
    };
    if (ozVersion !== null) artifact.openzeppelin = ozVersion;
    artifact.abi = c.abi;
    artifact.bytecode = '0x' + c.evm.bytecode.object;
    artifact.deployedBytecode = '0x' + c.evm.deployedBytecode.object;
    const outDir = outFor(name);
    const dest = path.join(outDir, name + '.json');
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(dest, JSON.stringify(artifact, null, 2) + '\n');
    process.stdout.write(`compiled ${file}:${name} -> ${path.relative(process.cwd(), dest)}`
      + ` (${c.evm.deployedBytecode.object.length / 2} bytes runtime)\n`);
  }
}
