// Enter sends, Shift+Enter is a new line (and so is Enter while an IME is composing). The draft is kept
// per channel. Attachments (part 2) will add a button and a drop zone beside the textarea.
import { type FormEvent, type KeyboardEvent, useEffect, useRef } from 'react';
import type { Envelope } from '../../shared/protocol/relay';
import { useDraft } from '../hooks/useDraft';
import { authorNameOf } from '../hooks/useNames';
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
  onSend(text: string, replyTo: string | null): boolean;
  onEscape?(): void;
}

export function Composer(props: ComposerProps) {
  const [draft, setDraft] = useDraft(props.channel);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => ref.current?.focus(), [props.channel, props.replyTo]);

  const send = () => {
    const text = draft.trim();
    if (!text || text.length > props.maxLength) return;
    if (props.onSend(text, props.replyTo?.id ?? null)) setDraft('');
  };
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === 'Escape') {
      if (props.replyTo) props.onCancelReply();
      else props.onEscape?.();
    }
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    send();
  };
  const over = draft.length > props.maxLength;
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
      <div className={styles.row}>
        <textarea
          ref={ref}
          className={styles.input}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKey}
          rows={1}
          placeholder={`Message #${props.channel}`}
          aria-label={`Message #${props.channel}`}
          aria-describedby={over ? 'composer-over' : undefined}
          data-testid="composer"
        />
        <button type="submit" className={styles.send} disabled={!draft.trim() || over}>
          Send
        </button>
      </div>
      {over && (
        <div id="composer-over" className={styles.over} role="status">
          {draft.length} / {props.maxLength} characters: too long to send.
        </div>
      )}
    </form>
  );
}
