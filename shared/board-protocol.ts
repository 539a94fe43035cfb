// What the classroom board receives: the `/board` Socket.IO namespace's one event and its shape.
// Shared by server/routes/board.ts and client/pages/board.ts; no DOM, no Node APIs here.
import type { MetricPoint, Placement, RunSummary } from './protocol.ts';

/** Socket.IO namespace of the board page (public, read-only). */
export const BOARD_NAMESPACE = '/board';

/** How often, at most, a board is sent an update. */
export const BOARD_UPDATE_MS = 1000;

/** The run as the board shows it: the summary GET /api/runs/:id gives. */
export type BoardRun = RunSummary;

/** One connected worker's tile. Strings are as the worker sent them: render them as text. */
export interface BoardWorker {
  id: string;
  nickname: string | null;
  backend: string;
  /** "vendor architecture description", '' when unknown. */
  adapter: string;
  samplesPerSec: number;
  /** Samples it computed that were folded into rounds. */
  samples: number;
  /** Fraction (0..1) of the run's accepted samples that came from this worker. */
  share: number;
  /** Pipeline runs: which layers of which replica it holds (null: standby or data-parallel). */
  placement: Placement | null;
}

/** The one aggregated message a board gets, at most once per BOARD_UPDATE_MS. */
export interface BoardUpdate {
  run: BoardRun;
  workers: BoardWorker[];
  grid: {
    /** Samples/s of the whole grid over the last few seconds of rounds. */
    samplesPerSec: number;
    /** The fastest single worker's speed as the coordinator measures it (its pace when computing). */
    bestWorkerSamplesPerSec: number;
    /** Σ of every worker's measured speed: what the class would do if no one ever waited. */
    offeredSamplesPerSec: number;
    /** samplesPerSec / offeredSamplesPerSec (null until known): the share of the class's speed that trains the model. */
    efficiency: number | null;
  };
  /** Metric points committed since the previous update (the first update carries the history). */
  points: MetricPoint[];
  /** Points sent earlier, again with their evaluation's numbers, which arrived after them (evaluation runs off the loop). */
  evaluated?: MetricPoint[];
  /** The run's parameter version: fetch GET /api/runs/:id/params when it changes. */
  version: number;
}

export interface BoardServerEvents {
  board: (update: BoardUpdate) => void;
}

/** The handshake a board sends: `io('/board', { auth: { runId } })`. */
export interface BoardAuth {
  runId: string;
}

/** Header of GET /api/runs/:id/params naming the parameter version in the body. */
export const PARAMS_VERSION_HEADER = 'x-crowdtrain-version';
