// The total row: overall bar and throughput, then scanned/size, counters, wire bytes, elapsed and ETA.
import React from 'react';
import {Box, Text} from 'ink';
import type {Glyphs} from './glyphs.js';
import {type RowWidths, totalRows} from './row-layout.js';
import {RowCellsText} from './RowCellsText.js';
import type {TuiView} from './tui-model.js';

type Props = {
	readonly view: Pick<TuiView, 'start' | 'total' | 'elapsed' | 'rate' | 'eta'>;
	readonly widths: RowWidths;
	readonly columns: number;
	readonly glyphs: Glyphs;
	readonly finished: boolean;
};

/** The total row and the counter lines under it; no ETA once finished. */
export function TotalRow({view, widths, columns, glyphs, finished}: Props): React.JSX.Element {
	const {cells, lines} = totalRows({...view, finished}, widths, columns, glyphs);
	const complete = view.total.bytesScanned >= view.start.size;
	const color = finished ? (complete ? 'green' : 'red') : 'blue';
	return (
		<Box flexDirection="column">
			<Box>
				<Text>{'  '}</Text>
				<RowCellsText bold cells={cells} color={color}/>
			</Box>
			{lines.map((line, index) => <Text key={index} wrap="truncate-end">{line}</Text>)}
		</Box>
	);
}
