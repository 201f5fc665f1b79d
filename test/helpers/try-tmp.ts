import {startSshd} from './sshd.ts';
import {spawnSync} from 'node:child_process';
import {mkdtempSync, writeFileSync} from 'node:fs';
import {randomBytes} from 'node:crypto';
const s = await startSshd();
try {
  const d = mkdtempSync('/tmp/rbs-try-');
  writeFileSync(`${d}/src`, randomBytes(9 * 1024 * 1024 + 100));
  for (const args of [[`${d}/src`, `pve:${d}/dst`, '--truncate', '--json'], [`${d}/src`, `pve:${d}/dst`, '--json'], [`pvenode:${d}/dst`, `${d}/back`, '--truncate', '--json'], [`pve:${d}/dst`, `pve2:${d}/dst2`, '--truncate', '--json']]) {
    const r = spawnSync(process.execPath, ['dist/cli.js', ...args], {env: {...s.env, RBLOCKSYNC_REMOTE_AGENT: 'upload'}, encoding: 'utf8', timeout: 30000});
    console.log(args.join(' '), r.status, r.stdout, r.stderr);
  }
  console.log(spawnSync('sh', ['-c', `cmp ${d}/src ${d}/dst && cmp ${d}/src ${d}/back && cmp ${d}/src ${d}/dst2 && echo SAME; ls -la ~/.cache/rblocksync/ ${s.home}/.cache/rblocksync 2>&1`], {encoding: 'utf8'}).stdout);
} finally { await s.stop(); }
