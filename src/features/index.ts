/**
 * The features this build has, in build order (a feature may use those before it). Adding a
 * feature is one line here; peer.ts does not change.
 */
import { aiFeature } from './ai.js';
import type { FeatureDefinition } from './feature.js';
import { freelanceFeature } from './freelance.js';
import { tradingFeature } from './trading.js';

export function defaultFeatures(): FeatureDefinition[] {
  return [aiFeature(), freelanceFeature(), tradingFeature()];
}
