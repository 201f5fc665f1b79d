// The remote side: speaks the protocol on stdin/stdout (see doc/protocol.md).
export async function runAgent(): Promise<number> {
	process.stderr.write('rblocksync: agent mode is not built yet\n');
	return 1;
}
