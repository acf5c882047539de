"""Decentralised blob storage: client-side encryption, erasure coding across storage nodes,
IPFS-compatible content ids, proofs of storage, repair. See docs/storage.md."""
