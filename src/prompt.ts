/**
 * The autonomous-mode prompt of the 24/7 guide: one paragraph that says what this peer will do on
 * its own, logged once at start and shown in /status as `prompt`, so an operator reading either
 * knows what was switched on without reading the environment.
 *
 * The work it names comes from the registered subsystems, never from the configuration alone: a
 * switch such as BOT_ENABLED=true promises nothing until a trading subsystem is registered, and once
 * one is, its own `describe` phrase appears here without a change to this file.
 */
import type { Config } from './config.js';

/** What the prompt needs of a subsystem registration (see actors/registry.ts). */
export interface PromptSubsystem {
  name: string;
  enabled: boolean;
  describe?: string;
}

/** Subsystems the guide promises, by registry name, and the switch that asks for each. */
const PLANNED = [
  { name: 'trading', label: 'trading', variable: 'BOT_ENABLED' },
  { name: 'freelance', label: 'freelance', variable: 'FREELANCE_ENABLED' },
  { name: 'ai', label: 'AI tasks', variable: 'AI_ENABLED' },
] as const;

export function autonomousPrompt(config: Readonly<Config>, subsystems: readonly PromptSubsystem[]): string {
  const mode = config.continuousMode
    ? 'Continuous autonomous mode: running 24/7, restarting any failed subsystem with backoff and respawning the worker process if it dies.'
    : 'Single-process mode: a fatal error ends the process for an outside manager to restart.';
  const start = config.autoStart
    ? 'Subsystems start on their own.'
    : 'Subsystems wait for an operator (AUTO_START=false): POST /subsystems/<name>/start.';
  const phrase = (s: PromptSubsystem) => s.describe ?? s.name;
  const runs = subsystems.filter((s) => s.enabled).map(phrase);
  const off = subsystems.filter((s) => !s.enabled).map(phrase);
  const registered = new Set(subsystems.map((s) => s.name));
  const missing = PLANNED.filter((p) => !registered.has(p.name));
  return [
    mode,
    start,
    `Work: ${runs.length > 0 ? runs.join('; ') : 'none'}.`,
    off.length > 0 ? `Off: ${off.join('; ')}.` : '',
    missing.length > 0
      ? `Not in this build yet (${missing.map((p) => p.variable).join(', ')} change nothing): ${missing.map((p) => p.label).join(', ')}.`
      : '',
    'The kill switch (POST /kill-switch) halts every operation at once.',
  ]
    .filter(Boolean)
    .join(' ');
}
