/** A wake-up call between parts of one process (e.g. "mail was queued"); carries no data. */
export interface Signal {
  wake(): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

export function createSignal(): Signal {
  const channel = createChannel<void>();
  return { wake: () => channel.send(), subscribe: channel.subscribe };
}

/** Like a Signal, but each wake carries a value (e.g. "this mail was handed over"). */
export interface Channel<T> {
  send(value: T): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: (value: T) => void): () => void;
}

export function createChannel<T>(): Channel<T> {
  const listeners = new Set<(value: T) => void>();
  return {
    send: (value) => listeners.forEach((l) => l(value)),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
