// The API's error catalogue (@fastify/error: one class per error, each with its status code and code string) and
// the one place errors become responses. Routes and the code below them throw catalogue errors; nothing maps an
// error by hand. Every error response is `{ statusCode, error, message, code? }`; a 5xx is logged with its cause
// (message, stack, request id) and its body names no internals.
//
//   throw new BadParameter('querystring/from must be before querystring/to');
import createError, { type FastifyErrorConstructor } from '@fastify/error';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

type OneMessage = FastifyErrorConstructor<{ code: string; statusCode: number }, [string]>;
const error = (code: string, statusCode: number): OneMessage => createError<[string]>(code, '%s', statusCode) as OneMessage;

/** A query parameter, path parameter or body member that is malformed or out of range. */
export const BadParameter = error('REVOKESCOPE_BAD_PARAMETER', 400);
/** A rule or silence the alerting engine refuses as written (its checks say why). */
export const RuleRejected = error('REVOKESCOPE_RULE_REJECTED', 400);
/** Missing or unknown bearer token. */
export const Unauthorized = error('REVOKESCOPE_UNAUTHORIZED', 401);
/** The token lacks the route's scope. */
export const Forbidden = error('REVOKESCOPE_FORBIDDEN', 403);
/** An id that names nothing (rule, silence), or a path no route serves. */
export const UnknownId = error('REVOKESCOPE_NOT_FOUND', 404);
/** Creating what exists already. */
export const Conflict = error('REVOKESCOPE_CONFLICT', 409);
/** The store (ClickHouse, chDB) failed or did not answer: not the client's fault, retry later. */
export const StoreUnavailable = createError('REVOKESCOPE_STORE_UNAVAILABLE', 'the store did not answer; retry later', 503);
/** A defect of this program (a TypeError and the like): the log has the cause. */
export const InternalError = createError('REVOKESCOPE_INTERNAL', 'internal error; the server log has the cause', 500);

export const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  409: 'Conflict', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export const errorSchema = {
  type: 'object', required: ['statusCode', 'error', 'message'],
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } },
} as const;

/** Defects of the program itself; every other unexpected error is the store's (a query failed, a connection broke). */
const DEFECTS = [TypeError, ReferenceError, RangeError, SyntaxError, EvalError, URIError];

/** The response status of an error: its own 4xx (catalogue errors, fastify's validation and body errors), 500 for a
 * defect, else 503 (the store). */
export function statusOf(err: Error & Partial<Pick<FastifyError, 'statusCode' | 'validation'>>): number {
  if (err.validation) return 400;
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 600) return err.statusCode;
  return DEFECTS.some((c) => err instanceof c) ? 500 : 503;
}

/** The error handler and the not-found handler of the whole app. */
async function errorsPlugin(app: FastifyInstance): Promise<void> {
  app.setNotFoundHandler((req) => {
    throw new UnknownId(`no route ${req.method} ${req.url.split('?')[0]}`);
  });

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const status = statusOf(err);
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      const shown = err.statusCode === status && err.code?.startsWith('REVOKESCOPE_') ? err
        : status === 500 ? new InternalError() : new StoreUnavailable();
      return reply.code(status).send({ statusCode: status, error: REASONS[status] ?? 'Server Error', message: shown.message, code: shown.code });
    }
    return reply.code(status).send({ statusCode: status, error: REASONS[status] ?? 'Client Error', message: err.message,
      ...(err.code ? { code: err.code } : {}) });
  });
}

export default fp(errorsPlugin, { name: 'revokescope-errors', fastify: '5.x' });
