// GET /api/v1/findings/{id}/explain: one finding explained (services/report/explain.ts) from the window of raw events
// the store kept with it (finding_events): the timeline, the state the rule judged with the event that established
// each piece, what was unknown, the rule, the kernel function it mirrors and what to check next.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { explain } from '../../report/explain.js';
import { explainInputFromStore } from '../../report/explain-input.js';
import { readFindingWindow } from '../../store/finding-window.js';
import { UnknownId } from '../errors.js';
import { RESOURCE_DEPENDENCIES } from '../plugins.js';
import { errorSchema, findingKindNames, severityNames } from '../schemas.js';
import { typed } from '../types.js';

const ns = { type: 'number', description: 'nanoseconds (host CLOCK_MONOTONIC for absolute times)' } as const;
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const stackId = { type: ['integer', 'null'], description: 'a kernel stack id (frames in stacks; null: none)' } as const;

const piece = {
  type: 'object', required: ['value', 'known', 'since'],
  properties: {
    value: { type: ['boolean', 'number', 'string'] }, known: bool,
    since: {
      type: ['object', 'null'], description: 'the replayed event that last set it (null: none did)',
      properties: { step: { type: 'integer' }, tsNs: ns, relNs: ns, event: str },
    },
    unknown: { type: 'array', items: str, description: 'why it is unknown (only when known is false)' },
  },
} as const;

const deviceState = {
  type: 'object',
  properties: Object.fromEntries(['lock', 'memoryEnabled', 'memoryBit', 'lowPower', 'revoked', 'permanentRevoke', 'open', 'mappings']
    .map((n) => [n, piece])),
} as const;

export const explanationSchema = {
  type: 'object',
  required: ['finding', 'reason', 'rule', 'evidence', 'unknown', 'episode', 'window', 'reproduced', 'timeline', 'stacks', 'stateAtFinding', 'next'],
  properties: {
    finding: {
      type: 'object',
      properties: {
        findingId: str, kind: { type: 'string', enum: findingKindNames }, severity: { type: 'string', enum: severityNames }, inconclusive: bool,
        hostname: str, bootId: str, device: str, driver: str, kernelRelease: str, episodeId: str, tsNs: ns,
      },
    },
    reason: { type: 'string', description: 'what the finding means, in plain language' },
    rule: { type: 'object', properties: { id: str, mirrors: { type: 'string', description: 'the kernel function the rule mirrors' } } },
    evidence: { type: 'object', additionalProperties: true },
    unknown: { type: 'array', items: str, description: 'inconclusive: which piece of state was unknown and why (evidence.unknown)' },
    episode: {
      type: ['object', 'null'],
      properties: {
        episodeId: str, trigger: str, task: { type: 'object', properties: { pid: { type: 'integer' }, comm: str } },
        acquireRelNs: { type: ['number', 'null'] }, releaseRelNs: ns, lockWaitNs: ns, holdNs: ns, revokeNs: ns, complete: bool,
        triggerRet: { type: 'integer' }, acquireStackId: stackId,
      },
    },
    window: {
      type: 'object',
      properties: {
        fromNs: ns, toNs: ns, anchorNs: ns, keepFromNs: ns, replayed: { type: 'integer' }, shown: { type: 'integer' }, capped: bool,
        maxEvents: { type: 'integer' }, source: str,
      },
    },
    reproduced: { type: 'boolean', description: 'the replay of the kept events made this same finding again' },
    timeline: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          step: { type: 'integer' }, seq: { type: 'integer' }, tsNs: ns, relNs: ns, durationNs: { type: ['number', 'null'] },
          pid: { type: 'integer' }, tid: { type: 'integer' }, comm: str, event: str, what: str, inEpisode: bool, finding: bool,
          stackId, changed: { type: 'array', items: str }, state: deviceState,
        },
      },
    },
    stacks: {
      type: 'object', description: 'kernel stacks by id (decimal): frames innermost first, null when the frames never arrived',
      additionalProperties: { type: ['array', 'null'], items: str },
    },
    stateAtFinding: { type: ['object', 'null'], properties: { at: str, state: deviceState } },
    next: { type: 'array', items: str, description: 'what to check next' },
  },
} as const;

async function explainRoute(app: FastifyInstance): Promise<void> {
  const { reader } = app.store;
  typed(app).get('/api/v1/findings/:id/explain', {
    schema: {
      summary: 'One finding explained: timeline, the device state the rule judged and the fact behind each piece, rule, what to check next',
      tags: ['findings'],
      params: {
        type: 'object', required: ['id'], additionalProperties: false,
        properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$', description: 'findingId' } },
      } as const,
      response: { 200: explanationSchema, 400: errorSchema, 404: errorSchema },
    },
  }, async (req) => {
    const w = await readFindingWindow(reader, req.params.id);
    if (!w) throw new UnknownId(`finding ${req.params.id} not found`);
    return explain(explainInputFromStore(w, 'store'));
  });
}

export const explainRoutes = fp(explainRoute, { name: 'revokescope-explain', fastify: '5.x', encapsulate: true, dependencies: RESOURCE_DEPENDENCIES });
