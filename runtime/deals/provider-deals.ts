/**
 * The deals this node bid on, while they are open: each one's provider input (its job, its requester), by deal
 * key, for what arrives outside the provider machine: the module of an allocate, and requests for the output.
 */
import type { ProviderInput } from '../../machines/provider.messages.ts';

export class ProviderDeals {
  readonly #deals = new Map<string, ProviderInput>();

  /** The Node bid (or the deal was recovered at start). */
  open(input: ProviderInput): void {
    this.#deals.set(input.key, input);
  }

  get(key: string): ProviderInput | undefined {
    return this.#deals.get(key);
  }

  /** The provider negotiation ended. */
  close(key: string): void {
    this.#deals.delete(key);
  }
}
