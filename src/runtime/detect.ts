/** Which runtime we are on. The only place that sniffs globals; adapters import these flags. */
export const isBun: boolean = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'
export const isDeno: boolean = typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
