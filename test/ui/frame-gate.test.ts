import {suite} from 'uvu';
import * as assert from 'uvu/assert';
import {FrameGate, splitFrame} from '../../source/ui/frame-gate.js';
import {fakeClock} from './helpers/fake-clock.js';
import {FakeStream} from './helpers/fake-stream.js';

const gate = suite('FrameGate');
gate('should pass the first write at once and batch the rest into one write per interval', () => {
	const clock = fakeClock();
	const target = new FakeStream({isTTY: true});
	const g = new FrameGate(target, 100, clock);
	g.write('a');
	g.write('b');
	g.write('c');
	assert.equal(target.chunks, ['a']);
	clock.advance(50);
	g.write('d');
	assert.equal(target.chunks, ['a']);
	clock.advance(50);
	assert.equal(target.chunks, ['a', 'bcd'], 'order kept, one write');
	g.write('e');
	g.flushNow();
	assert.equal(target.chunks, ['a', 'bcd', 'e']);
	g.close();
});
gate('should look like the terminal: size, TTY flag and resize events', () => {
	const target = new FakeStream({isTTY: true, columns: 40, rows: 12});
	const g = new FrameGate(target);
	let resized = 0;
	g.on('resize', () => resized++);
	assert.is(g.isTTY, true);
	assert.is(g.columns, 40);
	target.resize(60, 20);
	assert.is(resized, 1);
	assert.is(g.columns, 60);
	assert.is(g.rows, 20);
	g.close();
	target.resize(70);
	assert.is(resized, 1, 'no events after close');
});
/** What log-update writes: an eraser for the previous frame's lines, then the frame and a newline. */
function frame(previousLines: number, text: string): string {
	const eraser = previousLines === 0 ? '' : '\u001B[2K\u001B[1A'.repeat(previousLines - 1) + '\u001B[2K\u001B[G';
	return eraser + text + '\n';
}

gate('should drop a batched frame that the next frame erases entirely', () => {
	const clock = fakeClock();
	const target = new FakeStream({isTTY: true});
	const g = new FrameGate(target, 100, clock);
	g.write(frame(0, 'one\ntwo'));
	g.write(frame(3, 'three\nfour'));
	g.write(frame(3, '\u001B[32mfive\u001B[39m\nsix'));
	g.write(frame(3, 'seven\neight'));
	clock.advance(100);
	assert.equal(target.chunks, [frame(0, 'one\ntwo'), frame(3, 'seven\neight')]);
	g.close();
});
gate('should keep frames whose line count does not match, and everything around other writes', () => {
	const clock = fakeClock();
	const target = new FakeStream({isTTY: true});
	const g = new FrameGate(target, 100, clock);
	g.write('x');
	g.write(frame(2, 'a\nb'));
	g.write(frame(2, 'c'));
	g.write('\u001B[?25h');
	g.write(frame(2, 'd'));
	clock.advance(100);
	assert.equal(target.chunks, ['x', frame(2, 'a\nb') + frame(2, 'c') + '\u001B[?25h' + frame(2, 'd')]);
	g.close();
});
gate.run();

const split = suite('splitFrame');
split('should read the eraser of log-update writes and refuse other text', () => {
	assert.equal(splitFrame(frame(3, 'a')), {eraser: '\u001B[2K\u001B[1A\u001B[2K\u001B[1A\u001B[2K\u001B[G', erases: 3, body: 'a\n', plain: true});
	assert.is(splitFrame(frame(1, 'a'))?.erases, 1);
	assert.is(splitFrame('plain text'), undefined);
	assert.is(splitFrame(frame(1, '\u001B[2Jx'))?.plain, false);
});
split.run();
