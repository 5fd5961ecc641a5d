// Round-robin fair queuing over keys, two levels deep: (tenant, flow) — for the adapter a sandbox
// and an (episode, stage). Each shift() serves the next tenant in turn, and within that tenant
// the next flow in turn, so a tenant (or one flow inside it) with a deep backlog gets its share
// and no more: a sandbox whose sample floods telemetry cannot delay another sandbox's events
// beyond one item per round. push and shift are O(1) amortised.

/** A FIFO with a moving head (Array#shift is O(n)). */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }
}

/** Round robin over keyed sub-queues; a key leaves the rotation when its queue empties. */
class Rotation<Q extends { readonly size: number }> {
  readonly #queues = new Map<string, Q>();
  readonly #order = new Fifo<string>();

  get keys(): number {
    return this.#queues.size;
  }

  /** The queue of `key`, created (and put at the end of the rotation) when absent. */
  queue(key: string, create: () => Q): Q {
    let q = this.#queues.get(key);
    if (!q) {
      q = create();
      this.#queues.set(key, q);
      this.#order.push(key);
    }
    return q;
  }

  /** Takes from the queue whose turn it is; requeues the key behind the others if it has more. */
  take<T>(from: (q: Q) => T | undefined): T | undefined {
    for (let tries = this.#order.size; tries > 0; tries--) {
      const key = this.#order.shift()!;
      const q = this.#queues.get(key)!;
      const item = from(q);
      if (q.size > 0) this.#order.push(key);
      else this.#queues.delete(key);
      if (item !== undefined) return item;
    }
    return undefined;
  }

  /** The queue whose turn is next, without taking from it. */
  next(): Q | undefined {
    const key = this.#order.peek();
    return key === undefined ? undefined : this.#queues.get(key);
  }
}

class Flows<T> {
  readonly rotation = new Rotation<Fifo<T>>();
  size = 0;
}

export class FairQueue<T> {
  readonly #tenants = new Rotation<Flows<T>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Tenants with something queued. */
  get tenants(): number {
    return this.#tenants.keys;
  }

  push(tenant: string, flow: string, item: T): void {
    const flows = this.#tenants.queue(tenant, () => new Flows<T>());
    flows.rotation.queue(flow, () => new Fifo<T>()).push(item);
    flows.size++;
    this.#size++;
  }

  /** The item whose turn it is, or undefined when empty. */
  shift(): T | undefined {
    const item = this.#tenants.take((flows) => {
      const taken = flows.rotation.take((fifo) => fifo.shift());
      if (taken !== undefined) flows.size--;
      return taken;
    });
    if (item !== undefined) this.#size--;
    return item;
  }

  /** The item shift() would return next, without removing it. */
  peek(): T | undefined {
    return this.#tenants.next()?.rotation.next()?.peek();
  }
}
