// GET /api/v1/findings: skipped and redundant zaps and the other findings of docs/rules.md (FAULT_WHILE_REVOKED among them),
// newest first, with their evidence as an object.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { RESOURCE_DEPENDENCIES } from '../plugins.js';
import { typed } from '../types.js';
import {
  commParam, cursorParam, decodeCursor, encodeCursor, errorSchema, findingKindNames, label, limitParam, parseBool, parseRange,
  severityNames, timeParam, u64, workloadParam,
} from '../schemas.js';


export const findingSchema = {
  type: 'object',
  properties: {
    findingId: { type: 'string' }, kind: { type: 'string', enum: findingKindNames }, severity: { type: 'string', enum: severityNames },
    hostname: { type: 'string' }, bootId: { type: 'string' }, device: { type: 'string' }, driver: { type: 'string' },
    kernelRelease: { type: 'string' }, episodeId: { type: 'string' }, tsNs: u64,
    inconclusive: { type: 'boolean', description: 'the premise rests on device state that was unknown (evidence.unknown says which); never pages' },
    evidence: {
      type: 'object', additionalProperties: true,
      description: 'the rule and the facts that made the finding: rule (id), mirrors (kernel function), the facts ' +
        '(e.g. wastedNs of a REDUNDANT_ZAP), unknown (inconclusive: an array of strings, which piece of state was unknown and why). ' +
        'Members are not typed here: evidence written by older versions has other shapes ({"text": ...} for non-JSON text).',
    },
    time: { type: 'string' },
  },
  required: ['findingId', 'kind', 'severity', 'hostname', 'device', 'tsNs', 'inconclusive', 'evidence', 'time'],
} as const;

async function findings(app: FastifyInstance): Promise<void> {
  const { reader } = app.store;
  typed(app).get('/api/v1/findings', {
    schema: {
      summary: 'Findings (skipped zaps, redundant zaps, lock and pairing errors, slow revokes), newest first',
      tags: ['findings'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          from: timeParam, to: timeParam, host: label, device: label, driver: label, kernel: label,
          kind: { type: 'string', enum: findingKindNames }, severity: { type: 'string', enum: severityNames },
          inconclusive: { type: 'string', enum: ['true', 'false'], description: 'true: only inconclusive findings; false: only certain ones' },
          episode: label,
          rule: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$', description: 'evidence.rule, e.g. skipped_zap.unconditional_zap_era' },
          comm: commParam, vm: workloadParam('libvirt VM name of the episode\'s acquiring task'),
          pod: workloadParam('Kubernetes pod of the episode\'s acquiring task: UID or namespace/name'),
          limit: limitParam, cursor: cursorParam,
        },
      } as const,
      response: {
        200: {
          type: 'object', required: ['findings'],
          properties: { findings: { type: 'array', items: findingSchema }, nextCursor: { type: 'string' } },
        },
        400: errorSchema,
      },
    },
  }, async (req) => {
    const q = req.query;
    const res = await reader.findings({
      ...parseRange(q), host: q.host, device: q.device, driver: q.driver, kernel: q.kernel, kind: q.kind,
      severity: q.severity, inconclusive: parseBool(q.inconclusive), episodeId: q.episode, rule: q.rule, comm: q.comm, vm: q.vm, pod: q.pod, limit: q.limit,
      after: decodeCursor(q.cursor),
    });
    return { findings: res.items, ...(res.nextCursor ? { nextCursor: encodeCursor(res.nextCursor) } : {}) };
  });
}

export const findingsRoutes = fp(findings, { name: 'revokescope-findings', fastify: '5.x', encapsulate: true, dependencies: RESOURCE_DEPENDENCIES });
