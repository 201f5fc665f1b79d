// Warnings from the engine; during the run only the latest few, so the live frame stays short.
import React from 'react';
import {Box, Text} from 'ink';
import {truncateEnd} from './text-fit.js';

type Props = {readonly warnings: readonly string[]; readonly columns: number; readonly limit?: number};

/** Lines Warnings draws for these arguments (the App budgets the screen with it). */
export function warningLineCount(count: number, limit = Number.POSITIVE_INFINITY): number {
	return Math.min(count, limit) + (count > limit ? 1 : 0);
}

/** The last `limit` warnings, one line each, with a count of the earlier ones. */
export function Warnings({warnings, columns, limit = Number.POSITIVE_INFINITY}: Props): React.JSX.Element {
	const shown = warnings.slice(Math.max(0, warnings.length - limit));
	const hidden = warnings.length - shown.length;
	return (
		<Box flexDirection="column">
			{hidden > 0 && <Text color="yellow" dimColor>{truncateEnd(`(${hidden} earlier warning${hidden === 1 ? '' : 's'})`, columns - 1)}</Text>}
			{shown.map((warning, index) => <Text key={index} color="yellow" wrap="truncate-end">{truncateEnd(`warning: ${warning}`, columns - 1)}</Text>)}
		</Box>
	);
}
