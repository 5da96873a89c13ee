/**
 * How a configuration variable is declared: once, with its name, default, parser and meaning. A
 * slice of the configuration is a table of such variables; its TypeScript type is derived from the
 * table ({@link ValuesOf}), so a variable is written in one place only.
 */

/** Turns the raw text of a variable into its value; throws an Error whose message names the variable. */
export type Parser<T> = (raw: string, name: string, warn: (message: string) => void) => T;

/** One environment variable as documented: name, default (as a user would write it) and meaning. */
export interface EnvVarSpec {
  name: string;
  default: string | undefined;
  description: string;
  secret?: boolean;
}

/** A declared variable: its documentation, its parser, and the value it takes when unset. */
export interface Var<T> extends EnvVarSpec {
  parse: Parser<T>;
  /** The value when the variable is unset and has no default (undefined unless declared). */
  unset: T;
}

interface VarOptions {
  secret?: boolean;
}

/** A variable with a default, written as a user would write it (it is parsed like any value). */
export function withDefault<T>(
  name: string,
  defaultValue: string,
  parse: Parser<T>,
  description: string,
  options: VarOptions = {},
): Var<T> {
  return { name, default: defaultValue, parse, description, secret: options.secret, unset: undefined as T };
}

/** A variable without a default: undefined when unset, unless `unset` gives an empty value (a list). */
export function optional<T>(
  name: string,
  parse: Parser<T>,
  description: string,
  options?: VarOptions,
): Var<T | undefined>;
export function optional<T>(
  name: string,
  parse: Parser<T>,
  description: string,
  options: VarOptions & { unset: T },
): Var<T>;
export function optional<T>(
  name: string,
  parse: Parser<T>,
  description: string,
  options: VarOptions & { unset?: T } = {},
): Var<T | undefined> {
  return { name, default: undefined, parse, description, secret: options.secret, unset: options.unset };
}

// biome-ignore lint/suspicious/noExplicitAny: a table holds variables of every value type
export type VarTable = Record<string, Var<any>>;

/** The configuration slice a table of variables produces. */
export type ValuesOf<S extends VarTable> = { [K in keyof S]: S[K] extends Var<infer T> ? T : never };

/** Reads one variable; the caller collects problems instead of throwing at the first. */
export type VarReader = <T>(v: Var<T>) => T;

export function readTable<S extends VarTable>(table: S, read: VarReader): ValuesOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(table)) out[key] = read(v);
  return out as ValuesOf<S>;
}

/** The documentation of a table, in declaration order. */
export function docsOf(table: VarTable): EnvVarSpec[] {
  return Object.values(table).map(({ name, default: d, description, secret }) => ({
    name,
    default: d,
    description,
    ...(secret ? { secret } : {}),
  }));
}
