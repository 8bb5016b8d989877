import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { GatewayError, signCheckpoint, verifierKey, type Checkpoint } from '../../protocol/index.ts'

/** Signs checkpoints with an Ed25519 key from a file the database never sees (README, "Security"). */
export interface CheckpointSigner {
  /** The signed-note key name, e.g. "vgw-ledger". */
  readonly name: string
  /** The verifier key string third parties are given (protocol/ledger.ts, verifierKey). */
  readonly verifier: string
  sign(c: Checkpoint): string
}

export function signerFromKey (name: string, privateKey: KeyObject): CheckpointSigner {
  return { name, verifier: verifierKey(name, createPublicKey(privateKey)), sign: (c) => signCheckpoint(c, name, privateKey) }
}

/**
 * The key in `file` (PKCS#8 PEM). With `create`, a missing file is made (a new key, mode 0600, never
 * over an existing file): the development default; production points VGW_LEDGER_KEY at its secret.
 */
export function loadCheckpointSigner (file: string, name: string, create: boolean): CheckpointSigner {
  if (!fs.existsSync(file) && create) {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const { privateKey } = generateKeyPairSync('ed25519')
    try {
      fs.writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' })
    } catch (err) {
      // Another gateway on this data directory made it first: use that one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  try {
    const key = createPrivateKey(fs.readFileSync(file))
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${String(key.asymmetricKeyType)} key, not Ed25519`)
    return signerFromKey(name, key)
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `VGW_LEDGER_KEY (--ledger-key) = ${file}: ${err instanceof Error ? err.message : String(err)}; it must be an Ed25519 private key in PKCS#8 PEM (openssl genpkey -algorithm ed25519)`, { cause: err })
  }
}
