// Every adversary scenario, for the tests and `npm run bench:gossip` (each file exports `scenario`).
import { scenario as duplicateLinks } from './duplicateLinks';
import { scenario as slowHonestPeer } from './slowHonestPeer';
import type { AdversaryScenario } from './types';

export type { AdversaryResult, AdversaryScenario } from './types';

export const scenarios: AdversaryScenario[] = [duplicateLinks, slowHonestPeer];
