/**
 * Collects the requests made during one turn of the event loop and hands them to `flush` together
 * (on the next setImmediate), so an asynchronous backend can commit them in one statement. `flush`
 * answers each request with its result or its own Error, in order; a rejection of `flush` itself
 * rejects every request of the batch (none of them was committed).
 */
export class Batcher<Req, Res> {
  #pending: Array<{ req: Req; resolve: (v: Res) => void; reject: (e: unknown) => void }> = [];
  #scheduled = false;

  constructor(
    private readonly flush: (requests: Req[]) => Promise<Array<Res | Error>>,
    private readonly maxBatch = 1_000,
  ) {}

  add(req: Req): Promise<Res> {
    const { promise, resolve, reject } = Promise.withResolvers<Res>();
    this.#pending.push({ req, resolve, reject });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
    return promise;
  }

  #drain(): void {
    this.#scheduled = false;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.maxBatch);
      this.flush(batch.map((p) => p.req)).then(
        (results) => {
          batch.forEach((p, i) => {
            const r = results[i];
            if (r instanceof Error) p.reject(r);
            else p.resolve(r as Res);
          });
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      );
    }
  }
}
