// Every adversary scenario the simulator tests and `npm run bench:gossip` run (SPEC.md G13, G11); each file
// exports `scenario`.
import { scenario as chunkCorrupter } from './chunkCorrupter';
import { scenario as duplicateLinks } from './duplicateLinks';
import { scenario as linkHog } from './linkHog';
import { scenario as reconBomb } from './reconBomb';
import { scenario as slowHonestPeer } from './slowHonestPeer';
import { scenario as staller } from './staller';
import type { AdversaryScenario } from './types';

export type { AdversaryResult, AdversaryScenario } from './types';

export const scenarios: AdversaryScenario[] = [staller, linkHog, reconBomb, duplicateLinks, slowHonestPeer, chunkCorrupter];
