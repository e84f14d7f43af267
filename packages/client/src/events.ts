/** A minimal typed listener set: `on` returns the function that removes the listener. */
export function createEmitter<T>() {
  const listeners = new Set<(value: T) => void>();
  return {
    on(listener: (value: T) => void): () => void {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    emit(value: T): void {
      for (const l of [...listeners]) l(value);
    },
    get size() {
      return listeners.size;
    },
  };
}
