// The summary that stays on screen when the run ends: a status line, then the labelled figures.
import React from 'react';
import {Box, Text} from 'ink';
import type {Summary} from '../engine/progress.js';
import type {Glyphs} from './glyphs.js';
import {SUMMARY_LABEL_WIDTH, summaryRows, summaryStatus} from './summary-text.js';
import {flowTokens, truncateEnd} from './text-fit.js';

type Props = {
	/** Absent when the run failed before the engine could summarise it. */
	readonly summary?: Summary;
	/** The error main will print; shown when there is no summary. */
	readonly error?: string;
	readonly columns: number;
	readonly glyphs: Glyphs;
};

/** Status line and the summary rows, values wrapped under their label to fit `columns`. */
export function FinalReport({summary, error, columns, glyphs}: Props): React.JSX.Element {
	const ok = summary?.ok === true;
	const status = summary ? summaryStatus(summary) : error ?? 'stopped';
	const width = Math.max(1, columns - 1);
	const valueWidth = Math.max(10, width - SUMMARY_LABEL_WIDTH);
	return (
		<Box flexDirection="column" marginTop={1}>
			<Text bold color={ok ? 'green' : 'red'} wrap="truncate-end">{truncateEnd(`${ok ? glyphs.done : glyphs.failed} ${status}`, width)}</Text>
			{summary && summaryRows(summary).flatMap(row => {
				const parts = row.parts.map((part, index) => (index < row.parts.length - 1 ? `${part},` : part));
				return flowTokens(parts, valueWidth, 1).map((line, index) => (
					<Text key={`${row.label}-${index}`} wrap="truncate-end">
						<Text dimColor>{(index === 0 ? row.label : '').padEnd(SUMMARY_LABEL_WIDTH)}</Text>
						{line}
					</Text>
				));
			})}
		</Box>
	);
}
