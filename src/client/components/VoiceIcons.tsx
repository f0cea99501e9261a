// The muted / deafened marks of a voice member (accessible names "muted", "deafened": UI contract).
export function MutedIcon() {
  return (
    <svg role="img" aria-label="muted" width="14" height="14" viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth="1.6">
      <rect x="5.5" y="1.5" width="5" height="8" rx="2.5" />
      <path d="M3 7.5a5 5 0 0 0 10 0M8 12.5v2" />
      <path d="M2 2l12 12" stroke="var(--danger)" />
    </svg>
  );
}

export function DeafenedIcon() {
  return (
    <svg role="img" aria-label="deafened" width="14" height="14" viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth="1.6">
      <path d="M2.5 10V8a5.5 5.5 0 0 1 11 0v2" />
      <rect x="1.5" y="9.5" width="3" height="4.5" rx="1" />
      <rect x="11.5" y="9.5" width="3" height="4.5" rx="1" />
      <path d="M2 2l12 12" stroke="var(--danger)" />
    </svg>
  );
}
