// A throw-away PostgreSQL cluster for the tests: initdb into a temp dir, pg_ctl start on a free
// loopback port (TCP only, no Unix socket outside the temp dir), trust authentication for the
// loopback, and pg_ctl stop at the end. initdb refuses to run as root, so as root the cluster
// belongs to the `postgres` OS user that Debian's package creates (runuser).
//
//   node scripts/test-postgres.mjs start DIR   prints the URL (postgres://postgres@127.0.0.1:PORT/postgres)
//   node scripts/test-postgres.mjs stop DIR
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import process from 'node:process';

/** The newest /usr/lib/postgresql/N/bin, or PG_BIN. */
export function postgresBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (existsSync(path.join(bin, 'initdb'))) return bin;
  }
  throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql) and PG_BIN is not set');
}

function asOwner(command, args) {
  const full = path.join(postgresBin(), command);
  if (process.getuid?.() === 0) return execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return execFileSync(full, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Creates and starts the cluster in `dir` (created); returns its URL. */
export async function startTestPostgres(dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  mkdirSync(sock, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) {
    const pwent = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).split(':');
    for (const p of [dir, sock]) chownSync(p, Number(pwent[2]), Number(pwent[3]));
  }
  asOwner('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--no-instructions']);
  const port = await freePort();
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${sock}'`,
    'max_connections = 300',
    'fsync = on',
    'synchronous_commit = on',
    'shared_buffers = 64MB',
    "log_min_messages = 'warning'",
    '',
  ].join('\n');
  writeFileSync(path.join(data, 'postgresql.auto.conf'), conf, { flag: 'a' });
  asOwner('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  writeFileSync(path.join(dir, 'url'), url);
  return url;
}

export function stopTestPostgres(dir) {
  const data = path.join(dir, 'data');
  if (!existsSync(path.join(data, 'postmaster.pid'))) return;
  try {
    asOwner('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
  } catch {
    // already stopped
  }
}

export function testPostgresUrl(dir) {
  return readFileSync(path.join(dir, 'url'), 'utf8').trim();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [command, dir] = process.argv.slice(2);
  if (!dir) throw new Error('usage: test-postgres.mjs start|stop DIR');
  // No top-level await: jest's globalSetup loads this module through require().
  if (command === 'start') void startTestPostgres(path.resolve(dir)).then((url) => process.stdout.write(`${url}\n`));
  else if (command === 'stop') stopTestPostgres(path.resolve(dir));
  else throw new Error(`unknown command ${command}`);
}
