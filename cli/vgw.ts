import path from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { initDevPki, issueVehicleCertificate, revokeVehicle } from '../certs/index.ts'
import { DEV_CERT_DIR, SETTINGS, loadConfig, type ConfigInput, type SettingName } from '../gateway/index.ts'
import { GatewayError } from '../protocol/index.ts'
import { withStore } from './cli-store.ts'
import { runStart } from './start-command.ts'
import { addFleetCommand } from './fleet-command.ts'
import { addLifecycleCommands, addLogCommands } from './lifecycle-commands.ts'
import { addEnvelopeCommand } from './envelope-command.ts'
import { addKeyCommands } from './key-commands.ts'

/** Exit codes: 0 success, 1 failure, 2 usage error. */
const USAGE = 2

function configOptions (cmd: Command): Command {
  for (const [, s] of Object.entries(SETTINGS)) {
    cmd.addOption(new Option(`${s.flag} <value>`, `${s.description} [env ${s.env}]`))
  }
  return cmd
}

function configFlags (opts: Record<string, unknown>): ConfigInput {
  const flags: ConfigInput = {}
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const v = opts[name]
    if (typeof v === 'string') flags[name] = v
  }
  return flags
}

export function buildProgram (): Command {
  const program = new Command('vgw')
    .description('vgw: vehicle connectivity gateway (MQTT over mutual TLS, protobuf envelopes, PostgreSQL transaction log)')
    .exitOverride()
    .showHelpAfterError()
    // `vgw fleet verify FILE --api-key K`: options after a subcommand belong to it.
    .enablePositionalOptions()

  configOptions(program.command('start').description('run the gateway (what npm start runs, with --dev-pki)'))
    .option('--dev-pki', 'without VGW_TLS_*: create and use the development PKI under certs/dev (its CA key sits beside the gateway: development and tests only)')
    .action(async (opts: Record<string, unknown>) => { await runStart(configFlags(opts), { devPki: opts.devPki === true }) })

  const certs = program.command('certs').description('development PKI under certs/dev/')
  certs.command('init')
    .description('create the dev CA, a server certificate for localhost and 127.0.0.1, and an empty CRL (keeps existing files)')
    .option('--dir <dir>', 'PKI directory', DEV_CERT_DIR)
    .action(async (opts: { dir: string }) => {
      const { created, paths } = await initDevPki(path.resolve(opts.dir))
      process.stdout.write(created.length === 0 ? `dev PKI already present in ${paths.dir}\n` : `created:\n${created.map((f) => `  ${f}\n`).join('')}`)
    })
  certs.command('issue')
    .description('issue a vehicle key (ECDSA P-256) and certificate (CN=VIN, C=market) signed by the dev CA')
    .requiredOption('--vin <vin>', 'the vehicle\'s VIN (17 characters, ISO 3779)')
    .option('--market <cc>', 'ISO 3166-1 alpha-2 market', 'DE')
    .option('--out <dir>', 'output directory (default certs/dev/vehicles)')
    .option('--dir <dir>', 'PKI directory', DEV_CERT_DIR)
    .action(async (opts: { vin: string, market: string, out?: string, dir: string }) => {
      const issued = await issueVehicleCertificate(path.resolve(opts.dir), {
        vin: opts.vin,
        market: opts.market,
        ...(opts.out !== undefined ? { outDir: path.resolve(opts.out) } : {})
      })
      process.stdout.write(`${issued.keyFile}\n${issued.certFile}\n`)
    })
  certs.command('revoke')
    .description('add the vehicle\'s certificates to the CRL: a running gateway reloads it and closes their sessions within seconds')
    .requiredOption('--vin <vin>', 'the vehicle\'s VIN')
    .option('--dir <dir>', 'PKI directory', DEV_CERT_DIR)
    .action(async (opts: { vin: string, dir: string }) => {
      const serials = await revokeVehicle(path.resolve(opts.dir), opts.vin)
      process.stdout.write(`revoked ${serials.length} certificate(s) of ${opts.vin}; gateways watching this CRL close their sessions within seconds (SIGHUP reloads at once)\n`)
    })

  addKeyCommands(program)

  configOptions(program.command('migrate').description('apply database migrations to DATABASE_URL (or the embedded database)'))
    .action(async (opts: Record<string, unknown>) => {
      const config = loadConfig(process.env, configFlags(opts))
      await withStore(config, async () => undefined)
      process.stdout.write('migrations applied\n')
    })
  addFleetCommand(program)
  addLifecycleCommands(program)
  addLogCommands(program)
  addEnvelopeCommand(program)
  return program
}

export async function main (argv: string[]): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0)
      if (err.code === 'vgw.usage') process.stderr.write(`error: ${err.message}\n`)
      process.exit(USAGE)
    }
    if (err instanceof GatewayError) {
      process.stderr.write(`error ${err.code}: ${err.message}\n`)
      process.exit(err.code === 'GW_ERR_INVALID_VIN' || err.code === 'GW_ERR_VALIDATION' || err.code === 'GW_ERR_CONFIG_INVALID' ? USAGE : 1)
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
}
