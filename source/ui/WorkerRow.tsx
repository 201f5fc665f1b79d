// One worker's live row: spinner (or a mark when done), range, bar, percent, throughput, blocks changed.
import React from 'react';
import {Box, Text} from 'ink';
import Spinner from 'ink-spinner';
import type {Glyphs} from './glyphs.js';
import {type RowWidths, workerRow} from './row-layout.js';
import {RowCellsText} from './RowCellsText.js';
import {isComplete, type WorkerView} from './tui-model.js';

type Props = {
	readonly worker: WorkerView;
	readonly widths: RowWidths;
	readonly columns: number;
	readonly glyphs: Glyphs;
	/** The run is over: no spinner; a worker that did not finish gets the failed mark. */
	readonly final?: boolean;
};

/** ink-spinner while the worker runs, ✓ when it covered its range, ✗ when it stopped short. */
export function WorkerRow({worker, widths, columns, glyphs, final = false}: Props): React.JSX.Element {
	const cells = workerRow(worker, widths, columns, glyphs);
	const complete = isComplete(worker);
	let mark: React.JSX.Element;
	if (complete) {
		mark = <Text color="green">{glyphs.done}</Text>;
	} else if (final || worker.done) {
		// Stopped before the end of its range (Ctrl-C or an error).
		mark = <Text color="red">{glyphs.failed}</Text>;
	} else {
		// 'line' is ASCII (fine on a Linux console) and ticks at 130 ms, under the ~10 redraws a second.
		mark = <Text color="cyan"><Spinner type="line"/></Text>;
	}
	return (
		<Box>
			{mark}
			<Text> </Text>
			<RowCellsText cells={cells} color={complete ? 'green' : final || worker.done ? 'red' : 'cyan'}/>
		</Box>
	);
}
