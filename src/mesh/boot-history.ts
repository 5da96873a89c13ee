/**
 * Which boots of each peer id have been replaced. A process gets a new bootId at every start, so a
 * replaced boot never links again, unless it is still alive: then two live processes share one
 * PEER_ID, and without this they would replace each other for ever (each relinks within 100-250 ms).
 * A link from a replaced boot while the current one is linked is that conflict. Pure and bounded.
 */

/** Replaced boots remembered per peer id (a peer restarting often forgets its oldest). */
const BOOTS_PER_PEER = 8;
/** Peer ids remembered (the oldest-touched is forgotten first). */
const MAX_PEERS = 1024;

export class BootHistory {
  private readonly retired = new Map<string, string[]>();

  /** `bootId` of `peerId` was replaced by a newer link. */
  retire(peerId: string, bootId: string): void {
    const boots = this.retired.get(peerId) ?? [];
    this.retired.delete(peerId);
    if (!boots.includes(bootId)) boots.push(bootId);
    if (boots.length > BOOTS_PER_PEER) boots.shift();
    this.retired.set(peerId, boots);
    if (this.retired.size > MAX_PEERS) {
      const oldest = this.retired.keys().next().value;
      if (oldest !== undefined) this.retired.delete(oldest);
    }
  }

  isRetired(peerId: string, bootId: string): boolean {
    return this.retired.get(peerId)?.includes(bootId) ?? false;
  }
}
