import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { auditPath, blockLink, merkleRoot, MerkleTree, openCheckpoint, rootFromPath, signCheckpoint, verifierKey, GENESIS_LINK } from '../../protocol/index.ts'

t.test('every leaf of trees of 1 to 33 leaves proves against the root, and no other leaf or index does', async (t) => {
  for (let n = 1; n <= 33; n++) {
    const leaves = Array.from({ length: n }, (_, i) => Buffer.alloc(32, i + 1))
    const root = merkleRoot(leaves)
    for (let i = 0; i < n; i++) {
      const path = auditPath(leaves, i)
      t.same(rootFromPath(leaves[i] as Buffer, i, n, path), root, `n=${n} i=${i}`)
      t.same(new MerkleTree(leaves).path(i), path, 'the memoised tree gives the same path')
      if (n > 1) t.not(rootFromPath(leaves[(i + 1) % n] as Buffer, i, n, path)?.toString('hex'), root.toString('hex'), `n=${n} i=${i}: another leaf fails`)
    }
  }
})

t.test('checkpoints open with every key, whatever characters its base64 holds', async (t) => {
  for (let i = 0; i < 64; i++) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const note = signCheckpoint({ epoch: 'e', seq: i + 1, link: Buffer.alloc(32, i) }, 'vgw-ledger', privateKey)
    t.ok(openCheckpoint(note, verifierKey('vgw-ledger', publicKey)), `key ${i}`)
  }
})

t.test('a signed checkpoint opens with its key only, and any change to it fails', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const other = generateKeyPairSync('ed25519')
  const link = blockLink(GENESIS_LINK, { firstSeq: 1, lastSeq: 3, root: Buffer.alloc(32, 9) })
  const note = signCheckpoint({ epoch: '0190a1b2-0000-7000-8000-000000000001', seq: 1, link }, 'vgw-test', privateKey)
  t.match(note, /^vgw\.ledger\/0190a1b2-0000-7000-8000-000000000001\n1\n[A-Za-z0-9+/=]{44}\n\n\u2014 vgw-test \S+\n$/)
  t.same(openCheckpoint(note, verifierKey('vgw-test', publicKey)), { epoch: '0190a1b2-0000-7000-8000-000000000001', seq: 1, link })
  t.equal(openCheckpoint(note, verifierKey('vgw-test', other.publicKey)), null, 'another key')
  t.equal(openCheckpoint(note.replace('\n1\n', '\n2\n'), verifierKey('vgw-test', publicKey)), null, 'a changed size')
})
