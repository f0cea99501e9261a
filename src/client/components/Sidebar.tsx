// Channels with unread counts. Each is a real link to its URL (middle-click, copy link, back/forward).
import type { MouseEvent, ReactNode } from 'react';
import { visibleControls } from './RichText';
import type { Channel } from '../../shared/protocol/relay';
import { unreadLabel } from '../hooks/useUnread';
import styles from './Sidebar.module.css';

export function Sidebar(props: {
  relayName: string;
  channels: readonly Channel[];
  current: string | null;
  unread: Record<string, number>;
  onOpen(channel: string): void;
  open: boolean;
  /** Bottom of the panel: the identity button (the header hides it at phone width). */
  footer?: ReactNode;
}) {
  const click = (e: MouseEvent, id: string) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    props.onOpen(id);
  };
  return (
    <nav className={styles.sidebar} data-open={props.open} aria-label="Channels" id="sidebar">
      <div className={styles.relay}>
        <bdi>{visibleControls(props.relayName)}</bdi>
      </div>
      <ul className={styles.list}>
        {props.channels.map((c) => {
          const n = props.unread[c.id] ?? 0;
          return (
            <li key={c.id}>
              <a
                href={`/c/${c.id}`}
                className={styles.channel}
                aria-current={c.id === props.current ? 'page' : undefined}
                data-unread={n > 0}
                onClick={(e) => click(e, c.id)}
                data-testid={`channel-${c.id}`}
              >
                <span className={styles.hash} aria-hidden>
                  #
                </span>
                <span className={styles.name}>{c.id}</span>
                {n > 0 && (
                  <span className={styles.count} data-testid={`unread-${c.id}`} aria-label={`${unreadLabel(n)} unread`}>
                    {unreadLabel(n)}
                  </span>
                )}
              </a>
            </li>
          );
        })}
      </ul>
      {props.footer}
    </nav>
  );
}
