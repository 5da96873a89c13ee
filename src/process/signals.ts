/**
 * SIGTERM and SIGINT for the whole life of the process. The listeners are installed once, as early
 * as the entry can (bot.js, before the program is loaded), and never removed: Node drops a signal
 * whose listener is taken off between the signal's arrival and its dispatch, which once lost a
 * SIGTERM sent during start-up (the process ran on until a second signal). The role that runs
 * (supervisor, worker) claims the signals with onStopSignal; a signal that came before the claim is
 * handed to it at once, so a stop request at any moment ends in the role's own graceful stop.
 */
export type StopSignal = 'SIGTERM' | 'SIGINT';
export type StopHandler = (signal: StopSignal) => void;

const STOP_SIGNALS: readonly StopSignal[] = ['SIGTERM', 'SIGINT'];

let installed = false;
let handler: StopHandler | undefined;
/** The first signal that came while no role had claimed them. */
let early: StopSignal | undefined;

function receive(signal: StopSignal): void {
  if (handler) handler(signal);
  else early ??= signal;
}

/** Installs the listeners; idempotent (bot.js and main.ts both call it). */
export function catchStopSignals(): void {
  if (installed) return;
  installed = true;
  for (const signal of STOP_SIGNALS) process.on(signal, receive);
}

/**
 * Makes `stop` the receiver of every later SIGTERM/SIGINT (it must tolerate repeats), and calls it
 * now if one already came.
 */
export function onStopSignal(stop: StopHandler): void {
  catchStopSignals();
  handler = stop;
  const pending = early;
  early = undefined;
  if (pending) stop(pending);
}
