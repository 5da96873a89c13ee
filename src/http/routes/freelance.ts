/**
 * POST /freelance/jobs, GET /freelance/jobs, GET /freelance/jobs/:id and the operator's decision,
 * POST /freelance/jobs/:id/(approve, reject). Job details are shown only with the API token.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { JOB_STATUSES, type Job, type JobStore } from '../../actors/freelance/jobs.js';
import type { FreelancePipeline } from '../../actors/freelance/pipeline.js';
import { QbError } from '../../errors.js';
import type { RouteOptions } from '../../features/feature.js';
import { hasToken, requireToken } from '../auth.js';
import { tooLargeHandler } from './limits.js';

export interface FreelanceRouteDeps {
  jobs: JobStore;
  pipeline: FreelancePipeline;
  /** Bytes of title + description a job may carry. */
  maxJobBytes: number;
}

const JobBody = Type.Object(
  {
    title: Type.String({ minLength: 1, maxLength: 500 }),
    description: Type.Optional(Type.String()),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, pattern: '^https?://' })),
    budget: Type.Optional(Type.Number({ minimum: 0 })),
    currency: Type.Optional(Type.String({ minLength: 3, maxLength: 3, pattern: '^[A-Za-z]{3}$' })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 50 }), { maxItems: 50 })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

const RejectBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(JOB_STATUSES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
  },
  { additionalProperties: false },
);

export function jobView(job: Job, withDetails: boolean): Record<string, unknown> {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  const base = {
    id: job.id,
    status: job.status,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
  };
  if (!withDetails) return base;
  return {
    ...base,
    title: job.title,
    description: job.description,
    url: job.url,
    budget: job.budget,
    currency: job.currency,
    tags: job.tags,
    source: job.source,
    reason: job.reason,
    proposalTaskId: job.proposalTaskId,
    proposal: job.proposal,
    deliveryId: job.deliveryId,
    decidedAt: iso(job.decidedAt),
    deliveredAt: iso(job.deliveredAt),
  };
}

export function freelanceRoutes(deps: FreelanceRouteDeps): FastifyPluginAsync<RouteOptions> {
  return async (fastify, { apiToken, tokenHint }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const auth = requireToken(apiToken, tokenHint);
    const limit = `a job may carry ${deps.maxJobBytes} bytes of title and description`;

    app.post(
      '/freelance/jobs',
      {
        schema: { body: JobBody },
        onRequest: auth,
        bodyLimit: Math.max(64 * 1024, deps.maxJobBytes * 6 + 4096),
        errorHandler: tooLargeHandler(limit),
      },
      async (request, reply) => {
        const b = request.body;
        const bytes = Buffer.byteLength(b.title) + Buffer.byteLength(b.description ?? '');
        if (bytes > deps.maxJobBytes) {
          throw new QbError('QB_ERR_PAYLOAD_TOO_LARGE', `job is ${bytes} bytes; ${limit}`);
        }
        const { job } = await deps.pipeline.submit(
          {
            ...b,
            currency: b.currency?.toUpperCase(),
            source: b.source ?? 'api',
            // A job posted twice with its URL is the same job.
            dedupKey: b.url ? `url:${b.url}` : undefined,
          },
          { allOrNothing: true },
        );
        return reply
          .status(202)
          .send({ id: job.id, status: job.status, ...(job.reason ? { reason: job.reason } : {}) });
      },
    );

    app.get('/freelance/jobs', { schema: { querystring: ListQuery } }, async (request) => {
      const n = Math.min(500, Number(request.query.limit ?? 50));
      const full = hasToken(request, apiToken);
      return { jobs: (await deps.jobs.list(n, request.query.status)).map((j) => jobView(j, full)) };
    });

    app.get<{ Params: { id: string } }>('/freelance/jobs/:id', async (request) => {
      const job = await deps.jobs.get(request.params.id);
      if (!job) throw new QbError('QB_ERR_NOT_FOUND', `no freelance job ${request.params.id}`);
      return jobView(job, hasToken(request, apiToken));
    });

    app.post<{ Params: { id: string } }>(
      '/freelance/jobs/:id/approve',
      { onRequest: auth },
      async (request) => {
        const job = await deps.pipeline.approve(request.params.id, 'operator');
        request.log.info({ jobId: job.id }, 'freelance job approved by operator');
        return jobView(job, true);
      },
    );

    app.post<{ Params: { id: string } }>(
      '/freelance/jobs/:id/reject',
      { onRequest: auth, schema: { body: Type.Optional(RejectBody) } },
      async (request) => {
        const reason = (request.body as { reason?: string } | undefined)?.reason;
        return jobView(await deps.pipeline.reject(request.params.id, reason), true);
      },
    );
  };
}
