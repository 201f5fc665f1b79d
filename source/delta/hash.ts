// Block hashing for the remote protocol: N blocks of a buffer into a preallocated digest buffer, no per-block allocation.
import {createHash} from 'node:crypto';
import {nativeOps, type NativeOps} from '../native/native.js';
/** The digest functions the protocol can use. */
export type HashName = 'blake3' | 'sha256';

/** Bytes of every full digest this module produces. */
export const DIGEST_SIZE = 32;

export interface Hasher {
	readonly name: HashName;
	/**
	 * Hashes buffer[0, length) as consecutive blocks of blockSize bytes (the last one may be shorter)
	 * and writes one 32-byte digest per block into out at outOffset, outOffset+32, ...
	 * Returns the number of blocks (hashed or skipped).
	 * skip: blocks whose flag is 1 are not hashed (the caller knows their digest, e.g. all-zero blocks);
	 * their 32-byte slots in out hold unspecified bytes afterwards.
	 */
	hashBlocks(buffer: Buffer, length: number, blockSize: number, out: Buffer, outOffset: number, skip?: Uint8Array): number;
	/** The digest of buffer[0, length) as one message, written into out at outOffset. */
	digest(buffer: Buffer, length: number, out: Buffer, outOffset: number): void;
}

type Blake3Wasm = {
	HEAPU8: Uint8Array;
	_malloc(bytes: number): number;
	_free(address: number): void;
	_hash_oneshot(input: number, inputLength: number, output: number, outputLength: number): void;
};

/** Largest batch copied into wasm memory at once (its heap is 16 MiB and fixed). */
const WASM_BATCH = 4 * 1024 * 1024;
const WASM_OUT = (WASM_BATCH / 512) * DIGEST_SIZE;
/** Larger inputs go through the streaming hasher in pieces of this size: one big update overruns the wasm stack. */
const WASM_PIECE = 1024 * 1024;

let blake3: Promise<Hasher> | undefined;

type Blake3Internal = typeof import('@c4312/blake3-internal');

/** The hasher for a --hash name; blake3 loads its WebAssembly module once. */
export async function createHasher(name: HashName): Promise<Hasher> {
	if (name === 'sha256') {
		return sha256Hasher;
	}
	const native = nativeOps();
	return native ? nativeBlake3Hasher(native) : createWasmBlake3Hasher();
}

/** BLAKE3 of no bytes (hashBlocks has no block to hash there). */
const EMPTY_BLAKE3 = Buffer.from('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262', 'hex');

/** BLAKE3 through the native helper: one call per batch, several times the speed of the wasm build. */
function nativeBlake3Hasher(native: NativeOps): Hasher {
	return {
		name: 'blake3',
		hashBlocks: (buffer, length, blockSize, out, outOffset, skip) => native.blake3Blocks(buffer, length, blockSize, out, outOffset, skip ?? null),
		digest(buffer, length, out, outOffset) {
			if (length === 0) {
				out.set(EMPTY_BLAKE3, outOffset);
				return;
			}
			native.blake3Blocks(buffer, length, length, out, outOffset, null);
		},
	};
}

/** The WebAssembly BLAKE3 even where the native one loads (tests compare the two). */
export async function createWasmBlake3Hasher(): Promise<Hasher> {
	// Loaded only here (~40 ms of every start-up otherwise): the native helper's BLAKE3 is the one normally used.
	blake3 ??= Promise.all([import('blake3-wasm'), import('@c4312/blake3-internal')]).then(async ([{load}, module]) => {
		// A CommonJS module: its exports are the default export under node, the namespace itself under some loaders.
		const internal = ((module as {default?: Blake3Internal}).default ?? module) as Blake3Internal;
		await load();
		return blake3Hasher(internal.getWasm() as unknown as Blake3Wasm, internal);
	});
	return blake3;
}

function blake3Hasher(wasm: Blake3Wasm, internal: Blake3Internal): Hasher {
	const input = wasm._malloc(WASM_BATCH);
	const output = wasm._malloc(WASM_OUT);
	function hashBlocks(buffer: Buffer, length: number, blockSize: number, out: Buffer, outOffset: number, skip?: Uint8Array): number {
		// Whole blocks per batch, at least one block even when a block exceeds the batch size.
		const perBatch = blockSize > WASM_PIECE ? 1 : Math.floor(WASM_BATCH / blockSize);
		let count = 0;
		for (let start = 0; start < length; start += perBatch * blockSize) {
			const end = Math.min(length, start + perBatch * blockSize);
			if (blockSize > WASM_PIECE) {
				// Blocks over 1 MiB (rare: -b 2M..16M) go through the streaming API, one block per batch.
				if (skip?.[count]) {
					count += 1;
					continue;
				}
				largeDigest(buffer.subarray(start, end), out, outOffset + count * DIGEST_SIZE);
				count += 1;
				continue;
			}
			wasm.HEAPU8.set(buffer.subarray(start, end), input);
			let blocks = 0;
			for (let offset = 0; offset < end - start; offset += blockSize, blocks += 1) {
				if (skip?.[count + blocks]) {
					continue;
				}
				wasm._hash_oneshot(input + offset, Math.min(blockSize, end - start - offset), output + blocks * DIGEST_SIZE, DIGEST_SIZE);
			}
			out.set(wasm.HEAPU8.subarray(output, output + blocks * DIGEST_SIZE), outOffset + count * DIGEST_SIZE);
			count += blocks;
		}
		return count;
	}
	function largeDigest(data: Buffer, out: Buffer, outOffset: number): void {
		const hasher = internal.HashRaw.default();
		const scratch = input;
		try {
			for (let offset = 0; offset < data.length; offset += WASM_PIECE) {
				const piece = data.subarray(offset, offset + WASM_PIECE);
				wasm.HEAPU8.set(piece, scratch);
				hasher.update(scratch, piece.length);
			}
			hasher.read(0n, output, DIGEST_SIZE);
			out.set(wasm.HEAPU8.subarray(output, output + DIGEST_SIZE), outOffset);
		} finally {
			hasher.dispose();
		}
	}
	return {
		name: 'blake3',
		hashBlocks,
		digest(buffer, length, out, outOffset) {
			if (length > WASM_PIECE) {
				largeDigest(buffer.subarray(0, length), out, outOffset);
				return;
			}
			wasm.HEAPU8.set(buffer.subarray(0, length), input);
			wasm._hash_oneshot(input, length, output, DIGEST_SIZE);
			out.set(wasm.HEAPU8.subarray(output, output + DIGEST_SIZE), outOffset);
		},
	};
}

const sha256Hasher: Hasher = {
	name: 'sha256',
	hashBlocks(buffer, length, blockSize, out, outOffset, skip) {
		let count = 0;
		for (let offset = 0; offset < length; offset += blockSize, count += 1) {
			if (skip?.[count]) {
				continue;
			}
			// node:crypto has no allocation-free digest; the 32-byte result is copied straight into out.
			createHash('sha256').update(buffer.subarray(offset, Math.min(length, offset + blockSize))).digest().copy(out, outOffset + count * DIGEST_SIZE);
		}
		return count;
	},
	digest(buffer, length, out, outOffset) {
		createHash('sha256').update(buffer.subarray(0, length)).digest().copy(out, outOffset);
	},
};
