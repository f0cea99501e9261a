// A minimal typed event emitter that works the same in Node and the browser. Listeners that throw are
// contained: one bad UI handler must not stop the sync engine (STYLE.md 7).

export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<(e: never) => void>>();

  on<K extends keyof Events>(event: K, handler: (e: Events[K]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as (e: never) => void);
    return () => set.delete(handler as (e: never) => void);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const h of [...set]) {
      try {
        (h as (e: Events[K]) => void)(payload);
      } catch {
        // A listener's failure is the listener's problem.
      }
    }
  }

  clear(): void {
    this.handlers.clear();
  }
}
