// How many worker sockets each remote address holds at once, and the cap on it. Counting only:
// the namespace decides what to refuse and says why.

/**
 * Default cap. A classroom or an office reaches the coordinator from behind one NAT, so one
 * address can honestly be 30 laptops with a tab or two each; 64 leaves them room while stopping
 * one machine from opening hundreds of sockets. Behind a reverse proxy every worker shares the
 * proxy's address: raise the cap there.
 */
export const MAX_WORKERS_PER_ADDRESS = 64;

export class AddressCap {
  private readonly perAddress = new Map<string, number>();
  private readonly addressOf = new Map<string, string>();

  constructor(readonly max: number) {}

  /** Takes a place for socket `id` from `address`; false when the address holds `max` already. */
  admit(address: string, id: string): boolean {
    const key = addressKey(address);
    const n = this.perAddress.get(key) ?? 0;
    if (n >= this.max) return false;
    this.perAddress.set(key, n + 1);
    this.addressOf.set(id, key);
    return true;
  }

  /** Gives socket `id`'s place back; a second call for the same socket does nothing. */
  release(id: string): void {
    const key = this.addressOf.get(id);
    if (key === undefined) return;
    this.addressOf.delete(id);
    const n = (this.perAddress.get(key) ?? 1) - 1;
    if (n > 0) this.perAddress.set(key, n);
    else this.perAddress.delete(key);
  }

  count(address: string): number {
    return this.perAddress.get(addressKey(address)) ?? 0;
  }
}

/** An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; count it as a.b.c.d. */
function addressKey(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
