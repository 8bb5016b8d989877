import os from 'node:os'
import { Command, CommanderError, Option } from 'commander'
import { DEFAULT_ROTATION_GRACE, parseLifetime } from '../gateway/api/key-lifetime.ts'
import { SETTINGS, loadConfig, type ConfigInput, type SettingName } from '../gateway/index.ts'
import { GatewayError } from '../protocol/index.ts'
import { SCOPES, isScope, type ApiKeyInfo, type Store } from '../store/index.ts'
import { withStore } from './cli-store.ts'

const actor = (): string => `cli:${os.userInfo().username}`

function usageError (message: string): never {
  throw new CommanderError(2, 'vgw.usage', message)
}

function withConfigOptions (cmd: Command): Command {
  for (const s of Object.values(SETTINGS)) cmd.addOption(new Option(`${s.flag} <value>`, `${s.description} [env ${s.env}]`).hideHelp(s.flag !== '--database-url' && s.flag !== '--data-dir'))
  return cmd
}

function configOf (opts: Record<string, unknown>): ReturnType<typeof loadConfig> {
  const flags: ConfigInput = {}
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const v = opts[name]
    if (typeof v === 'string') flags[name] = v
  }
  return loadConfig(process.env, flags)
}

async function withKeys<T> (opts: Record<string, unknown>, fn: (store: Store) => Promise<T>): Promise<T> {
  return await withStore(configOf(opts), fn)
}

const iso = (d: Date | null): string => d?.toISOString() ?? '-'

function printKeys (keys: ApiKeyInfo[]): void {
  process.stdout.write(['id', 'name', 'scopes', 'created', 'last used', 'expires', 'revoked'].join('\t') + '\n')
  for (const k of keys) process.stdout.write([k.id, k.name, k.scopes.join(','), iso(k.createdAt), iso(k.lastUsedAt), iso(k.expiresAt), iso(k.revokedAt)].join('\t') + '\n')
}

function expiryOf (text: string | undefined): Date | null {
  return text === undefined ? null : new Date(Date.now() + parseLifetime('--expires', text))
}

/** `vgw keys …`: the API keys' lifecycle from the server side (any scope, `legal` included); every change is audited. */
export function addKeyCommands (program: Command): void {
  const keys = program.command('keys').description('REST API keys: create, list, revoke, rotate')
  withConfigOptions(keys.command('create')
    .description(`create an API key (printed once, stored hashed); scopes: ${SCOPES.join(', ')}`)
    .requiredOption('--name <name>', 'a name for the key (names need not be unique)')
    .requiredOption('--scopes <list>', 'comma-separated scopes')
    .option('--expires <lifetime>', 'the key stops working after this long, e.g. 90d (s, h, d, w, y)'))
    .action(async (opts: Record<string, unknown>) => {
      const scopes = String(opts.scopes).split(',').map((s) => s.trim()).filter((s) => s !== '')
      const unknown = scopes.filter((s) => !isScope(s))
      if (scopes.length === 0 || unknown.length > 0) usageError(`unknown scope(s): ${unknown.join(', ') || '(none given)'}; choose from ${SCOPES.join(', ')}`)
      const expiresAt = expiryOf(opts.expires as string | undefined)
      const created = await withKeys(opts, async (store) => {
        // Audited as key.create by the database (vgw_create_api_key, migration 0013).
        return await store.apiKeys.create(String(opts.name), scopes.filter(isScope), actor(), expiresAt)
      })
      process.stdout.write(`${created.key}\n`)
      process.stderr.write(`key "${created.name}" (id ${created.id}) with scopes ${created.scopes.join(', ')}${expiresAt !== null ? `, expires ${expiresAt.toISOString()}` : ''}; it is shown only now\n`)
    })
  withConfigOptions(keys.command('list')
    .description('the API keys: id, name, scopes, created, last used, expires (never a secret)')
    .option('--all', 'revoked and expired keys too'))
    .action(async (opts: Record<string, unknown>) => {
      printKeys(await withKeys(opts, (store) => store.apiKeys.list(opts.all === true)))
    })
  withConfigOptions(keys.command('revoke')
    .description('revoke a key (--id) or every key of a name (--name); every gateway refuses it within VGW_API_KEY_CACHE_MS')
    .option('--id <id>', 'one key')
    .option('--name <name>', 'every live key of this name'))
    .action(async (opts: Record<string, unknown>) => {
      const id = opts.id as string | undefined
      const name = opts.name as string | undefined
      if ((id === undefined) === (name === undefined)) usageError('give exactly one of --id or --name')
      const revoked = await withKeys(opts, async (store) => id !== undefined
        ? [await store.apiKeys.revokeById(id, actor())].filter((k) => k !== null)
        : await store.apiKeys.revokeByName(name as string, actor()))
      if (revoked.length === 0) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key ${id !== undefined ? `with id ${id}` : `named ${JSON.stringify(name)}`}`)
      for (const k of revoked) process.stdout.write(`revoked ${k.id} (${k.name})\n`)
    })
  withConfigOptions(keys.command('rotate')
    .description('a new secret for the keys of a name (printed once); the old ones keep working for the grace period')
    .requiredOption('--name <name>', 'the keys to replace')
    .option('--grace <period>', 'how long the old secret keeps working', DEFAULT_ROTATION_GRACE)
    .option('--expires <lifetime>', 'the new key\'s lifetime (default: that of the key it replaces)'))
    .action(async (opts: Record<string, unknown>) => {
      const graceMs = parseLifetime('--grace', String(opts.grace))
      const expires = opts.expires as string | undefined
      const rotated = await withKeys(opts, async (store) => await store.apiKeys.rotate(String(opts.name), graceMs, actor(), expires === undefined ? undefined : expiryOf(expires)))
      if (rotated === null) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key named ${JSON.stringify(opts.name)}`)
      process.stdout.write(`${rotated.created.key}\n`)
      for (const p of rotated.previous) process.stderr.write(`old key ${p.id} works until ${p.expiresAt.toISOString()}\n`)
      process.stderr.write(`new key "${rotated.created.name}" (id ${rotated.created.id}); it is shown only now\n`)
    })
}
