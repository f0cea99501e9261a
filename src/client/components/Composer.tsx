// Enter sends, Shift+Enter is a new line (and so is Enter while an IME is composing). The draft is kept
// per channel. Files come from "Attach files", a paste, or a drop on the channel (ChannelView); they are
// minted and stored first, then the text and every attachment go out as one post (MD11). A send pressed
// while a file is still being prepared goes out once it is ready: that is what the person asked for.
import { type ClipboardEvent, type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from 'react';
import type { Envelope, SignedAttachment } from '../../shared/protocol/relay';
import { useDraft } from '../hooks/useDraft';
import { authorNameOf } from '../hooks/useNames';
import type { PendingAttachments as Pending } from '../hooks/usePendingAttachments';
import { PendingAttachments } from './PendingAttachments';
import { AuthorName } from './AuthorName';
import { fingerprintOf, type NameLookup } from './MessageRow';
import styles from './Composer.module.css';

export interface ComposerProps {
  channel: string;
  maxLength: number;
  replyTo: Envelope | null;
  names: NameLookup;
  onCancelReply(): void;
  /** Returns false when nothing was sent (empty text). */
  onSend(text: string, replyTo: string | null, attachments: SignedAttachment[]): boolean;
  attachments: Pending;
  onEscape?(): void;
}

export function Composer(props: ComposerProps) {
  const [draft, setDraft] = useDraft(props.channel);
  const ref = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const [sending, setSending] = useState(false);
  /** A send pressed while files were preparing: the channel and the files it waits for. */
  const [queued, setQueued] = useState<{ channel: string; keys: readonly number[] } | null>(null);
  useEffect(() => ref.current?.focus(), [props.channel, props.replyTo]);
  const pending = props.attachments;
  const hasFiles = pending.items.length > 0;

  const send = async () => {
    const text = draft.trim();
    if ((!text && !hasFiles) || text.length > props.maxLength || sending) return;
    if (!pending.settled) {
      setQueued({ channel: props.channel, keys: pending.items.map((i) => i.key) });
      return;
    }
    let attachments: SignedAttachment[] = [];
    if (hasFiles) {
      setSending(true);
      const up = await pending.upload();
      setSending(false);
      // A failed mint keeps everything (text and files) for another try; the item says why.
      if (!up) return;
      attachments = up;
    }
    if (props.onSend(text, props.replyTo?.id ?? null, attachments)) {
      setDraft('');
      pending.clear();
    }
  };
  useEffect(() => {
    if (!queued || !pending.settled) return;
    setQueued(null);
    // Not sent if the person left the channel, or a file it waited for was refused or removed meanwhile
    // (the refusal says why): a post without the photo they attached would surprise them.
    const here = new Set(pending.items.map((i) => i.key));
    if (queued.channel === props.channel && queued.keys.every((k) => here.has(k))) void send();
    // `send` is this render's: it reads the draft and the files as they are now.
  }, [queued, pending.settled, pending.items, props.channel]);
  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    const files = [...e.clipboardData.files];
    if (files.length === 0) return;
    e.preventDefault();
    pending.add(files);
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    } else if (e.key === 'Escape') {
      if (props.replyTo) props.onCancelReply();
      else props.onEscape?.();
    }
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void send();
  };
  const over = draft.length > props.maxLength;
  const waiting = queued?.channel === props.channel;
  const canSend = (!!draft.trim() || hasFiles) && !over && !sending && !waiting;
  return (
    <form className={styles.form} onSubmit={onSubmit} aria-label="Send a message">
      {props.replyTo && (
        <div className={styles.replying} data-testid="replying-to">
          Replying to{' '}
          <AuthorName
            name={authorNameOf(props.replyTo, props.names) ?? 'unknown'}
            publicKey={props.replyTo.post.author}
            fingerprint={fingerprintOf(props.replyTo.post.author)}
          />
          <button type="button" onClick={props.onCancelReply} aria-label="Cancel reply">
            ✕
          </button>
        </div>
      )}
      <PendingAttachments items={pending.items} onRemove={pending.remove} />
      {pending.refused.length > 0 && (
        <div className={styles.refused} role="alert">
          {pending.refused.map((r) => (
            <div key={r}>{r}</div>
          ))}
        </div>
      )}
      <div className={styles.row}>
        <button type="button" className={styles.attach} aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>
          <svg width="20" height="20" viewBox="0 0 20 20" aria-hidden fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round">
            <path d="M10 4v12M4 10h12" />
          </svg>
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          data-testid="attach-input"
          onChange={(e) => {
            pending.add([...(e.target.files ?? [])]);
            // The same file picked again is a new pick.
            e.target.value = '';
          }}
        />
        <textarea
          ref={ref}
          className={styles.input}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKey}
          onPaste={onPaste}
          rows={1}
          placeholder={`Message #${props.channel}`}
          aria-label={`Message #${props.channel}`}
          aria-describedby={over ? 'composer-over' : undefined}
          data-testid="composer"
        />
        <button type="submit" className={styles.send} disabled={!canSend}>
          {sending ? 'Uploading…' : waiting ? 'Sends when ready…' : 'Send'}
        </button>
      </div>
      <div className={styles.keep}>
        <label>
          <input type="checkbox" checked={pending.keepMetadata} onChange={(e) => pending.setKeepMetadata(e.target.checked)} aria-describedby={`keep-hint-${props.channel}`} />{' '}
          Keep photo metadata
        </label>
        <span className={styles.hint} id={`keep-hint-${props.channel}`}>
          {pending.keepMetadata ? 'Photos are shared with their location and camera details' : 'Location and camera details are removed from photos'}
        </span>
      </div>
      {over && (
        <div id="composer-over" className={styles.over} role="status">
          {draft.length} / {props.maxLength} characters: too long to send.
        </div>
      )}
    </form>
  );
}
