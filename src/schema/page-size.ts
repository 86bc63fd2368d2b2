// Page sizes of every connection: here, apart from connection.ts, so the builder can describe them.
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;
