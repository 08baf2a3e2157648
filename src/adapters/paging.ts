import { statusOf } from './kube-api.js';

/** Items per page when listing: kubectl's default; one page of full objects is held at a time. */
export const PAGE_SIZE = 500;

/** What to ask for: one page of `limit` items, from `_continue` on. */
export interface PageRequest {
  limit: number;
  _continue?: string;
}

/** One page as the API server answers it (client-node's `…List` types). */
export interface Page<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string };
}

/** What one pass over the pages keeps of each item, and makes of them at the end. */
export interface Fold<T, R> {
  add(item: T): void;
  /** The list's resourceVersion: where a watch of the same collection starts. */
  done(resourceVersion: string): R;
}

/**
 * Lists a collection page by page, handing each item to a fold as it comes: memory stays
 * bounded by one page plus what the fold keeps, never the whole list. An expired continue
 * token (410: the snapshot was compacted) starts one new pass from the beginning with a fresh
 * fold, as the API server asks. Other failures are thrown as they come.
 */
export async function listPaged<T, R>(
  fetchPage: (page: PageRequest) => Promise<Page<T>>,
  fold: () => Fold<T, R>,
  limit = PAGE_SIZE,
): Promise<R> {
  try {
    return await onePass(fetchPage, fold(), limit);
  } catch (error) {
    if (statusOf(error) !== 410) throw error;
  }
  return onePass(fetchPage, fold(), limit);
}

async function onePass<T, R>(
  fetchPage: (page: PageRequest) => Promise<Page<T>>,
  fold: Fold<T, R>,
  limit: number,
): Promise<R> {
  let _continue: string | undefined;
  let resourceVersion = '';
  do {
    const page = await fetchPage({ limit, _continue });
    for (const item of page.items) fold.add(item);
    // Every page of one list is served from the same snapshot, at the same resourceVersion.
    resourceVersion = page.metadata?.resourceVersion || resourceVersion;
    _continue = page.metadata?._continue || undefined;
  } while (_continue);
  return fold.done(resourceVersion);
}
