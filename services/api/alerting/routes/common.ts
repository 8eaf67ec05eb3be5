// What the alerting resources share: time format, OpenAPI tags, the rule id pattern.
export const iso = (ms: number): string => new Date(ms).toISOString();
export const tags = { v1: ['alerting'], v2: ['alertmanager-v2'] };
export const RULE_ID = '^[a-z0-9][a-z0-9-]{0,62}$';
export const dateTimeSchema = { type: 'string', format: 'date-time' } as const;
