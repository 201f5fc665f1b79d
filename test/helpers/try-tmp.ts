import {startSshd} from './sshd.ts';
import {execFileSync, spawnSync} from 'node:child_process';
const s = await startSshd();
try {
  const d = '/tmp/rbs-prof';
  execFileSync('cp', ['--sparse=always', `${d}/src`, `${d}/dst`]);
  for (const args of [[`${d}/src`, `pve:${d}/dst`], [`pve:${d}/src`, `${d}/dst`], [`${d}/src`, `pve:${d}/dst`, '-w', '1'], [`pve:${d}/src`, `${d}/dst`, '-w', '1']]) {
    const t = Date.now();
    const r = spawnSync(process.execPath, ['dist/cli.js', '-q', ...args], {env: {...s.env, RBLOCKSYNC_TRACE: '1'}, encoding: 'utf8'});
    console.log(args.join(' '), r.status, (Date.now() - t) / 1000, '\n' + r.stderr);
  }
} finally { await s.stop(); }
