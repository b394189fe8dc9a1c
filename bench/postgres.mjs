// A private Postgres cluster for the bench (as the tests make one): Debian's `postgresql`
// binaries, `initdb` + `pg_ctl` in a temporary directory, loopback only, stopped at the end. As
// root the cluster runs as the `postgres` user (initdb refuses root).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'

function binDir() {
  const base = '/usr/lib/postgresql'
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))) : []
  versions.sort((a, b) => Number(a) - Number(b))
  if (versions.length) return path.join(base, versions.at(-1), 'bin')
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' })
  if (which.status === 0) return path.dirname(which.stdout.trim())
  throw new Error('Postgres is not installed (Debian: apt-get install postgresql)')
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })

export async function startPostgres() {
  const bin = binDir()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pg-'))
  const asRoot = process.getuid?.() === 0
  const run = (tool, args) => {
    const [cmd, cmdArgs] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]] : [path.join(bin, tool), args]
    return execFileSync(cmd, cmdArgs, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  }
  if (asRoot) execFileSync('chown', ['-R', 'postgres', dir])
  const port = await freePort()
  const data = path.join(dir, 'data')
  run('initdb', ['-D', data, '-U', 'livestore', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'])
  run('pg_ctl', ['-D', data, '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c max_connections=300`, '-l', path.join(dir, 'server.log'), '-w', 'start'])
  const psql = (db, sql) => execFileSync('psql', ['-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', String(port), '-U', 'livestore', '-d', db, '-c', sql], { encoding: 'utf8' }).trim()
  let n = 0
  return {
    /// A fresh database's URL.
    newDatabase() {
      const name = `bench_${++n}`
      psql('postgres', `CREATE DATABASE ${name}`)
      return `postgres://livestore@127.0.0.1:${port}/${name}`
    },
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'])
      } catch {}
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
