import {MemoryImage} from '../../source/transport/memory-image.ts';
import {syncPair} from './roles-pair.ts';
import {randomBytes} from 'node:crypto';
const content = randomBytes(128 * 1024 * 1024);
const src = MemoryImage.from('s', content);
const dst = MemoryImage.from('d', content);
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const r = await syncPair(src, dst, dst);
  console.log('unchanged', (performance.now() - t).toFixed(0), 'ms', r.toDest + r.toSource);
}
for (let b = 7; b < content.length / 4096; b += 97) dst.content.fill(1, b * 4096, b * 4096 + 10);
const t = performance.now();
const r = await syncPair(src, dst, dst);
console.log('1%', (performance.now() - t).toFixed(0), 'ms', r.toDest + r.toSource, r.counters.blocksChanged);
