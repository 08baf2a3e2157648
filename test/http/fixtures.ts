import { readFileSync } from 'node:fs';

const FIXTURES = new URL('../fixtures/alertmanager-0.25/', import.meta.url);

/** A real Alertmanager 0.25 payload from test/fixtures, parsed. */
export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as Record<string, unknown>;
}

/** The same payload as raw bytes, exactly as Alertmanager sent it. */
export function fixtureText(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}
