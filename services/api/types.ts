// The API's type provider: handlers get their params, querystring and body typed from the route's JSON Schema by
// json-schema-to-ts (FromSchema), so no handler casts its request. The schemas stay the plain `as const` JSON
// Schema objects that ajv validates and the OpenAPI document shows. Responses are not typed from their schemas
// (serializer: unknown): fast-json-stringify serialises them by the schema at run time, and the views are built
// as records.
//
//   typed(app).get('/x', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } as const } },
//     async (req) => req.query.n);   // number | undefined
import type { FastifyInstance, FastifyTypeProvider } from 'fastify';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';

export interface RequestTypes extends FastifyTypeProvider {
  // properties with a default are required (ajv's useDefaults fills them in before the handler runs)
  validator: this['schema'] extends JSONSchema ? FromSchema<this['schema']> : unknown;
  serializer: unknown;
}

/** The app with request types from schemas. */
export function typed(app: FastifyInstance) {
  return app.withTypeProvider<RequestTypes>();
}
