/** Exit codes shared by the worker and its supervisor. */

/** Graceful stop (SIGTERM, SIGINT). */
export const EXIT_OK = 0;
/** A fatal runtime error: an outside manager (or our supervisor) restarts the process. */
export const EXIT_FAILURE = 1;
/**
 * Configuration the process cannot run with (sysexits EX_CONFIG). Restarting cannot fix it, so the
 * supervisor passes it on instead of respawning in a loop.
 */
export const EXIT_CONFIG = 78;
