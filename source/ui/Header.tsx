// The header: SRC → DST and the run's parameters.
import React from 'react';
import {Box, Text} from 'ink';
import type {SyncStart} from '../engine/progress.js';
import type {Glyphs} from './glyphs.js';
import {headerLines} from './row-layout.js';

type Props = {readonly start: SyncStart; readonly columns: number; readonly glyphs: Glyphs};

/** Two or more lines: "syncing SRC → DST" (paths shortened in the middle), then the parameters. */
export function Header({start, columns, glyphs}: Props): React.JSX.Element {
	const [first, ...rest] = headerLines(start, columns, glyphs);
	return (
		<Box flexDirection="column">
			<Text bold wrap="truncate-end">{first}</Text>
			{rest.map((line, index) => <Text key={index} dimColor wrap="truncate-end">{line}</Text>)}
		</Box>
	);
}
