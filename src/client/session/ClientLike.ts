// What the views use of the shared client core: its public UI surface, no more. The app passes the real
// PeerchatClient; page tests pass a scripted fake with the same shape.
import type { PeerchatClient } from '../../shared/client/PeerchatClient';

export type ClientLike = Pick<
  PeerchatClient,
  'getSnapshot' | 'subscribe' | 'on' | 'post' | 'retry' | 'discard' | 'trustRelayKey' | 'reconnect' | 'syncNow' | 'setMemberPage' | 'watchUsers' | 'voice' | 'publishAttachment' | 'fetchAttachment'
>;
