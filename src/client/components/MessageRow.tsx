// One row of the list: a day separator, the "new" divider, a gap the prev chain shows, a stored message,
// or one of the user's own posts still in flight. Padding only (no margins): the virtualizer measures
// border boxes, and margins would make rows overlap.
import { memo } from 'react';
import { fingerprint } from '../../shared/crypto/signing';
import { fromB64url } from '../../shared/encoding';
import type { Envelope } from '../../shared/protocol/relay';
import type { Row } from '../history/buildRows';
import { authorNameOf } from '../hooks/useNames';
import { AuthorName } from './AuthorName';
import { MessageAttachments } from './MessageAttachments';
import { RichText, visibleControls } from './RichText';
import styles from './MessageRow.module.css';

export type NameLookup = (publicKey: string) => string | undefined;

const fpCache = new Map<string, string>();
/** Bounded: a channel has few authors, but a hostile history could bring many keys. */
const FP_CACHE_MAX = 4096;
export function fingerprintOf(publicKey: string): string {
  let fp = fpCache.get(publicKey);
  if (!fp) {
    const bytes = fromB64url(publicKey);
    fp = bytes ? fingerprint(bytes) : '????-????';
    if (fpCache.size >= FP_CACHE_MAX) fpCache.delete(fpCache.keys().next().value!);
    fpCache.set(publicKey, fp);
  }
  return fp;
}

export const REASON_TEXT: Record<string, string> = {
  RATE_LIMITED: 'rate limited: wait a moment',
  TOO_LARGE: 'too long',
  BAD_INPUT: 'refused by the relay',
  NOT_LOGGED_IN: 'not connected',
  UNKNOWN_CHANNEL: 'this channel no longer exists',
  OFFLINE: 'relay unreachable',
  NOT_ONLINE: 'not connected to the relay',
  CONNECTION_LOST: 'the connection to the relay dropped',
};

// One formatter each, made once: toLocale*String builds a new Intl formatter per call, which was the
// largest single cost of rendering a page of rows (0.8 s of a 10,000-message catch-up's profile).
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
const time = (ts: number) => timeFormat.format(ts);

interface Props {
  row: Row;
  self: string;
  names: NameLookup;
  flash: boolean;
  original(id: string): Envelope | undefined;
  onReply(env: Envelope): void;
  onJumpToOriginal(id: string): void;
  onRetry(clientId: string): void;
  onDiscard(clientId: string): void;
}

function Quote({ id, props }: { id: string; props: Props }) {
  const orig = props.original(id);
  return (
    <button type="button" className={styles.quote} onClick={() => props.onJumpToOriginal(id)} data-testid="reply-quote">
      <span aria-hidden>↱ </span>
      {orig ? (
        <>
          <AuthorName name={authorNameOf(orig, props.names) ?? 'unknown'} publicKey={orig.post.author} fingerprint={fingerprintOf(orig.post.author)} />{' '}
          <span className={styles.quoteText}>{visibleControls(orig.post.text.slice(0, 120))}</span>
        </>
      ) : (
        <span className={styles.quoteText}>a message not loaded here (click to find it)</span>
      )}
    </button>
  );
}

export const MessageRow = memo(function MessageRow(props: Props) {
  const { row } = props;
  if (row.kind === 'new') {
    return (
      <div className={styles.newDivider} role="separator" data-testid="new-divider">
        <span>new</span>
      </div>
    );
  }
  if (row.kind === 'gap') {
    return (
      <div className={styles.gap} data-testid="history-gap">
        Messages are missing here: no peer online had them.
      </div>
    );
  }
  if (row.kind === 'out') {
    const p = row.post;
    return (
      <>
      {row.day && <DaySeparator label={row.day} />}
      <div className={`${styles.msg} ${row.head ? styles.head : ''} ${styles.own}`} data-state={p.state} data-testid="own-pending">
        {row.head && (
          <div className={styles.meta}>
            <AuthorName name={props.names(props.self) ?? 'you'} publicKey={props.self} fingerprint={fingerprintOf(props.self)} self />
          </div>
        )}
        {p.replyTo && <Quote id={p.replyTo} props={props} />}
        {p.text && (
          <div className={styles.body}>
            <RichText text={p.text} />
          </div>
        )}
        {p.attachments && <MessageAttachments attachments={p.attachments} />}
        {p.state === 'sending' ? (
          <div className={styles.status}>sending…</div>
        ) : (
          <div className={styles.failed} role="status">
            {p.reason === 'QUOTA_EXCEEDED'
              ? 'Sent, but not saved in this browser: its storage is full. Free space, then Retry.'
              : `Not sent: ${REASON_TEXT[p.reason ?? ''] ?? p.reason ?? 'unknown error'}.`}{' '}
            <button type="button" onClick={() => props.onRetry(p.clientId)}>Retry</button>{' '}
            <button type="button" onClick={() => props.onDiscard(p.clientId)}>Discard</button>
          </div>
        )}
      </div>
      </>
    );
  }
  const { env } = row;
  const author = env.post.author;
  const mine = author === props.self;
  return (
    <>
    {row.day && <DaySeparator label={row.day} />}
    <div
      className={`${styles.msg} ${row.head ? styles.head : ''} ${props.flash ? styles.flash : ''}`}
      data-testid="message"
      data-id={env.id}
      data-state="confirmed"
    >
      {row.head && (
        <div className={styles.meta}>
          <AuthorName name={authorNameOf(env, props.names) ?? 'unknown'} publicKey={author} fingerprint={fingerprintOf(author)} self={mine} />
          <time className={styles.time} dateTime={new Date(env.ts).toISOString()} title={fullFormat.format(env.ts)}>
            {time(env.ts)}
          </time>
        </div>
      )}
      {env.post.replyTo && <Quote id={env.post.replyTo} props={props} />}
      {env.post.text && (
        <div className={styles.body}>
          <RichText text={env.post.text} />
        </div>
      )}
      <MessageAttachments attachments={env.post.attachments} />
      <div className={styles.actions}>
        <button type="button" onClick={() => props.onReply(env)} aria-label="Reply">
          Reply
        </button>
      </div>
    </div>
    </>
  );
});

function DaySeparator({ label }: { label: string }) {
  return (
    <div className={styles.day} role="separator" aria-label={label}>
      <span>{label}</span>
    </div>
  );
}
