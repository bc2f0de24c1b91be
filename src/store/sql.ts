/**
 * What the repositories need of a database, whichever engine holds it. Statements are written once
 * in the SQL both engines accept, with `?` placeholders (the PostgreSQL client numbers them); the
 * few places where the dialects differ ask `dialect`.
 */
export type Dialect = 'sqlite' | 'postgres';

/** One statement and its positional parameters. */
export interface Statement {
  sql: string;
  params: readonly unknown[];
}

export interface SqlDb {
  readonly dialect: Dialect;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** The number of rows the statement changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** The statements in one transaction, in order, all or none; each one's changed-row count. */
  batch(statements: readonly Statement[]): Promise<number[]>;
}

export const statement = (sql: string, ...params: unknown[]): Statement => ({ sql, params });

/**
 * `?` placeholders as PostgreSQL's `$1, $2, …`. Quoted text is left alone, so a literal '?' in a
 * string or identifier stays what it is.
 */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g, (m) => (m === '?' ? `$${++n}` : m));
}

/** `WHERE …` of the conditions (each with one `?`) whose value is given, and those values in order. */
export function whereGiven(conditions: Record<string, unknown>): { sql: string; params: unknown[] } {
  const given = Object.entries(conditions).filter(([, v]) => v !== undefined);
  return {
    sql: given.length ? `WHERE ${given.map(([c]) => c).join(' AND ')}` : '',
    params: given.map(([, v]) => v),
  };
}
