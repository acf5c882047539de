// Reference IPFS implementations for ailedger's interop tests.
//   node ipfs_ref.mjs cid FILE PROFILE          -> prints the root CID the JS importer computes
//   node ipfs_ref.mjs readcar FILE.car          -> JSON {roots, blocks, verified} read with @ipld/car
//   node ipfs_ref.mjs writecar FILE PROFILE OUT -> imports FILE and writes its DAG as a CAR with @ipld/car
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CarReader, CarWriter } from '@ipld/car'
import { sha256 } from 'multiformats/hashes/sha2'
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'

function options (profile) {
  if (profile === 'unixfs-v1-2025') return { profile: 'unixfs-v1-2025' }
  if (profile === 'kubo-v1-legacy') return { profile: 'unixfs-v0-2015', cidVersion: 1, rawLeaves: true }
  throw new Error('unknown profile ' + profile)
}

async function importFile (file, profile, blockstore) {
  let last
  for await (const entry of importer([{ content: createReadStream(file) }], blockstore, options(profile))) {
    last = entry
  }
  return last.cid
}

const [cmd, ...args] = process.argv.slice(2)
if (cmd === 'cid') {
  const bs = new MemoryBlockstore()
  console.log((await importFile(args[0], args[1], bs)).toString())
} else if (cmd === 'readcar') {
  const reader = await CarReader.fromBytes(await readFile(args[0]))
  const roots = (await reader.getRoots()).map(String)
  let blocks = 0
  let verified = 0
  for await (const { cid, bytes } of reader.blocks()) {
    blocks++
    const digest = await sha256.digest(bytes)
    if (cid.multihash.code === sha256.code && Buffer.compare(Buffer.from(digest.digest), Buffer.from(cid.multihash.digest)) === 0) verified++
  }
  console.log(JSON.stringify({ roots, blocks, verified }))
} else if (cmd === 'writecar') {
  // remember every block with its real CID (MemoryBlockstore.getAll() only keeps multihashes)
  const bs = new MemoryBlockstore()
  const written = []
  const put = bs.put.bind(bs)
  bs.put = async (cid, bytes, opts) => { written.push({ cid, bytes }); return put(cid, bytes, opts) }
  const root = await importFile(args[0], args[1], bs)
  const { writer, out } = CarWriter.create([root])
  const done = new Promise((resolve, reject) => {
    const ws = createWriteStream(args[2])
    Readable.from(out).pipe(ws).on('finish', resolve).on('error', reject)
  })
  for (const block of written) await writer.put(block)
  await writer.close()
  await done
  console.log(root.toString())
} else {
  console.error('usage: ipfs_ref.mjs cid|readcar|writecar ...')
  process.exit(2)
}
