// A key file's key signs its first USERAUTH_REQUEST, as OpenSSH does (sshconnect2.c sign_and_send_pubkey for a key
// whose private half it holds): ssh2 first asks whether the server would take the key ("publickey -- check", then
// USERAUTH_PK_OK) and signs only then, one more round trip in every login (80 ms on a far link). The agent's keys
// (their private half is not here) keep ssh2's query.
import type {Client} from 'ssh2';

type Sign = (data: Buffer, done: (signature: Buffer) => void) => void;
type AuthPK = (this: unknown, username: string, key: unknown, keyAlgo?: string | Sign, sign?: Sign) => void;
type PrivateKey = {isPrivateKey(): boolean; sign(data: Buffer, hash?: string): Buffer | Error};

/** The hash a signature algorithm names (ssh2's getKeyAlgos pairs); undefined: the key type decides (ed25519, ECDSA). */
export function hashOfKeyAlgorithm(keyAlgo: string | undefined): string | undefined {
	switch (keyAlgo) {
		case 'rsa-sha2-512':
			return 'sha512';
		case 'rsa-sha2-256':
			return 'sha256';
		case 'ssh-rsa':
			return 'sha1';
		default:
			return undefined;
	}
}

function isPrivateKey(key: unknown): key is PrivateKey {
	const candidate = key as Partial<PrivateKey> | null;
	return typeof candidate?.isPrivateKey === 'function' && typeof candidate.sign === 'function' && candidate.isPrivateKey();
}

/**
 * Makes `client` (just after connect(): its protocol exists) sign with a key file's key at once. A signature that
 * fails falls back to ssh2's query, whose answer ssh2 handles (and reports) itself. A build of ssh2 without the
 * internals used here is left as it is.
 */
export function signKeyFilesAtOnce(client: Client): void {
	const protocol = (client as unknown as {_protocol?: {authPK?: AuthPK}})._protocol;
	const original = protocol?.authPK;
	if (!protocol || typeof original !== 'function') {
		return;
	}
	protocol.authPK = function (username, key, keyAlgo, sign) {
		if (sign !== undefined || typeof keyAlgo === 'function' || !isPrivateKey(key)) {
			original.call(this, username, key, keyAlgo, sign);
			return;
		}
		const algorithm = keyAlgo;
		original.call(this, username, key, algorithm, (data, done) => {
			const signature = key.sign(data, hashOfKeyAlgorithm(algorithm));
			if (signature instanceof Error) {
				original.call(this, username, key, algorithm);
				return;
			}
			done(signature);
		});
	};
}
