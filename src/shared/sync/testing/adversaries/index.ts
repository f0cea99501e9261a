// Every adversary scenario the simulator tests and `npm run bench:gossip` run (SPEC.md G13).
import type { AdversaryScenario } from './types';

export type { AdversaryResult, AdversaryScenario } from './types';

export const scenarios: AdversaryScenario[] = [];
