// The cells of a worker or total row after its mark, coloured: the bar shows the row's state.
import React from 'react';
import {Text} from 'ink';
import type {RowCells} from './row-layout.js';

type Props = {readonly cells: RowCells; readonly color: string; readonly bold?: boolean};

/** One line of text; only the bar is coloured. */
export function RowCellsText({cells, color, bold = false}: Props): React.JSX.Element {
	return (
		<Text wrap="truncate-end" bold={bold}>
			{cells.label}
			{cells.range === undefined ? '' : ` ${cells.range}`}
			{cells.bar === undefined ? '' : ' '}
			{cells.bar === undefined ? '' : <Text color={color}>{cells.bar}</Text>}
			{` ${cells.percent}`}
			{cells.rate === undefined ? '' : ` ${cells.rate}`}
			{cells.changed === undefined ? '' : ` ${cells.changed}`}
		</Text>
	);
}
