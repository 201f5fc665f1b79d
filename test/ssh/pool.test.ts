import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {ConnectionPool} from '../../source/ssh/pool.js';

const test = suite('ConnectionPool');

type Fake = {id: number; closed: boolean; close(): void};

function fakes(): {first: Fake; opened: Fake[]; open: () => Promise<Fake>} {
	let next = 0;
	const make = (): Fake => ({id: next++, closed: false, close() {
		this.closed = true;
	}});
	const first = make();
	const opened: Fake[] = [];
	return {first, opened, open: async () => {
		const fake = make();
		opened.push(fake);
		return fake;
	}};
}

test('should put at most perConnection channels on a connection, then open another', async () => {
	const {first, opened, open} = fakes();
	const pool = new ConnectionPool(first, open, 3);
	const got = await Promise.all(Array.from({length: 7}, async () => pool.reserve()));
	assert.equal(got.map(c => c.id), [0, 0, 0, 1, 1, 1, 2]);
	assert.is(opened.length, 2);
	assert.is(pool.size, 3);
});

test('should reuse a released channel before opening a connection', async () => {
	const {first, opened, open} = fakes();
	const pool = new ConnectionPool(first, open, 2);
	const a = await pool.reserve();
	await pool.reserve();
	pool.release(a);
	assert.is((await pool.reserve()).id, 0);
	assert.is(opened.length, 0);
});

test('should forget a connection that failed to open, and close all the others', async () => {
	const {first} = fakes();
	let fail = true;
	const later: Fake = {id: 9, closed: false, close() {
		this.closed = true;
	}};
	const pool = new ConnectionPool(first, async () => {
		if (fail) {
			throw new Error('refused');
		}
		return later;
	}, 1);
	await pool.reserve();
	await pool.reserve().then(() => assert.unreachable('should fail'), (error: Error) => assert.is(error.message, 'refused'));
	assert.is(pool.size, 1);
	fail = false;
	assert.is((await pool.reserve()).id, 9);
	pool.closeAll();
	await new Promise(resolve => setImmediate(resolve));
	assert.ok(first.closed && later.closed);
});

test('should drop a failed connection once, however many callers waited on it', async () => {
	const {first} = fakes();
	const pool = new ConnectionPool(first, async () => {
		throw new Error('refused');
	}, 2);
	await pool.reserve();
	await pool.reserve();
	// Both wait on the same new connection, which fails.
	const waiting = await Promise.allSettled([pool.reserve(), pool.reserve()]);
	assert.equal(waiting.map(result => result.status), ['rejected', 'rejected']);
	assert.is(pool.size, 1, 'the working connection must stay in the pool');
});

test.run();
