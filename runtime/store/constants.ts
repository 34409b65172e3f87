/** Where the store lives in the data dir, and its tunables' defaults. */

/** The journal's segments, under the data dir. */
export const JOURNAL_DIR = 'journal';
/** The newest checkpoint, in the data dir. */
export const CHECKPOINT_FILE = 'checkpoint.json';

export const STORE_DEFAULTS = { compactBytes: 8 * 1024 * 1024 };
