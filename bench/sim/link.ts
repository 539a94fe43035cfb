// One direction of a simulated worker's network link, in virtual time: a message of B bytes
// takes latency + B / bandwidth, and messages leave in the order they were sent (one TCP
// connection: a large message holds up the small ones behind it, as on a real socket).
// No clock in here: the caller passes the send time and schedules the arrival.

export interface LinkProfile {
  /** Bandwidth, megabits per second (10^6 bits). */
  mbps: number;
  /** One-way latency, ms. */
  latencyMs: number;
}

/** Framing and metadata of one message, bytes (Socket.IO packet, JSON meta): a round figure. */
export const MESSAGE_OVERHEAD_BYTES = 200;

export class Link {
  /** When the link finishes putting the last queued message on the wire, ms. */
  private freeAt = -Infinity;
  /** Bytes sent so far (payload and overhead). */
  bytes = 0;
  /** Messages sent so far (each paid MESSAGE_OVERHEAD_BYTES). */
  messages = 0;

  constructor(readonly profile: LinkProfile) {
    if (!(profile.mbps > 0) || !(profile.latencyMs >= 0)) throw new RangeError(`a link needs mbps > 0 and latencyMs >= 0, got ${JSON.stringify(profile)}`);
  }

  /** ms to put `bytes` on the wire. */
  transmitMs(bytes: number): number {
    return (bytes * 8) / (this.profile.mbps * 1000);
  }

  /**
   * Sends `payloadBytes` (plus MESSAGE_OVERHEAD_BYTES) at time `now`; returns when it arrives.
   * @example const at = link.send(407_080, clock.now()); clock.setTimeout(deliver, at - clock.now());
   */
  send(payloadBytes: number, now: number): number {
    const bytes = payloadBytes + MESSAGE_OVERHEAD_BYTES;
    this.bytes += bytes;
    this.messages++;
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + this.transmitMs(bytes);
    return this.freeAt + this.profile.latencyMs;
  }
}
