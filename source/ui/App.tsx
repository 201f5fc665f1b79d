// The whole TUI for one view: header, warnings, worker rows, total; at the end the same plus the summary, in <Static>.
import React from 'react';
import {Box, Static, Text} from 'ink';
import type {Glyphs} from './glyphs.js';
import {Header} from './Header.js';
import {FinalReport} from './FinalReport.js';
import {headerLines, rowWidths, totalRows} from './row-layout.js';
import {TotalRow} from './TotalRow.js';
import {type TuiView, visibleWorkers} from './tui-model.js';
import {warningLineCount, Warnings} from './Warnings.js';
import {WorkerRow} from './WorkerRow.js';

type Props = {readonly view: TuiView; readonly glyphs: Glyphs};

/** Live warnings shown at once; the final report lists them all. */
const LIVE_WARNINGS = 3;
/** Worker rows in the final report when there are many workers. */
const FINAL_WORKER_ROWS = 16;

/** The frame for a view: live rows while running, the final report (in <Static>) once the view has a summary or an error. */
export function App({view, glyphs}: Props): React.JSX.Element {
	const finished = view.summary !== undefined || view.error !== undefined;
	if (finished) {
		// Written once above the (now empty) live area, so it stays on screen and in the scrollback.
		return (
			<Static items={[view]}>
				{final => (
					<Box key="final" flexDirection="column">
						<Body view={final} glyphs={glyphs} finished maxWorkerRows={FINAL_WORKER_ROWS}/>
						<FinalReport summary={final.summary} error={final.error} columns={final.columns} glyphs={glyphs}/>
					</Box>
				)}
			</Static>
		);
	}
	return <Body view={view} glyphs={glyphs} finished={false} maxWorkerRows={liveWorkerRows(view)}/>;
}

/** Worker rows that fit under the terminal's height with everything else (ink clears the screen when a frame is too tall). */
export function liveWorkerRows(view: TuiView): number {
	const widths = rowWidths(view.workers, view.total.blocksChanged);
	const other = headerLines(view.start, view.columns, {arrow: '->'}).length
		+ warningLineCount(view.warnings.length, LIVE_WARNINGS)
		+ 1 + totalRows({...view, finished: false}, widths, view.columns, {bar: ['-', '#']}).lines.length
		+ (view.stopping ? 1 : 0)
		+ 1; // the line the cursor rests on
	return Math.max(1, view.rows - other);
}

type BodyProps = {readonly view: TuiView; readonly glyphs: Glyphs; readonly finished: boolean; readonly maxWorkerRows: number};

function Body({view, glyphs, finished, maxWorkerRows}: BodyProps): React.JSX.Element {
	const widths = rowWidths(view.workers, view.total.blocksChanged);
	const {shown, hidden} = visibleWorkers(view.workers, maxWorkerRows);
	const more = hidden.done + hidden.running;
	return (
		<Box flexDirection="column">
			<Header start={view.start} columns={view.columns} glyphs={glyphs}/>
			<Warnings warnings={view.warnings} columns={view.columns} limit={finished ? undefined : LIVE_WARNINGS}/>
			{shown.map(worker => <WorkerRow key={worker.id} worker={worker} widths={widths} columns={view.columns} glyphs={glyphs} final={finished}/>)}
			{more > 0 && <Text dimColor wrap="truncate-end">{`  … ${more} more worker${more === 1 ? '' : 's'}: ${hidden.running} running, ${hidden.done} done`}</Text>}
			<TotalRow view={view} widths={widths} columns={view.columns} glyphs={glyphs} finished={finished}/>
			{view.stopping && !finished && <Text color="yellow" wrap="truncate-end">interrupted: stopping the workers and flushing DST…</Text>}
		</Box>
	);
}
