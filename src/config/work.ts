/** The work the bots do besides trading: freelance jobs and AI tasks. */
import { optional, type ValuesOf, withDefault } from './define.js';
import { bool, text, url } from './parsers.js';

export const FREELANCE_VARS = {
  autoExecute: withDefault('FREELANCE_AUTO_EXECUTE', 'false', bool, 'execute matched jobs without approval'),
};

export const AI_VARS = {
  baseUrl: optional('AI_BASE_URL', url, 'OpenAI-compatible endpoint (OpenAI, Ollama, vLLM...)'),
  apiKey: optional('AI_API_KEY', text, 'API key of the AI endpoint', { secret: true }),
  model: optional('AI_MODEL', text, 'default model of AI tasks'),
};

export type FreelanceConfig = ValuesOf<typeof FREELANCE_VARS>;
export type AiConfig = ValuesOf<typeof AI_VARS>;
