import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'
import { loadConfig, type ConfigInput } from '../gateway/index.ts'
import { writeExportFiles } from '../gateway/lifecycle/legal-export.ts'
import { formatPeriod, parseMarket, parsePeriod } from '../gateway/lifecycle/retention-period.ts'
import { verifyExportDir } from '../gateway/lifecycle/verify-export.ts'
import { verifyLog } from '../gateway/ledger/log-verify.ts'
import { GatewayError, isValidVin } from '../protocol/index.ts'
import { withStore } from './cli-store.ts'

const actor = (): string => `cli:${os.userInfo().username}`

function dbFlags (cmd: Command): Command {
  return cmd.option('--database-url <url>', 'external PostgreSQL [env DATABASE_URL]').option('--data-dir <dir>', 'embedded database [env VGW_DATA_DIR]')
}

function config (opts: { databaseUrl?: string, dataDir?: string }): ReturnType<typeof loadConfig> {
  const flags: ConfigInput = {}
  if (opts.databaseUrl !== undefined) flags.databaseUrl = opts.databaseUrl
  if (opts.dataDir !== undefined) flags.dataDir = opts.dataDir
  return loadConfig(process.env, flags)
}

function vin (text: string): string {
  if (!isValidVin(text)) throw new GatewayError('GW_ERR_INVALID_VIN', `"${text}" is not a valid VIN: 17 characters, digits and capital letters except I, O and Q`)
  return text
}

function date (name: string, text: string): Date {
  const d = new Date(text)
  if (Number.isNaN(d.getTime())) throw new GatewayError('GW_ERR_VALIDATION', `--${name} ${JSON.stringify(text)}: expected a date such as 2026-01-01 or an ISO 8601 time`)
  return d
}

export function addLifecycleCommands (program: Command): void {
  const retention = program.command('retention').description('retention of the transaction log per market')
  dbFlags(retention.command('set <market> <period>').description('set a market\'s retention period (market "default" for all others), e.g. retention set DE 10y'))
    .action(async (market: string, period: string, opts: { databaseUrl?: string, dataDir?: string }) => {
      const m = parseMarket(market)
      const days = parsePeriod(period)
      await withStore(config(opts), (store) => store.lifecycle.setPolicy(m, days, actor()))
      process.stdout.write(`${m === '*' ? 'default' : m}: ${formatPeriod(days)} (${days} days)\n`)
    })
  dbFlags(retention.command('list').description('the retention policies'))
    .action(async (opts: { databaseUrl?: string, dataDir?: string }) => {
      const policies = await withStore(config(opts), (store) => store.lifecycle.policies())
      for (const p of policies) process.stdout.write(`${(p.market === '*' ? 'default' : p.market).padEnd(8)} ${formatPeriod(p.retentionDays).padStart(5)}  (${p.retentionDays} days)\n`)
    })
  dbFlags(retention.command('run').description('remove what is past its market\'s period (held vehicles excepted) and print what was removed'))
    .action(async (opts: { databaseUrl?: string, dataDir?: string }) => {
      const report = await withStore(config(opts), (store) => store.lifecycle.runRetention(new Date(), actor()))
      process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    })

  const hold = program.command('hold').description('legal holds: nothing of a held vehicle is removed by retention')
  dbFlags(hold.command('add').requiredOption('--vin <vin>').requiredOption('--reason <text>').description('put a vehicle under legal hold'))
    .action(async (opts: { vin: string, reason: string, databaseUrl?: string, dataDir?: string }) => {
      const h = await withStore(config(opts), (store) => store.lifecycle.addHold(vin(opts.vin), opts.reason, actor()))
      process.stdout.write(`hold ${h.id} on ${h.vin}: ${h.reason}\n`)
    })
  dbFlags(hold.command('release').requiredOption('--vin <vin>').option('--reason <text>', 'why', 'released').description('release every active hold of a vehicle'))
    .action(async (opts: { vin: string, reason: string, databaseUrl?: string, dataDir?: string }) => {
      const n = await withStore(config(opts), (store) => store.lifecycle.releaseHolds(vin(opts.vin), opts.reason, actor()))
      if (n === 0) throw new GatewayError('GW_ERR_HOLD_NOT_FOUND', `${opts.vin} has no active legal hold`)
      process.stdout.write(`released ${n} hold(s) on ${opts.vin}\n`)
    })
  dbFlags(hold.command('list').description('active legal holds'))
    .action(async (opts: { databaseUrl?: string, dataDir?: string }) => {
      const holds = await withStore(config(opts), (store) => store.lifecycle.holds(true))
      for (const h of holds) process.stdout.write(`${h.vin}  since ${h.createdAt.toISOString()}  by ${h.createdBy}: ${h.reason}\n`)
    })

  const exp = dbFlags(program.command('export')
    .enablePositionalOptions()
    .description('legal export of one vehicle\'s transactions: DIR/transactions.ndjson (hash-chained) and DIR/manifest.json')
    .option('--vin <vin>')
    .option('--from <date>', 'inclusive, e.g. 2026-01-01')
    .option('--to <date>', 'exclusive, e.g. 2026-02-01')
    .option('--out <dir>'))
    .action(async (opts: { vin?: string, from?: string, to?: string, out?: string, databaseUrl?: string, dataDir?: string }) => {
      if (opts.vin === undefined || opts.from === undefined || opts.to === undefined || opts.out === undefined) {
        throw new GatewayError('GW_ERR_VALIDATION', 'vgw export needs --vin, --from, --to and --out')
      }
      const req = { vin: vin(opts.vin), from: date('from', opts.from), to: date('to', opts.to), actor: actor(), now: Date.now }
      if (req.to <= req.from) throw new GatewayError('GW_ERR_VALIDATION', '--to must be after --from')
      const out = path.resolve(opts.out)
      const manifest = await withStore(config(opts), (store) => writeExportFiles(store, req, out))
      process.stdout.write(`${manifest.rowCount} records of ${manifest.vin} to ${out}\nsha256 ${manifest.sha256}\nchain head ${manifest.chainHead}\n`)
    })
  exp.command('verify <dir>')
    .description('check an export from its files alone: file hash, hash chain, record count; names every tampered record. With --checkpoints, also proves every record against the ledger\'s signed checkpoints')
    .option('--checkpoints <dir>', 'the ledger\'s checkpoint directory (VGW_LEDGER_DIR, or a copy from the write-once store)')
    .option('--key <verifier>', 'a trusted verifier key (vgw ledger key prints it; repeatable; default: key.pub in the checkpoint directory)', (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (dir: string, flags: { checkpoints?: string, key: string[] }) => {
      const v = await verifyExportDir(path.resolve(dir), flags.checkpoints === undefined ? undefined : { dir: path.resolve(flags.checkpoints), keys: flags.key })
      if (v.ok) {
        process.stdout.write(`OK: ${v.rows} records, sha256 ${v.fileSha256}, chain head ${v.head}${flags.checkpoints === undefined ? '' : ', every record proven against the signed checkpoints'}\n`)
        return
      }
      process.stdout.write(`TAMPERED: ${v.findings.length} finding(s)${v.fileHashMatches ? '' : '; the file\'s SHA-256 differs from the manifest'}\n`)
      for (const f of v.findings) process.stdout.write(`  ${f.line === 0 ? 'file' : `line ${f.line}`}${f.seq !== null ? ` (record ${f.seq})` : ''}: ${f.problem}: ${f.detail}\n`)
      process.exitCode = 1
    })
}

/** `vgw log verify`: the whole log (or a period) against the ledger's signed checkpoints. */
export function addLogCommands (program: Command): void {
  const log = program.command('log').description('the transaction log as a whole')
  dbFlags(log.command('verify')
    .description('prove every row checkpointed in a period against the ledger\'s signed checkpoints; names each row altered, deleted or inserted; exit 1 when any is')
    .requiredOption('--checkpoints <dir>', 'the ledger\'s checkpoint directory (VGW_LEDGER_DIR, or a copy from the write-once store)')
    .option('--key <verifier>', 'a trusted verifier key (repeatable; default: key.pub in the checkpoint directory)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--from <date>', 'check rows of checkpoints made from then on, and look for rows in no batch that occurred from then on (default: the beginning); every checkpoint\'s chain and note is checked whatever the period')
    .option('--to <date>', 'exclusive (default: no end)'))
    .action(async (opts: { checkpoints: string, key: string[], from?: string, to?: string, databaseUrl?: string, dataDir?: string }) => {
      const req = {
        from: opts.from === undefined ? new Date(0) : date('from', opts.from),
        to: opts.to === undefined ? new Date(8.64e15) : date('to', opts.to),
        checkpointDir: path.resolve(opts.checkpoints),
        keys: opts.key
      }
      const started = performance.now()
      const v = await withStore(config(opts), (store) => verifyLog(store, req))
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      if (v.ok) {
        process.stdout.write(`OK: ${v.rows} rows in ${v.batches} batches and ${v.blocks} checkpoints proven (${seconds} s)\n`)
        for (const f of v.findings) process.stdout.write(`  note: ${f.problem}: ${f.subject}: ${f.detail}\n`)
        return
      }
      process.stdout.write(`TAMPERED: ${v.findings.filter((f) => f.problem !== 'expired' && f.problem !== 'unanchored').length} finding(s) over ${v.rows} rows in ${v.batches} batches and ${v.blocks} checkpoints (${seconds} s)\n`)
      for (const f of v.findings) process.stdout.write(`  ${f.problem}: ${f.subject}: ${f.detail}\n`)
      process.exitCode = 1
    })
}
