// The TUI of a run over many files: finished files (and warnings) once in <Static>, a row per file under way, the total.
import React from 'react';
import {Box, Static, Text} from 'ink';
import Spinner from 'ink-spinner';
import type {Glyphs} from './glyphs.js';
import {type FileView, fileRow, type ManyRowCells, manyTotalRow, type ManyTotalView, nameWidth, visibleFiles} from './many-layout.js';

/** A line written once above the live rows: a file's result, a warning or a note. */
export type ManyLine = {readonly key: number; readonly text: string; readonly kind: 'ok' | 'failed' | 'warning' | 'note'};

export type ManyView = {
	readonly lines: readonly ManyLine[];
	readonly files: readonly FileView[];
	readonly total: ManyTotalView;
	readonly columns: number;
	readonly rows: number;
	readonly stopping: boolean;
	/** Over: no live rows left. */
	readonly finished: boolean;
	/** --watch between passes: this one row instead of the live rows. */
	readonly idle?: string;
};

type Props = {readonly view: ManyView; readonly glyphs: Glyphs};

export function ManyApp({view, glyphs}: Props): React.JSX.Element {
	const width = nameWidth(view.files.map(file => file.path), view.columns);
	// Header lines: the total row, its line, the stopping line, the cursor's line; a file row for the rest.
	const {shown, more} = visibleFiles(view.files, Math.max(1, view.rows - 4 - (view.stopping ? 1 : 0)));
	const total = manyTotalRow(view.total, width, view.columns, glyphs);
	return (
		<>
			<Static items={[...view.lines]}>
				{line => <LineText key={line.key} line={line} glyphs={glyphs}/>}
			</Static>
			{!view.finished && view.idle !== undefined && view.files.length === 0 && (
				<Box flexDirection="column">
					<Text wrap="truncate-end"><Text color="cyan"><Spinner type="line"/></Text>{` ${view.idle}`}</Text>
					{view.stopping && <Text color="yellow" wrap="truncate-end">interrupted: stopping the files under way…</Text>}
				</Box>
			)}
			{!view.finished && (view.idle === undefined || view.files.length > 0) && (
				<Box flexDirection="column">
					{shown.map(file => (
						<Box key={file.path}>
							<Text color="cyan"><Spinner type="line"/></Text>
							<Text> </Text>
							<Cells cells={fileRow(file, width, view.columns, glyphs)} color="cyan"/>
						</Box>
					))}
					{more > 0 && <Text dimColor wrap="truncate-end">{`  … ${more} more file${more === 1 ? '' : 's'} under way`}</Text>}
					<Box>
						<Text>{'  '}</Text>
						<Cells bold cells={total.cells} color="blue"/>
					</Box>
					<Text wrap="truncate-end">{total.line}</Text>
					{view.stopping && <Text color="yellow" wrap="truncate-end">interrupted: stopping the files under way…</Text>}
				</Box>
			)}
		</>
	);
}

function LineText({line, glyphs}: {readonly line: ManyLine; readonly glyphs: Glyphs}): React.JSX.Element {
	if (line.kind === 'ok') {
		return <Text><Text color="green">{glyphs.done}</Text>{` ${line.text}`}</Text>;
	}
	if (line.kind === 'failed') {
		return <Text><Text color="red">{glyphs.failed}</Text>{` ${line.text}`}</Text>;
	}
	return <Text color={line.kind === 'warning' ? 'yellow' : undefined}>{line.text}</Text>;
}

function Cells({cells, color, bold = false}: {readonly cells: ManyRowCells; readonly color: string; readonly bold?: boolean}): React.JSX.Element {
	return (
		<Text wrap="truncate-end" bold={bold}>
			{cells.label}
			{cells.bar === undefined ? '' : ' '}
			{cells.bar === undefined ? '' : <Text color={color}>{cells.bar}</Text>}
			{` ${cells.percent}`}
			{cells.bytes === undefined ? '' : ` ${cells.bytes}`}
			{cells.rate === undefined ? '' : ` ${cells.rate}`}
		</Text>
	);
}
