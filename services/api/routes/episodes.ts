// GET /api/v1/episodes: revoke and lock episodes, newest first, with filters and cursor pagination.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { RESOURCE_DEPENDENCIES } from '../plugins.js';
import { typed } from '../types.js';
import {
  commParam, cursorParam, decodeCursor, encodeCursor, errorSchema, label, limitParam, parseBool, parseRange, timeParam, triggerNames, u64, workloadParam,
} from '../schemas.js';


const bool = { type: 'string', enum: ['true', 'false'] } as const;


export const episodeSchema = {
  type: 'object',
  properties: {
    episodeId: { type: 'string' }, hostname: { type: 'string' }, bootId: { type: 'string' }, device: { type: 'string' },
    driver: { type: 'string' }, kernelRelease: { type: 'string' }, trigger: { type: 'string', enum: triggerNames },
    groupId: u64, acquireTsNs: u64, releaseTsNs: u64, revoke: { type: 'boolean' }, lockWaitNs: u64, holdNs: u64,
    revokeNs: u64, zapNs: u64, dmabufRevokeNs: u64, moveNs: u64, zapCount: { type: 'integer' },
    dmabufCount: { type: 'integer' }, importerCount: { type: 'integer' }, legacyMappings: { type: 'integer' },
    dmabufMappings: { type: 'integer' },
    complete: { type: 'boolean', description: 'false: loss touched the episode, or it began before observation (acquireTsNs 0: no wait, hold or revoke time)' },
    pid: { type: 'integer', description: 'the task that took memory_lock (LockAcquire)' }, comm: { type: 'string' },
    triggerRet: { type: 'integer', description: 'return value of the trigger\'s function (TriggerEnd.ret; 0 when none was seen)' },
    staleTriggers: { type: 'integer', description: 'older triggers of the same task replaced before any acquire' },
    intendedEmptyZaps: { type: 'integer', description: 'zaps a driver with custom vm_ops BARs makes by design while nothing is mapped' },
    cgroupId: { ...u64, description: 'the acquiring task\'s cgroup v2 id (0: not read)' },
    vm: { type: 'string', description: 'the libvirt VM the acquiring task ran in (from its cgroup path; empty: none or unknown)' },
    podUid: { type: 'string', description: 'the Kubernetes pod the acquiring task ran in (from its cgroup path)' },
    podName: { type: 'string', description: 'that pod\'s "namespace/name", where the collector could read it' },
    containerId: { type: 'string' },
    acquireStackId: { ...u64, description: 'the LockAcquire\'s kernel stack (collect --stacks; 0: none)' },
    time: { type: 'string', description: 'wall clock of the lock acquire (of the release for an episode that began before observation)' },
  },
  required: ['episodeId', 'hostname', 'bootId', 'device', 'acquireTsNs', 'revoke', 'complete', 'pid', 'comm', 'triggerRet', 'staleTriggers',
    'intendedEmptyZaps', 'time'],
} as const;

async function episodes(app: FastifyInstance): Promise<void> {
  const { reader } = app.store;
  typed(app).get('/api/v1/episodes', {
    schema: {
      summary: 'Revoke episodes (memory_lock write sections), newest first',
      tags: ['episodes'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          from: timeParam, to: timeParam, host: label, device: label, driver: label, kernel: label,
          trigger: { type: 'string', enum: triggerNames }, revoke: bool, complete: bool,
          comm: commParam,
          pid: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'acquiring task id' },
          vm: workloadParam('libvirt VM name of the acquiring task'), pod: workloadParam('Kubernetes pod of the acquiring task: UID or namespace/name'),
          limit: limitParam, cursor: cursorParam,
        },
      } as const,
      response: {
        200: {
          type: 'object', required: ['episodes'],
          properties: { episodes: { type: 'array', items: episodeSchema }, nextCursor: { type: 'string' } },
        },
        400: errorSchema,
      },
    },
  }, async (req) => {
    const q = req.query;
    const res = await reader.episodes({
      ...parseRange(q), host: q.host, device: q.device, driver: q.driver, kernel: q.kernel, trigger: q.trigger,
      revoke: parseBool(q.revoke), complete: parseBool(q.complete), comm: q.comm, pid: q.pid, vm: q.vm, pod: q.pod, limit: q.limit, after: decodeCursor(q.cursor),
    });
    return { episodes: res.items, ...(res.nextCursor ? { nextCursor: encodeCursor(res.nextCursor) } : {}) };
  });
}

export const episodesRoutes = fp(episodes, { name: 'revokescope-episodes', fastify: '5.x', encapsulate: true, dependencies: RESOURCE_DEPENDENCIES });
